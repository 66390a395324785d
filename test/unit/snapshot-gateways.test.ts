// The ingress gateways' builder (src/manifests/snapshot/gateways.ts) through buildSnapshot, with
// inputs modelled on the Gateway API v1.6.3 conformance tests of the GATEWAY-HTTP profile
// (conformance/base/manifests.yaml and tests/*.yaml).
import { GATEWAY_CONTROLLER_NAME } from '../../src/manifests/constants';
import { buildSnapshot } from '../../src/manifests/snapshot/build';
import type { ClusterState, KubeObject } from '../../src/manifests/snapshot/build';
import { intersectHostnames } from '../../src/manifests/snapshot/gateways';
import type {
  GatewayListenerStatus,
  GatewayStatus,
  RouteParentStatus,
} from '../../src/manifests/snapshot/types';
import { backend, httpRoute, serviceParent } from '../support/gateway-objects';
import { service, SETTINGS, state } from '../support/kube-objects';
import { FIXTURE_CERT, FIXTURE_KEY } from '../support/pem-fixtures';

const INFRA = 'gateway-conformance-infra';
const WEB = 'gateway-conformance-web-backend';
const APP = 'gateway-conformance-app-backend';
const CLASS = 'nsm';
const GROUP = 'gateway.networking.k8s.io';

function namespace(name: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
  };
}

function gatewayClass(name: string, controllerName: string, generation = 1): KubeObject {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'GatewayClass',
    metadata: { name, generation },
    spec: { controllerName },
  };
}

function gateway(
  name: string,
  listeners: unknown[],
  options: { namespace?: string; className?: string; generation?: number } = {},
): KubeObject {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'Gateway',
    metadata: { name, namespace: options.namespace ?? INFRA, generation: options.generation ?? 1 },
    spec: { gatewayClassName: options.className ?? CLASS, listeners },
  };
}

function http(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, port: 80, protocol: 'HTTP', ...extra };
}

function https(
  name: string,
  certificateRefs: unknown[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { name, port: 443, protocol: 'HTTPS', tls: { certificateRefs }, ...extra };
}

function secretRef(name: string, namespace?: string): Record<string, unknown> {
  return { group: '', kind: 'Secret', name, ...(namespace === undefined ? {} : { namespace }) };
}

const FROM_ALL = { allowedRoutes: { namespaces: { from: 'All' } } };
const FROM_SAME = { allowedRoutes: { namespaces: { from: 'Same' } } };

function tlsSecret(namespace: string, name: string, crt = FIXTURE_CERT, key = FIXTURE_KEY) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name, namespace },
    data: {
      'tls.crt': Buffer.from(crt).toString('base64'),
      'tls.key': Buffer.from(key).toString('base64'),
    },
  };
}

/** A ReferenceGrant in `namespace` from (group, kind, namespace) to (group, kind, name?). */
function grant(
  namespace: string,
  name: string,
  from: { group: string; kind: string; namespace: string },
  to: { group: string; kind: string; name?: string },
): KubeObject {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'ReferenceGrant',
    metadata: { name, namespace },
    spec: { from: [from], to: [to] },
  };
}

/** An HTTPRoute with Gateway parentRefs (parentRefs are written as given). */
function route(
  name: string,
  parentRefs: unknown[],
  spec: Record<string, unknown> = {},
  namespace = INFRA,
): KubeObject {
  return httpRoute(namespace, name, '', {
    parentRefs,
    rules: spec.rules ?? [{ backendRefs: [backend('infra-backend-v1', 8080)] }],
    spec: Object.fromEntries(Object.entries(spec).filter(([key]) => key !== 'rules')),
  });
}

/** The base manifests' Gateways. */
const BASE_GATEWAYS = [
  gateway('same-namespace', [http('http', FROM_SAME)]),
  gateway('same-namespace-with-https-listener', [
    https('https', [secretRef('tls-validity-checks-certificate', INFRA)], FROM_SAME),
    https('https-with-hostname', [secretRef('tls-validity-checks-certificate', INFRA)], {
      ...FROM_SAME,
      hostname: 'second-example.org',
    }),
    https('https-with-wildcard-hostname', [secretRef('tls-validity-checks-certificate', INFRA)], {
      ...FROM_SAME,
      hostname: '*.wildcard.org',
    }),
    https(
      'https-with-hostname-matching-wildcard',
      [secretRef('tls-validity-checks-certificate', INFRA)],
      { ...FROM_SAME, hostname: 'fourth-example.wildcard.org' },
    ),
  ]),
  gateway('all-namespaces', [http('http', FROM_ALL)]),
  gateway('backend-namespaces', [
    http('http', {
      allowedRoutes: {
        namespaces: {
          from: 'Selector',
          selector: { matchLabels: { 'gateway-conformance': 'backend' } },
        },
      },
    }),
  ]),
];

function base(): ClusterState {
  return state({
    namespaces: [
      namespace(INFRA, { 'gateway-conformance': 'infra' }),
      namespace(APP, { 'gateway-conformance': 'backend' }),
      namespace(WEB, { 'gateway-conformance': 'backend' }),
    ],
    services: [
      service(INFRA, 'infra-backend-v1', { ports: [{ name: 'first-port', port: 8080 }] }),
      service(INFRA, 'infra-backend-v2', { ports: [{ name: 'first-port', port: 8080 }] }),
      service(INFRA, 'infra-backend-v3', { ports: [{ name: 'first-port', port: 8080 }] }),
      service(WEB, 'web-backend', { ports: [{ name: 'first-port', port: 8080 }] }),
      service(APP, 'app-backend-v1', { ports: [{ name: 'first-port', port: 8080 }] }),
      service(APP, 'app-backend-v2', { ports: [{ name: 'first-port', port: 8080 }] }),
    ],
    gatewayClasses: [gatewayClass(CLASS, GATEWAY_CONTROLLER_NAME)],
    gateways: BASE_GATEWAYS,
    tlsSecrets: [
      tlsSecret(INFRA, 'tls-validity-checks-certificate'),
      tlsSecret(WEB, 'certificate'),
    ],
  });
}

/** A copy of `parts` with every list reversed. */
function reversedLists<T extends object>(parts: T): T {
  return Object.fromEntries(
    Object.entries(parts).map(([key, value]) => [
      key,
      Array.isArray(value) ? [...(value as unknown[])].reverse() : value,
    ]),
  ) as T;
}

/** buildSnapshot of the base manifests plus `extra` (lists appended to the base's). */
function build(extra: Partial<ClusterState> = {}) {
  const start = base();
  const merged: Record<string, unknown> = { ...start };
  for (const [key, value] of Object.entries(extra)) {
    const existing = (start as unknown as Record<string, unknown>)[key];
    merged[key] =
      Array.isArray(existing) && Array.isArray(value)
        ? [...(existing as unknown[]), ...(value as unknown[])]
        : value;
  }
  return buildSnapshot(merged as unknown as ClusterState, SETTINGS);
}

type Outcome = ReturnType<typeof build>;

function gatewayStatus(outcome: Outcome, name: string): GatewayStatus {
  const found = outcome.gatewayStatuses.find((status) => status.name === name);
  if (found === undefined) throw new Error(`no status for Gateway ${name}`);
  return found;
}

function listener(outcome: Outcome, gatewayName: string, name: string): GatewayListenerStatus {
  const found = gatewayStatus(outcome, gatewayName).listeners.find((entry) => entry.name === name);
  if (found === undefined) throw new Error(`no listener ${name} of ${gatewayName}`);
  return found;
}

/** "<type> <status> <reason>" of each condition of a listener. */
function conditions(entry: GatewayListenerStatus): string[] {
  return entry.conditions.map(
    (condition) => `${condition.type} ${condition.status} ${condition.reason}`,
  );
}

function gatewayAccepted(outcome: Outcome, name: string): string {
  const condition = gatewayStatus(outcome, name).conditions[0];
  return `${condition?.type} ${condition?.status} ${condition?.reason}`;
}

function parentsOf(
  outcome: Outcome,
  name: string,
  namespace = INFRA,
): readonly RouteParentStatus[] {
  const found = outcome.routeStatuses.find(
    (status) => status.name === name && status.namespace === namespace,
  );
  if (found === undefined) throw new Error(`no status for route ${name}`);
  return found.parents;
}

/** "<Accepted status> <reason> / <ResolvedRefs status> <reason>" of each Gateway parent. */
function parentLines(outcome: Outcome, name: string, namespace = INFRA): string[] {
  return parentsOf(outcome, name, namespace).map(
    ({ accepted, resolvedRefs }) =>
      `${accepted.status} ${accepted.reason} / ${resolvedRefs.status} ${resolvedRefs.reason}`,
  );
}

function attachedRoutes(outcome: Outcome, gatewayName: string): Record<string, number> {
  return Object.fromEntries(
    gatewayStatus(outcome, gatewayName).listeners.map((entry) => [
      entry.name,
      entry.attachedRoutes,
    ]),
  );
}

const SERVED = [
  'Accepted True Accepted',
  'Conflicted False NoConflicts',
  'ResolvedRefs True ResolvedRefs',
  'Programmed True Programmed',
];
const HTTP_ROUTE_KINDS = [{ group: GROUP, kind: 'HTTPRoute' }];

describe('buildSnapshot: GatewayClasses', () => {
  it('accepts a class naming the controller, with its generation, and ignores the others', () => {
    const outcome = build({
      gatewayClasses: [
        gatewayClass('gatewayclass-observed-generation-bump', GATEWAY_CONTROLLER_NAME, 2),
        gatewayClass('theirs', 'example.net/gateway-controller'),
      ],
      gateways: [gateway('foreign', [http('http')], { className: 'theirs' })],
      httpRoutes: [route('to-foreign', [{ name: 'foreign' }])],
    });
    expect(outcome.gatewayClassStatuses).toEqual([
      {
        name: 'gatewayclass-observed-generation-bump',
        generation: 2,
        conditions: [
          {
            type: 'Accepted',
            status: 'True',
            reason: 'Accepted',
            message: `handled by ${GATEWAY_CONTROLLER_NAME}`,
          },
        ],
      },
      expect.objectContaining({ name: CLASS, generation: 1 }),
    ]);
    expect(outcome.gatewayStatuses.map((status) => status.name)).not.toContain('foreign');
    expect(outcome.snapshot.gateways[`${INFRA}/foreign`]).toBeUndefined();
    expect(outcome.routeStatuses.map((status) => status.name)).not.toContain('to-foreign');
  });

  it('skips a Gateway whose class does not exist', () => {
    const outcome = build({
      gateways: [gateway('classless', [http('http')], { className: 'missing' })],
    });
    expect(outcome.gatewayStatuses.map((status) => status.name)).not.toContain('classless');
  });
});

describe('buildSnapshot: Gateways and listeners', () => {
  it('accepts the base Gateways, serves every listener and echoes the generation', () => {
    const outcome = build({
      gateways: [
        gateway(
          'gateway-observed-generation-bump',
          [
            http('http', { ...FROM_ALL, hostname: 'bar.com' }),
            http('alternate', { ...FROM_ALL, hostname: 'foo.com' }),
          ],
          { generation: 2 },
        ),
      ],
    });
    const status = gatewayStatus(outcome, 'gateway-observed-generation-bump');
    expect(status.generation).toBe(2);
    expect(gatewayAccepted(outcome, 'gateway-observed-generation-bump')).toBe(
      'Accepted True Accepted',
    );
    for (const name of ['same-namespace', 'all-namespaces', 'backend-namespaces']) {
      expect(gatewayAccepted(outcome, name)).toBe('Accepted True Accepted');
      expect(conditions(listener(outcome, name, 'http'))).toEqual(SERVED);
      expect(listener(outcome, name, 'http').supportedKinds).toEqual(HTTP_ROUTE_KINDS);
    }
    expect(outcome.snapshot.gateways[`${INFRA}/same-namespace`]).toEqual({
      namespace: INFRA,
      name: 'same-namespace',
      listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }],
    });
  });

  it('serves HTTPS listeners with tls and names the Secret of each', () => {
    const outcome = build();
    const served = outcome.snapshot.gateways[`${INFRA}/same-namespace-with-https-listener`];
    expect(served?.listeners).toEqual([
      { name: 'https', port: 443, protocol: 'HTTPS', tls: true },
      {
        name: 'https-with-hostname',
        port: 443,
        protocol: 'HTTPS',
        hostname: 'second-example.org',
        tls: true,
      },
      {
        name: 'https-with-wildcard-hostname',
        port: 443,
        protocol: 'HTTPS',
        hostname: '*.wildcard.org',
        tls: true,
      },
      {
        name: 'https-with-hostname-matching-wildcard',
        port: 443,
        protocol: 'HTTPS',
        hostname: 'fourth-example.wildcard.org',
        tls: true,
      },
    ]);
    expect(outcome.gatewayCertificates).toContainEqual({
      gateway: `${INFRA}/same-namespace-with-https-listener`,
      listener: 'https-with-hostname',
      secret: `${INFRA}/tls-validity-checks-certificate`,
    });
    expect(outcome.gatewayCertificates).toHaveLength(4);
  });

  it('refuses a listener of another protocol; the Gateway is accepted only with a valid listener (gateway-invalid-listeners-unsupported-protocol)', () => {
    const outcome = build({
      gateways: [
        gateway('gateway-only-unsupported-protocols', [
          { name: 'invalid', port: 1111, protocol: 'INVALID' },
        ]),
        gateway('gateway-supported-and-unsupported-protocols', [
          http('http'),
          { name: 'invalid', port: 1111, protocol: 'INVALID' },
        ]),
      ],
    });
    expect(gatewayAccepted(outcome, 'gateway-only-unsupported-protocols')).toBe(
      'Accepted False ListenersNotValid',
    );
    expect(gatewayAccepted(outcome, 'gateway-supported-and-unsupported-protocols')).toBe(
      'Accepted True ListenersNotValid',
    );
    for (const name of [
      'gateway-only-unsupported-protocols',
      'gateway-supported-and-unsupported-protocols',
    ]) {
      const invalid = listener(outcome, name, 'invalid');
      expect(invalid.supportedKinds).toEqual([]);
      expect(invalid.attachedRoutes).toBe(0);
      expect(conditions(invalid)).toEqual([
        'Accepted False UnsupportedProtocol',
        'Conflicted False NoConflicts',
        'ResolvedRefs True ResolvedRefs',
        'Programmed False Invalid',
      ]);
    }
    expect(
      listener(outcome, 'gateway-supported-and-unsupported-protocols', 'http').supportedKinds,
    ).toEqual(HTTP_ROUTE_KINDS);
    expect(
      outcome.snapshot.gateways[`${INFRA}/gateway-supported-and-unsupported-protocols`]?.listeners,
    ).toEqual([{ name: 'http', port: 80, protocol: 'HTTP' }]);
  });

  it('lists only HTTPRoute in supportedKinds and refuses other kinds (gateway-invalid-route-kind)', () => {
    const outcome = build({
      gateways: [
        gateway('gateway-only-invalid-route-kind', [
          http('http', {
            allowedRoutes: { namespaces: { from: 'All' }, kinds: [{ kind: 'InvalidRoute' }] },
          }),
        ]),
        gateway('gateway-supported-and-invalid-route-kind', [
          http('http', {
            allowedRoutes: {
              namespaces: { from: 'All' },
              kinds: [{ kind: 'InvalidRoute' }, { kind: 'HTTPRoute' }],
            },
          }),
        ]),
      ],
    });
    const only = listener(outcome, 'gateway-only-invalid-route-kind', 'http');
    expect(only.supportedKinds).toEqual([]);
    expect(conditions(only)).toContain('ResolvedRefs False InvalidRouteKinds');
    const mixed = listener(outcome, 'gateway-supported-and-invalid-route-kind', 'http');
    expect(mixed.supportedKinds).toEqual(HTTP_ROUTE_KINDS);
    expect(conditions(mixed)).toEqual([
      'Accepted True Accepted',
      'Conflicted False NoConflicts',
      'ResolvedRefs False InvalidRouteKinds',
      'Programmed False Invalid',
    ]);
    expect(mixed.attachedRoutes).toBe(0);
  });

  it.each([
    ['gateway-certificate-nonexistent-secret', secretRef('nonexistent-certificate')],
    [
      'gateway-certificate-unsupported-group',
      { group: 'wrong.group.company.io', kind: 'Secret', name: 'tls-validity-checks-certificate' },
    ],
    [
      'gateway-certificate-unsupported-kind',
      { group: '', kind: 'WrongKind', name: 'tls-validity-checks-certificate' },
    ],
    ['gateway-certificate-malformed-secret', secretRef('malformed-certificate')],
  ])('refuses the certificate of %s (gateway-invalid-tls-configuration)', (name, ref) => {
    const malformed = {
      ...tlsSecret(INFRA, 'malformed-certificate'),
      data: { 'tls.crt': 'SGVsbG8gd29ybGQK', 'tls.key': 'SGVsbG8gd29ybGQK' },
    };
    const outcome = build({
      gateways: [gateway(name, [https('https', [ref], FROM_ALL)])],
      tlsSecrets: [malformed],
    });
    const entry = listener(outcome, name, 'https');
    expect(entry.supportedKinds).toEqual(HTTP_ROUTE_KINDS);
    expect(entry.attachedRoutes).toBe(0);
    expect(conditions(entry)).toContain('ResolvedRefs False InvalidCertificateRef');
    expect(conditions(entry)).toContain('Programmed False Invalid');
    expect(outcome.snapshot.gateways[`${INFRA}/${name}`]?.listeners).toEqual([]);
    expect(outcome.gatewayCertificates.map((entry) => entry.gateway)).not.toContain(
      `${INFRA}/${name}`,
    );
  });

  it('refuses an HTTPS listener without certificateRefs, and a Secret without a private key', () => {
    const outcome = build({
      gateways: [
        gateway('no-refs', [https('https', [], FROM_ALL)]),
        gateway('no-key', [https('https', [secretRef('cert-only')], FROM_ALL)]),
      ],
      tlsSecrets: [tlsSecret(INFRA, 'cert-only', FIXTURE_CERT, FIXTURE_CERT)],
    });
    expect(conditions(listener(outcome, 'no-refs', 'https'))).toContain(
      'ResolvedRefs False InvalidCertificateRef',
    );
    expect(listener(outcome, 'no-key', 'https').conditions[2]?.message).toBe(
      `spec.listeners[0].tls.certificateRefs[0]: Secret ${INFRA}/cert-only: tls.key holds no PEM private key`,
    );
  });

  const crossNamespace = https('https', [secretRef('certificate', WEB)], FROM_ALL);

  it('refuses a Secret of another namespace without a ReferenceGrant (gateway-secret-missing-reference-grant)', () => {
    const outcome = build({
      gateways: [gateway('gateway-secret-missing-reference-grant', [crossNamespace])],
    });
    const entry = listener(outcome, 'gateway-secret-missing-reference-grant', 'https');
    expect(entry.supportedKinds).toEqual(HTTP_ROUTE_KINDS);
    expect(conditions(entry)).toContain('ResolvedRefs False RefNotPermitted');
  });

  it('refuses a Secret of another namespace whose ReferenceGrants do not fit (gateway-secret-invalid-reference-grant)', () => {
    const from = { group: GROUP, kind: 'Gateway', namespace: INFRA };
    const to = { group: '', kind: 'Secret', name: 'certificate' };
    const outcome = build({
      gateways: [gateway('gateway-secret-invalid-reference-grant', [crossNamespace])],
      referenceGrants: [
        grant(APP, 'reference-grant-wrong-namespace', from, to),
        grant(
          WEB,
          'reference-grant-wrong-from-group',
          { ...from, group: 'not-the-group-youre-looking-for' },
          to,
        ),
        grant(WEB, 'reference-grant-wrong-from-kind', { ...from, kind: 'HTTPRoute' }, to),
        grant(
          WEB,
          'reference-grant-wrong-from-namespace',
          { ...from, namespace: 'not-the-namespace-youre-looking-for' },
          to,
        ),
        grant(WEB, 'reference-grant-wrong-to-group', from, {
          group: 'not-the-group-youre-looking-for',
          kind: 'Secret',
          name: 'not-the-certificate-youre-looking-for',
        }),
        grant(WEB, 'reference-grant-wrong-to-kind', from, { ...to, kind: 'Service' }),
        grant(WEB, 'reference-grant-wrong-to-name', from, {
          ...to,
          name: 'not-the-certificate-youre-looking-for',
        }),
      ],
    });
    expect(
      conditions(listener(outcome, 'gateway-secret-invalid-reference-grant', 'https')),
    ).toContain('ResolvedRefs False RefNotPermitted');
  });

  it.each([
    ['gateway-secret-reference-grant-all-in-namespace', undefined],
    ['gateway-secret-reference-grant-specific', 'certificate'],
  ])('uses a Secret of another namespace granted to Gateways (%s)', (name, secretName) => {
    const outcome = build({
      gateways: [gateway(name, [crossNamespace])],
      referenceGrants: [
        grant(
          WEB,
          'grant',
          { group: GROUP, kind: 'Gateway', namespace: INFRA },
          {
            group: '',
            kind: 'Secret',
            ...(secretName === undefined ? {} : { name: secretName }),
          },
        ),
      ],
    });
    const entry = listener(outcome, name, 'https');
    expect(conditions(entry)).toEqual(SERVED);
    expect(entry.attachedRoutes).toBe(0);
    expect(outcome.gatewayCertificates).toContainEqual({
      gateway: `${INFRA}/${name}`,
      listener: 'https',
      secret: `${WEB}/certificate`,
    });
  });

  it('counts a route on every listener it attaches to, as listeners are added and removed (gateway-modify-listeners)', () => {
    const httpsListener = https('https', [secretRef('tls-validity-checks-certificate', INFRA)], {
      ...FROM_ALL,
      hostname: 'secure.test.com',
    });
    const routes = [
      route('http-route-1', [{ kind: 'Gateway', name: 'gateway-add-listener', namespace: INFRA }]),
      route('http-route-2', [
        { kind: 'Gateway', name: 'gateway-remove-listener', namespace: INFRA },
      ]),
    ];
    const before = build({
      gateways: [
        gateway('gateway-add-listener', [httpsListener]),
        gateway('gateway-remove-listener', [httpsListener, http('http', FROM_ALL)]),
      ],
      httpRoutes: routes,
    });
    expect(attachedRoutes(before, 'gateway-add-listener')).toEqual({ https: 1 });
    expect(attachedRoutes(before, 'gateway-remove-listener')).toEqual({ https: 1, http: 1 });
    const after = build({
      gateways: [
        gateway(
          'gateway-add-listener',
          [httpsListener, http('http', { ...FROM_ALL, hostname: 'data.test.com' })],
          { generation: 2 },
        ),
        gateway('gateway-remove-listener', [http('http', FROM_ALL)], { generation: 2 }),
      ],
      httpRoutes: routes,
    });
    expect(attachedRoutes(after, 'gateway-add-listener')).toEqual({ https: 1, http: 1 });
    expect(conditions(listener(after, 'gateway-add-listener', 'http'))).toEqual(SERVED);
    expect(attachedRoutes(after, 'gateway-remove-listener')).toEqual({ http: 1 });
    expect(after.snapshot.gatewayRoutes[`${INFRA}/http-route-1`]?.attachments).toEqual([
      { gateway: `${INFRA}/gateway-add-listener`, listener: 'http', hostnames: ['data.test.com'] },
      {
        gateway: `${INFRA}/gateway-add-listener`,
        listener: 'https',
        hostnames: ['secure.test.com'],
      },
    ]);
  });

  it('marks listeners sharing a port and hostname, or a port across HTTP and HTTPS, Conflicted and serves none of them', () => {
    const cert = [secretRef('tls-validity-checks-certificate')];
    const outcome = build({
      gateways: [
        gateway('conflicts', [
          http('a', { hostname: 'same.example.com' }),
          http('b', { hostname: 'same.example.com' }),
          http('c', { hostname: 'other.example.com' }),
          http('d', { port: 8443 }),
          https('e', cert, { port: 8443 }),
        ]),
        gateway('all-conflicted', [http('a'), http('b')]),
      ],
    });
    expect(conditions(listener(outcome, 'conflicts', 'a'))).toEqual([
      'Accepted False HostnameConflict',
      'Conflicted True HostnameConflict',
      'ResolvedRefs True ResolvedRefs',
      'Programmed False Invalid',
    ]);
    expect(conditions(listener(outcome, 'conflicts', 'b'))[1]).toBe(
      'Conflicted True HostnameConflict',
    );
    expect(conditions(listener(outcome, 'conflicts', 'c'))).toEqual(SERVED);
    expect(conditions(listener(outcome, 'conflicts', 'd'))[1]).toBe(
      'Conflicted True ProtocolConflict',
    );
    expect(conditions(listener(outcome, 'conflicts', 'e'))[1]).toBe(
      'Conflicted True ProtocolConflict',
    );
    expect(gatewayStatus(outcome, 'conflicts').conditions[0]).toEqual({
      type: 'Accepted',
      status: 'True',
      reason: 'ListenersNotValid',
      message: 'listeners not served: a, b, d, e',
    });
    expect(
      outcome.snapshot.gateways[`${INFRA}/conflicts`]?.listeners.map((entry) => entry.name),
    ).toEqual(['c']);
    expect(gatewayAccepted(outcome, 'all-conflicted')).toBe('Accepted False ListenersNotValid');
  });

  it('refuses listeners with values it cannot use, and keeps the first of two listeners of one name', () => {
    const outcome = build({
      gateways: [
        gateway('odd', [
          http('bad-port', { port: 70000 }),
          http('ip-host', { hostname: '10.0.0.1' }),
          http('bad-from', { allowedRoutes: { namespaces: { from: 'Nowhere' } } }),
          http('bad-selector', {
            allowedRoutes: {
              namespaces: {
                from: 'Selector',
                selector: { matchExpressions: [{ key: 'a', operator: 'Near' }] },
              },
            },
          }),
          https('passthrough', [], { port: 8443, tls: { mode: 'Passthrough' } }),
          http('fine', { port: 81 }),
          http('fine', { port: 82 }),
          'not an object',
        ]),
      ],
    });
    for (const name of ['bad-port', 'ip-host', 'bad-from', 'bad-selector', 'passthrough']) {
      expect([name, conditions(listener(outcome, 'odd', name))[0]]).toEqual([
        name,
        'Accepted False UnsupportedValue',
      ]);
    }
    expect(gatewayStatus(outcome, 'odd').listeners.map((entry) => entry.name)).toEqual([
      'bad-port',
      'ip-host',
      'bad-from',
      'bad-selector',
      'passthrough',
      'fine',
    ]);
    expect(outcome.snapshot.gateways[`${INFRA}/odd`]?.listeners).toEqual([
      { name: 'fine', port: 81, protocol: 'HTTP' },
    ]);
  });

  it("refuses a listener on a port of the gateway proxy's own (PortUnavailable)", () => {
    const outcome = build({ gateways: [gateway('odd', [http('proxy', { port: 8888 })])] });
    expect(conditions(listener(outcome, 'odd', 'proxy'))[0]).toBe('Accepted False PortUnavailable');
    expect(outcome.snapshot.gateways[`${INFRA}/odd`]?.listeners).toEqual([]);
  });

  it('skips Gateways of the ignored namespaces', () => {
    const outcome = build({
      gateways: [gateway('system', [http('http')], { namespace: 'kube-system' })],
    });
    expect(outcome.gatewayStatuses.map((status) => status.namespace)).not.toContain('kube-system');
  });
});

describe('buildSnapshot: HTTPRoutes attached to Gateways', () => {
  it('attaches a route of the Gateway namespace and echoes its parentRef with group and kind (httproute-simple-same-namespace)', () => {
    const outcome = build({
      httpRoutes: [
        route('gateway-conformance-infra-test', [{ name: 'same-namespace' }], {}, INFRA),
      ],
    });
    expect(parentsOf(outcome, 'gateway-conformance-infra-test')).toEqual([
      {
        parentRef: { group: GROUP, kind: 'Gateway', name: 'same-namespace' },
        accepted: {
          status: 'True',
          reason: 'Accepted',
          message: `accepted by listener http of Gateway ${INFRA}/same-namespace`,
        },
        resolvedRefs: {
          status: 'True',
          reason: 'ResolvedRefs',
          message: 'every backendRef resolved',
        },
      },
    ]);
    expect(outcome.snapshot.gatewayRoutes[`${INFRA}/gateway-conformance-infra-test`]).toEqual({
      namespace: INFRA,
      name: 'gateway-conformance-infra-test',
      created: '',
      attachments: [{ gateway: `${INFRA}/same-namespace`, listener: 'http', hostnames: [] }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
          backends: [{ service: `${INFRA}/infra-backend-v1`, port: 8080, weight: 1 }],
        },
      ],
    });
    expect(attachedRoutes(outcome, 'same-namespace')).toEqual({ http: 1 });
  });

  it('attaches a route of a namespace the listener selects by label (httproute-cross-namespace)', () => {
    const outcome = build({
      httpRoutes: [
        route(
          'cross-namespace',
          [{ name: 'backend-namespaces', namespace: INFRA }],
          {
            rules: [{ backendRefs: [backend('web-backend', 8080)] }],
          },
          WEB,
        ),
      ],
    });
    expect(parentLines(outcome, 'cross-namespace', WEB)).toEqual([
      'True Accepted / True ResolvedRefs',
    ]);
    expect(parentsOf(outcome, 'cross-namespace', WEB)[0]?.parentRef).toEqual({
      group: GROUP,
      kind: 'Gateway',
      name: 'backend-namespaces',
      namespace: INFRA,
    });
  });

  it('refuses a route of a namespace the listener does not take (httproute-invalid-cross-namespace-parent-ref)', () => {
    const outcome = build({
      httpRoutes: [
        route(
          'invalid-cross-namespace-parent-ref',
          [{ name: 'same-namespace', namespace: INFRA }],
          {
            rules: [{ backendRefs: [backend('web-backend', 8080)] }],
          },
          WEB,
        ),
      ],
    });
    expect(parentLines(outcome, 'invalid-cross-namespace-parent-ref', WEB)).toEqual([
      'False NotAllowedByListeners / True ResolvedRefs',
    ]);
    expect(attachedRoutes(outcome, 'same-namespace')).toEqual({ http: 0 });
    expect(
      outcome.snapshot.gatewayRoutes[`${WEB}/invalid-cross-namespace-parent-ref`],
    ).toBeUndefined();
  });

  it('selects namespaces by matchExpressions as well as matchLabels', () => {
    const outcome = build({
      gateways: [
        gateway('expressions', [
          http('http', {
            allowedRoutes: {
              namespaces: {
                from: 'Selector',
                selector: {
                  matchExpressions: [
                    { key: 'gateway-conformance', operator: 'In', values: ['backend'] },
                  ],
                },
              },
            },
          }),
        ]),
      ],
      httpRoutes: [
        route('from-web', [{ name: 'expressions', namespace: INFRA }], { rules: [{}] }, WEB),
        route('from-infra', [{ name: 'expressions' }], { rules: [{}] }),
      ],
    });
    expect(parentLines(outcome, 'from-web', WEB)[0]).toMatch(/^True Accepted/);
    expect(parentLines(outcome, 'from-infra')[0]).toMatch(/^False NotAllowedByListeners/);
  });

  it('attaches routes to listeners whose hostname intersects theirs and counts only accepted routes (httproute-hostname-intersection)', () => {
    const parent = [{ name: 'httproute-hostname-intersection', namespace: INFRA }];
    const outcome = build({
      gateways: [
        gateway('httproute-hostname-intersection', [
          http('listener-1', { ...FROM_SAME, hostname: 'very.specific.com' }),
          http('listener-2', { ...FROM_SAME, hostname: '*.wildcard.io' }),
          http('listener-3', { ...FROM_SAME, hostname: '*.anotherwildcard.io' }),
        ]),
        gateway('httproute-hostname-intersection-all', [http('listener-1', FROM_SAME)]),
      ],
      httpRoutes: [
        route('specific-host-matches-listener-specific-host', parent, {
          hostnames: ['non.matching.com', '*.nonmatchingwildcard.io', 'very.specific.com'],
        }),
        route('specific-host-matches-listener-wildcard-host', parent, {
          hostnames: [
            'non.matching.com',
            'wildcard.io',
            'foo.wildcard.io',
            'bar.wildcard.io',
            'foo.bar.wildcard.io',
          ],
        }),
        route('wildcard-host-matches-listener-specific-host', parent, {
          hostnames: ['non.matching.com', '*.specific.com'],
        }),
        route('wildcard-host-matches-listener-wildcard-host', parent, {
          hostnames: ['*.anotherwildcard.io'],
        }),
        route('no-intersecting-hosts', parent, {
          hostnames: ['specific.but.wrong.com', 'wildcard.io'],
        }),
        route(
          'httproute-hostname-intersection-all',
          [{ name: 'httproute-hostname-intersection-all', namespace: INFRA }],
          { hostnames: ['first.com', 'sub.first.com', 'second.com', 'sub.second.com'] },
        ),
      ],
    });
    expect(parentLines(outcome, 'no-intersecting-hosts')).toEqual([
      'False NoMatchingListenerHostname / True ResolvedRefs',
    ]);
    expect(parentsOf(outcome, 'no-intersecting-hosts')[0]?.parentRef).toEqual({
      group: GROUP,
      kind: 'Gateway',
      name: 'httproute-hostname-intersection',
      namespace: INFRA,
    });
    expect(attachedRoutes(outcome, 'httproute-hostname-intersection')).toEqual({
      'listener-1': 2,
      'listener-2': 1,
      'listener-3': 1,
    });
    const attachments = (name: string) =>
      outcome.snapshot.gatewayRoutes[`${INFRA}/${name}`]?.attachments;
    const at = (listenerName: string, hostnames: string[]) => ({
      gateway: `${INFRA}/httproute-hostname-intersection`,
      listener: listenerName,
      hostnames,
    });
    expect(attachments('specific-host-matches-listener-specific-host')).toEqual([
      at('listener-1', ['very.specific.com']),
    ]);
    expect(attachments('specific-host-matches-listener-wildcard-host')).toEqual([
      at('listener-2', ['bar.wildcard.io', 'foo.bar.wildcard.io', 'foo.wildcard.io']),
    ]);
    expect(attachments('wildcard-host-matches-listener-specific-host')).toEqual([
      at('listener-1', ['very.specific.com']),
    ]);
    expect(attachments('wildcard-host-matches-listener-wildcard-host')).toEqual([
      at('listener-3', ['*.anotherwildcard.io']),
    ]);
    expect(attachments('no-intersecting-hosts')).toBeUndefined();
    expect(attachments('httproute-hostname-intersection-all')).toEqual([
      {
        gateway: `${INFRA}/httproute-hostname-intersection-all`,
        listener: 'listener-1',
        hostnames: ['first.com', 'second.com', 'sub.first.com', 'sub.second.com'],
      },
    ]);
  });

  it.each([
    ['*.example.com', ['foo.example.com'], ['foo.example.com']],
    ['*.example.com', ['example.com'], undefined],
    ['*.example.com', ['a.b.example.com'], ['a.b.example.com']],
    ['foo.example.com', ['*.example.com'], ['foo.example.com']],
    ['*.foo.example.com', ['*.example.com'], ['*.foo.example.com']],
    ['*.example.com', ['*.foo.example.com'], ['*.foo.example.com']],
    ['*.example.com', ['*.example.com'], ['*.example.com']],
    ['foo.example.com', ['bar.example.com'], undefined],
    [undefined, ['b.com', 'a.com', 'b.com'], ['a.com', 'b.com']],
    [undefined, [], []],
    ['foo.example.com', [], ['foo.example.com']],
  ])(
    'intersects listener hostname %j with route hostnames %j as %j',
    (listenerName, routeNames, expected) => {
      expect(intersectHostnames(listenerName, routeNames)).toEqual(expected);
    },
  );

  it('attaches a route to the listener its sectionName names (httproute-listener-hostname-matching)', () => {
    const parent = (section: string) => ({
      name: 'httproute-listener-hostname-matching',
      namespace: INFRA,
      sectionName: section,
    });
    const outcome = build({
      gateways: [
        gateway('httproute-listener-hostname-matching', [
          http('listener-1', { ...FROM_SAME, hostname: 'bar.com' }),
          http('listener-2', { ...FROM_SAME, hostname: 'foo.bar.com' }),
          http('listener-3', { ...FROM_SAME, hostname: '*.bar.com' }),
          http('listener-4', { ...FROM_SAME, hostname: '*.foo.com' }),
        ]),
      ],
      httpRoutes: [
        route('backend-v1', [parent('listener-1')]),
        route('backend-v2', [parent('listener-2')]),
        route('backend-v3', [parent('listener-3'), parent('listener-4')]),
      ],
    });
    expect(parentLines(outcome, 'backend-v3')).toEqual([
      'True Accepted / True ResolvedRefs',
      'True Accepted / True ResolvedRefs',
    ]);
    expect(parentsOf(outcome, 'backend-v3')[1]?.parentRef).toEqual({
      ...parent('listener-4'),
      group: GROUP,
      kind: 'Gateway',
    });
    expect(attachedRoutes(outcome, 'httproute-listener-hostname-matching')).toEqual({
      'listener-1': 1,
      'listener-2': 1,
      'listener-3': 1,
      'listener-4': 1,
    });
    expect(
      outcome.snapshot.gatewayRoutes[`${INFRA}/backend-v3`]?.attachments.map(
        (entry) => entry.listener,
      ),
    ).toEqual(['listener-3', 'listener-4']);
  });

  it('refuses a parentRef whose sectionName names no listener (httproute-invalid-parentref-not-matching-section-name)', () => {
    const outcome = build({
      httpRoutes: [
        route('httproute-listener-not-matching-section-name', [
          { name: 'same-namespace', namespace: INFRA, port: 80, sectionName: 'http1' },
        ]),
      ],
    });
    expect(parentLines(outcome, 'httproute-listener-not-matching-section-name')).toEqual([
      'False NoMatchingParent / True ResolvedRefs',
    ]);
    expect(attachedRoutes(outcome, 'same-namespace')).toEqual({ http: 0 });
  });

  it('refuses a parentRef whose sectionName and port name no one listener (httproute-invalid-parentref-section-name-not-matching-port)', () => {
    const outcome = build({
      gateways: [
        gateway('gateway-with-one-not-matching-port-and-section-name-route', [
          http('http', {
            allowedRoutes: { kinds: [{ kind: 'HTTPRoute' }], namespaces: { from: 'All' } },
          }),
        ]),
      ],
      httpRoutes: [
        route('httproute-listener-section-name-not-matching-port', [
          {
            name: 'gateway-with-one-not-matching-port-and-section-name-route',
            namespace: INFRA,
            sectionName: 'http',
            port: 81,
          },
        ]),
      ],
    });
    const [parent] = parentsOf(outcome, 'httproute-listener-section-name-not-matching-port');
    expect(parent?.accepted).toEqual({
      status: 'False',
      reason: 'NoMatchingParent',
      message: `spec.parentRefs[0]: Gateway ${INFRA}/gateway-with-one-not-matching-port-and-section-name-route has no listener named "http" on port 81`,
    });
    expect(
      attachedRoutes(outcome, 'gateway-with-one-not-matching-port-and-section-name-route'),
    ).toEqual({ http: 0 });
  });

  it('attaches a route to the listeners on the port it names (httproute-listener-port-matching)', () => {
    const parent = (extra: Record<string, unknown>) => ({
      name: 'httproute-listener-port-matching',
      namespace: INFRA,
      ...extra,
    });
    const outcome = build({
      gateways: [
        gateway('httproute-listener-port-matching', [
          http('listener-1', { ...FROM_SAME, hostname: 'foo.com' }),
          http('listener-2', { ...FROM_SAME, port: 8080, hostname: 'foo.com' }),
          http('listener-3', { ...FROM_SAME, port: 8080, hostname: 'bar.com' }),
          http('listener-4', { ...FROM_SAME, port: 8090, hostname: 'foo.com' }),
          http('listener-5', { ...FROM_SAME, port: 8090, hostname: 'bar.com' }),
        ]),
      ],
      httpRoutes: [
        route('backend-v1', [parent({ port: 80 })]),
        route('backend-v2', [parent({ port: 8080 })]),
        route('backend-v3', [parent({ port: 8090, sectionName: 'listener-4' })]),
      ],
    });
    expect(attachedRoutes(outcome, 'httproute-listener-port-matching')).toEqual({
      'listener-1': 1,
      'listener-2': 1,
      'listener-3': 1,
      'listener-4': 1,
      'listener-5': 0,
    });
    for (const name of ['backend-v1', 'backend-v2', 'backend-v3']) {
      expect(parentLines(outcome, name)).toEqual(['True Accepted / True ResolvedRefs']);
    }
  });

  it('attaches routes to HTTPS listeners by hostname (httproute-https-listener)', () => {
    const outcome = build({
      httpRoutes: [
        route('httproute-https-test', [{ name: 'same-namespace-with-https-listener' }], {
          hostnames: ['example.org'],
        }),
        route(
          'httproute-https-test-no-hostname',
          [{ name: 'same-namespace-with-https-listener', sectionName: 'https-with-hostname' }],
          {
            rules: [{ backendRefs: [backend('infra-backend-v2', 8080)] }],
          },
        ),
      ],
    });
    const gatewayKey = `${INFRA}/same-namespace-with-https-listener`;
    expect(outcome.snapshot.gatewayRoutes[`${INFRA}/httproute-https-test`]?.attachments).toEqual([
      { gateway: gatewayKey, listener: 'https', hostnames: ['example.org'] },
    ]);
    expect(
      outcome.snapshot.gatewayRoutes[`${INFRA}/httproute-https-test-no-hostname`]?.attachments,
    ).toEqual([
      { gateway: gatewayKey, listener: 'https-with-hostname', hostnames: ['second-example.org'] },
    ]);
    for (const entry of gatewayStatus(outcome, 'same-namespace-with-https-listener').listeners) {
      expect(conditions(entry)).toEqual(SERVED);
    }
  });

  it('keeps a backend of an unknown kind as invalid (httproute-invalid-backendref-unknown-kind)', () => {
    const outcome = build({
      httpRoutes: [
        route('invalid-backend-ref-unknown-kind', [{ name: 'same-namespace' }], {
          rules: [
            {
              backendRefs: [
                {
                  group: 'unknownkind.example.com',
                  kind: 'NonExistent',
                  name: 'infra-backend-v1',
                  port: 8080,
                },
              ],
            },
          ],
        }),
      ],
    });
    expect(parentLines(outcome, 'invalid-backend-ref-unknown-kind')).toEqual([
      'True Accepted / False InvalidKind',
    ]);
    expect(
      outcome.snapshot.gatewayRoutes[`${INFRA}/invalid-backend-ref-unknown-kind`]?.rules[0]
        ?.backends,
    ).toEqual([{ service: `${INFRA}/infra-backend-v1`, port: 8080, weight: 1, invalid: true }]);
    expect(attachedRoutes(outcome, 'same-namespace')).toEqual({ http: 1 });
  });

  it('refuses a backend of another namespace without a ReferenceGrant (httproute-invalid-cross-namespace-backend-ref)', () => {
    const outcome = build({
      httpRoutes: [
        route('invalid-cross-namespace-backend-ref', [{ name: 'same-namespace' }], {
          rules: [{ backendRefs: [backend('web-backend', 8080, { namespace: WEB })] }],
        }),
      ],
    });
    expect(parentLines(outcome, 'invalid-cross-namespace-backend-ref')).toEqual([
      'True Accepted / False RefNotPermitted',
    ]);
    expect(
      outcome.snapshot.gatewayRoutes[`${INFRA}/invalid-cross-namespace-backend-ref`]?.rules[0]
        ?.backends[0]?.invalid,
    ).toBe(true);
  });

  it('keeps a backend that does not exist as invalid (httproute-invalid-nonexistent-backendref)', () => {
    const outcome = build({
      httpRoutes: [
        route('invalid-nonexistent-backend-ref', [{ name: 'same-namespace' }], {
          rules: [{ backendRefs: [backend('nonexistent', 8080, { namespace: INFRA })] }],
        }),
      ],
    });
    expect(parentLines(outcome, 'invalid-nonexistent-backend-ref')).toEqual([
      'True Accepted / False BackendNotFound',
    ]);
  });

  const webRoute = route('reference-grant', [{ name: 'same-namespace' }], {
    rules: [{ backendRefs: [backend('web-backend', 8080, { namespace: WEB })] }],
  });
  const fromRoutes = { group: GROUP, kind: 'HTTPRoute', namespace: INFRA };
  const toWeb = { group: '', kind: 'Service', name: 'web-backend' };

  it('uses a backend of another namespace granted to HTTPRoutes (httproute-reference-grant)', () => {
    const outcome = build({
      httpRoutes: [webRoute],
      referenceGrants: [grant(WEB, 'reference-grant', fromRoutes, toWeb)],
    });
    expect(parentLines(outcome, 'reference-grant')).toEqual(['True Accepted / True ResolvedRefs']);
    expect(outcome.snapshot.gatewayRoutes[`${INFRA}/reference-grant`]?.rules[0]?.backends).toEqual([
      { service: `${WEB}/web-backend`, port: 8080, weight: 1 },
    ]);
  });

  it('refuses a backend whose ReferenceGrants do not fit (httproute-invalid-reference-grant)', () => {
    const outcome = build({
      httpRoutes: [webRoute],
      referenceGrants: [
        grant(INFRA, 'reference-grant-wrong-namespace', fromRoutes, toWeb),
        grant(
          WEB,
          'reference-grant-wrong-from-group',
          { ...fromRoutes, group: 'not-the-group-youre-looking-for' },
          toWeb,
        ),
        grant(WEB, 'reference-grant-wrong-from-kind', { ...fromRoutes, kind: 'Gateway' }, toWeb),
        grant(
          WEB,
          'reference-grant-wrong-from-namespace',
          { ...fromRoutes, namespace: 'not-the-namespace-youre-looking-for' },
          toWeb,
        ),
        grant(WEB, 'reference-grant-wrong-to-group', fromRoutes, {
          ...toWeb,
          group: 'not-the-group-youre-looking-for',
        }),
        grant(WEB, 'reference-grant-wrong-to-kind', fromRoutes, { ...toWeb, kind: 'Secret' }),
        grant(WEB, 'reference-grant-wrong-to-name', fromRoutes, {
          ...toWeb,
          kind: 'Secret',
          name: 'not-the-service-youre-looking-for',
        }),
      ],
    });
    expect(parentLines(outcome, 'reference-grant')).toEqual([
      'True Accepted / False RefNotPermitted',
    ]);
  });

  it('serves the granted backend and answers 500 for the other (httproute-partially-invalid-via-invalid-reference-grant)', () => {
    const outcome = build({
      httpRoutes: [
        route('invalid-reference-grant', [{ name: 'same-namespace' }], {
          rules: [
            {
              matches: [{ path: { type: 'PathPrefix', value: '/v2' } }],
              backendRefs: [backend('app-backend-v2', 8080, { namespace: APP })],
            },
            { backendRefs: [backend('app-backend-v1', 8080, { namespace: APP })] },
          ],
        }),
      ],
      referenceGrants: [
        grant(APP, 'invalid-reference-grant', fromRoutes, {
          group: '',
          kind: 'Service',
          name: 'app-backend-v1',
        }),
      ],
    });
    expect(parentLines(outcome, 'invalid-reference-grant')).toEqual([
      'True Accepted / False RefNotPermitted',
    ]);
    const rules = outcome.snapshot.gatewayRoutes[`${INFRA}/invalid-reference-grant`]?.rules;
    expect(rules?.map((rule) => rule.backends)).toEqual([
      [{ service: `${APP}/app-backend-v2`, port: 8080, weight: 1, invalid: true }],
      [{ service: `${APP}/app-backend-v1`, port: 8080, weight: 1 }],
    ]);
  });

  it('attaches routes with overlapping hostnames to one listener (httproute-matching-across-routes)', () => {
    const outcome = build({
      httpRoutes: [
        route('matching-part1', [{ name: 'same-namespace' }], {
          hostnames: ['example.com', 'example.net'],
        }),
        route('matching-part2', [{ name: 'same-namespace' }], { hostnames: ['example.com'] }),
      ],
    });
    expect(attachedRoutes(outcome, 'same-namespace')).toEqual({ http: 2 });
    expect(
      outcome.snapshot.gatewayRoutes[`${INFRA}/matching-part1`]?.attachments[0]?.hostnames,
    ).toEqual(['example.com', 'example.net']);
  });

  it('attaches one route to several Gateways (httproute-multiple-gateways)', () => {
    const outcome = build({
      httpRoutes: [
        route('multiple-gateways-shared-route', [
          { name: 'same-namespace' },
          { name: 'all-namespaces' },
        ]),
        route('same-namespace-dedicated-route', [{ name: 'same-namespace' }]),
        route('all-namespaces-dedicated-route', [{ name: 'all-namespaces' }]),
      ],
    });
    expect(parentLines(outcome, 'multiple-gateways-shared-route')).toEqual([
      'True Accepted / True ResolvedRefs',
      'True Accepted / True ResolvedRefs',
    ]);
    expect(
      outcome.snapshot.gatewayRoutes[`${INFRA}/multiple-gateways-shared-route`]?.attachments,
    ).toEqual([
      { gateway: `${INFRA}/all-namespaces`, listener: 'http', hostnames: [] },
      { gateway: `${INFRA}/same-namespace`, listener: 'http', hostnames: [] },
    ]);
    expect(attachedRoutes(outcome, 'same-namespace')).toEqual({ http: 2 });
    expect(attachedRoutes(outcome, 'all-namespaces')).toEqual({ http: 2 });
  });

  it('reports the route generation for every parent (httproute-observed-generation-bump)', () => {
    const object = route('observed-generation-bump', [{ name: 'same-namespace' }]);
    const bumped = { ...object, metadata: { ...object.metadata, generation: 3 } };
    const outcome = build({ httpRoutes: [bumped] });
    expect(
      outcome.routeStatuses.find((status) => status.name === 'observed-generation-bump')
        ?.generation,
    ).toBe(3);
  });

  it('answers 500 for rules without backendRefs (httproute-omitted-backendrefs)', () => {
    const outcome = build({
      httpRoutes: [
        route('omitted-backendrefs', [{ name: 'same-namespace' }], {
          rules: [
            { matches: [{ path: { type: 'Exact', value: '/omitted-no-forward' } }] },
            { matches: [{ path: { type: 'Exact', value: '/empty-no-forward' } }], backendRefs: [] },
            {
              matches: [{ path: { type: 'PathPrefix', value: '/' } }],
              backendRefs: [backend('infra-backend-v1', 8080)],
            },
          ],
        }),
      ],
    });
    expect(parentLines(outcome, 'omitted-backendrefs')).toEqual([
      'True Accepted / True ResolvedRefs',
    ]);
    expect(
      outcome.snapshot.gatewayRoutes[`${INFRA}/omitted-backendrefs`]?.rules.map(
        (rule) => rule.backends.length,
      ),
    ).toEqual([0, 0, 1]);
  });

  it('routes to headless Services and Services with manual EndpointSlices (httproute-service-types)', () => {
    const outcome = build({
      services: [
        service(INFRA, 'manual-endpointslices', {
          ports: [{ name: 'first-port', port: 8080, targetPort: 3000 }],
        }),
        service(INFRA, 'headless', {
          clusterIP: 'None',
          ports: [{ name: 'first-port', port: 8080, targetPort: 3000 }],
        }),
        service(INFRA, 'headless-manual-endpointslices', {
          clusterIP: 'None',
          ports: [{ name: 'first-port', port: 8080, targetPort: 3000 }],
        }),
      ],
      httpRoutes: [
        route('service-types', [{ name: 'same-namespace' }], {
          rules: ['manual-endpointslices', 'headless', 'headless-manual-endpointslices'].map(
            (name) => ({
              matches: [{ path: { type: 'Exact', value: `/${name}` } }],
              backendRefs: [backend(name, 8080)],
            }),
          ),
        }),
      ],
    });
    expect(parentLines(outcome, 'service-types')).toEqual(['True Accepted / True ResolvedRefs']);
  });

  it('keeps the weights and leaves out backends of weight 0 (httproute-weight)', () => {
    const outcome = build({
      httpRoutes: [
        route('weighted-backends', [{ name: 'same-namespace' }], {
          rules: [
            {
              backendRefs: [
                backend('infra-backend-v1', 8080, { weight: 70 }),
                backend('infra-backend-v2', 8080, { weight: 30 }),
                backend('infra-backend-v3', 8080, { weight: 0 }),
              ],
            },
          ],
        }),
      ],
    });
    expect(
      outcome.snapshot.gatewayRoutes[`${INFRA}/weighted-backends`]?.rules[0]?.backends,
    ).toEqual([
      { service: `${INFRA}/infra-backend-v1`, port: 8080, weight: 70 },
      { service: `${INFRA}/infra-backend-v2`, port: 8080, weight: 30 },
    ]);
  });

  describe('gateway-with-attached-routes', () => {
    const selectInfra = {
      allowedRoutes: {
        kinds: [{ kind: 'HTTPRoute' }],
        namespaces: {
          from: 'Selector',
          selector: { matchLabels: { 'kubernetes.io/metadata.name': INFRA } },
        },
      },
    };
    const parent = (name: string, extra: Record<string, unknown> = {}) => ({
      kind: 'Gateway',
      name,
      namespace: INFRA,
      ...extra,
    });
    const outcome = build({
      gateways: [
        gateway('gateway-with-one-attached-route', [http('http', selectInfra)]),
        gateway('gateway-with-two-attached-routes', [
          http('http', { ...selectInfra, hostname: 'foo.example.com' }),
        ]),
        gateway('unresolved-gateway-with-one-attached-unresolved-route', [
          {
            ...https('tls', [secretRef('does-not-exist')], selectInfra),
            tls: { certificateRefs: [secretRef('does-not-exist')], mode: 'Terminate' },
          },
        ]),
        gateway('gateway-with-two-listeners-and-one-attached-route', [
          http('http-unattached', {
            port: 8080,
            allowedRoutes: { kinds: [{ kind: 'HTTPRoute' }], namespaces: { from: 'All' } },
          }),
          http('http', {
            allowedRoutes: { kinds: [{ kind: 'HTTPRoute' }], namespaces: { from: 'All' } },
          }),
        ]),
      ],
      httpRoutes: [
        route('http-route-1', [parent('gateway-with-one-attached-route')]),
        route('http-route-2', [parent('gateway-with-two-attached-routes')]),
        route('http-route-3', [parent('gateway-with-two-attached-routes')]),
        route('http-route-not-accepted', [parent('gateway-with-two-attached-routes')], {
          hostnames: ['not-accepted.test.com'],
        }),
        route(
          'http-route-4',
          [parent('unresolved-gateway-with-one-attached-unresolved-route', { sectionName: 'tls' })],
          {
            rules: [{ backendRefs: [backend('does-not-exist', 8080)] }],
          },
        ),
        route('http-route-4-port-8080', [
          parent('gateway-with-two-listeners-and-one-attached-route', { sectionName: 'http' }),
        ]),
      ],
    });

    it('counts one route on a listener selecting the namespace by its name label', () => {
      expect(attachedRoutes(outcome, 'gateway-with-one-attached-route')).toEqual({ http: 1 });
    });

    it('counts two routes and leaves out the one whose hostname does not intersect', () => {
      expect(attachedRoutes(outcome, 'gateway-with-two-attached-routes')).toEqual({ http: 2 });
      expect(parentLines(outcome, 'http-route-not-accepted')).toEqual([
        'False NoMatchingListenerHostname / True ResolvedRefs',
      ]);
    });

    it('counts a route on a listener whose certificate does not resolve, which is not served', () => {
      const entry = listener(
        outcome,
        'unresolved-gateway-with-one-attached-unresolved-route',
        'tls',
      );
      expect(entry.attachedRoutes).toBe(1);
      expect(conditions(entry)).toEqual([
        'Accepted True Accepted',
        'Conflicted False NoConflicts',
        'ResolvedRefs False InvalidCertificateRef',
        'Programmed False Invalid',
      ]);
      expect(parentLines(outcome, 'http-route-4')).toEqual([
        'True Accepted / False BackendNotFound',
      ]);
      expect(outcome.snapshot.gatewayRoutes[`${INFRA}/http-route-4`]).toBeUndefined();
    });

    it('counts a route only on the listener its sectionName names (GatewayWithAttachedRoutesWithPort8080)', () => {
      expect(attachedRoutes(outcome, 'gateway-with-two-listeners-and-one-attached-route')).toEqual({
        'http-unattached': 0,
        http: 1,
      });
    });
  });

  it('refuses a route using a field the mesh does not implement on every Gateway parent, counting it nowhere', () => {
    const outcome = build({
      httpRoutes: [
        route('unsupported', [{ name: 'same-namespace' }], {
          rules: [
            {
              filters: [
                { type: 'ExtensionRef', extensionRef: { group: 'x', kind: 'Y', name: 'z' } },
              ],
              backendRefs: [backend('infra-backend-v1', 8080)],
            },
          ],
        }),
      ],
    });
    expect(parentLines(outcome, 'unsupported')[0]).toMatch(/^False UnsupportedValue/);
    expect(attachedRoutes(outcome, 'same-namespace')).toEqual({ http: 0 });
    expect(outcome.snapshot.gatewayRoutes[`${INFRA}/unsupported`]).toBeUndefined();
  });

  it('merges the Service and Gateway parents of one route into one status, in parentRefs order', () => {
    const outcome = build({
      httpRoutes: [
        route('both', [
          { name: 'all-namespaces' },
          serviceParent('infra-backend-v1', { port: 8080 }),
          { name: 'same-namespace', sectionName: 'http' },
        ]),
      ],
    });
    const statuses = outcome.routeStatuses.filter((status) => status.name === 'both');
    expect(statuses).toHaveLength(1);
    expect(statuses[0]?.parents.map((parent) => parent.parentRef)).toEqual([
      { group: GROUP, kind: 'Gateway', name: 'all-namespaces' },
      { group: '', kind: 'Service', name: 'infra-backend-v1', port: 8080 },
      { group: GROUP, kind: 'Gateway', name: 'same-namespace', sectionName: 'http' },
    ]);
    expect(outcome.snapshot.httpRoutes[`${INFRA}/both`]).toBeDefined();
    expect(outcome.snapshot.gatewayRoutes[`${INFRA}/both`]).toBeDefined();
  });

  it('gives no status to a route naming only Gateways of other classes or none at all', () => {
    const outcome = build({
      httpRoutes: [
        route('elsewhere', [
          { name: 'missing' },
          { group: 'example.com', kind: 'Gateway', name: 'same-namespace' },
        ]),
      ],
    });
    expect(outcome.routeStatuses.map((status) => status.name)).not.toContain('elsewhere');
  });

  it('skips routes in the ignored namespaces', () => {
    const outcome = build({
      gateways: [gateway('everyone', [http('http', FROM_ALL)])],
      httpRoutes: [route('system', [{ name: 'everyone', namespace: INFRA }], {}, 'kube-system')],
    });
    expect(outcome.routeStatuses.map((status) => status.namespace)).not.toContain('kube-system');
    expect(attachedRoutes(outcome, 'everyone')).toEqual({ http: 0 });
  });

  it('does not depend on the order of its input and never throws on odd objects', () => {
    const extra: Partial<ClusterState> = {
      gateways: [
        gateway('odd', [
          null,
          { name: 'x', port: '80', protocol: 7 },
          http('y', { allowedRoutes: 'all' }),
        ]),
        { metadata: { name: 'no-namespace' } },
      ],
      gatewayClasses: [{ metadata: {} }, { spec: null }],
      tlsSecrets: [{ metadata: { name: 's', namespace: INFRA }, data: { 'tls.crt': 5 } }],
      httpRoutes: [
        route('b', [{ name: 'same-namespace' }, { name: 'odd', port: 'x' }], {
          hostnames: [3, 'EXAMPLE.com'],
        }),
        route('a', [{ name: 'all-namespaces' }]),
        {
          metadata: { name: 'bare', namespace: INFRA },
          spec: { parentRefs: [{ name: 'same-namespace' }] },
        },
      ],
    };
    const forward = build(extra);
    const reversed = buildSnapshot(reversedLists(base()), SETTINGS);
    expect(reversed.gatewayStatuses).toEqual(build().gatewayStatuses);
    expect(reversed.snapshot.gateways).toEqual(build().snapshot.gateways);
    const again = build(reversedLists(extra));
    expect(JSON.stringify(again)).toBe(JSON.stringify(forward));
    expect(parentLines(forward, 'b')).toEqual([
      'True Accepted / True ResolvedRefs',
      'False NoMatchingParent / True ResolvedRefs',
    ]);
    expect(forward.snapshot.gatewayRoutes[`${INFRA}/b`]?.attachments[0]?.hostnames).toEqual([
      'example.com',
    ]);
  });
});
