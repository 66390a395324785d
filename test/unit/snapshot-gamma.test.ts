import { buildSnapshot } from '../../src/manifests/snapshot/build';
import type { ClusterState, KubeObject } from '../../src/manifests/snapshot/build';
import type { RouteStatus } from '../../src/manifests/snapshot/types';
import {
  backend,
  grpcRoute,
  httpRoute,
  referenceGrant,
  serviceParent,
} from '../support/gateway-objects';
import { service, SETTINGS, state, trafficSplit, trafficTarget } from '../support/kube-objects';

/** web (80 "http", 8080 "admin"), web-v2 (80) and db (5432) in shop; api (80) in other. */
function services(): KubeObject[] {
  return [
    service('shop', 'web', {
      ports: [
        { name: 'http', port: 80 },
        { name: 'admin', port: 8080 },
      ],
    }),
    service('shop', 'web-v2'),
    service('shop', 'db', { ports: [{ name: 'postgres', port: 5432 }] }),
    service('other', 'api'),
  ];
}

function build(parts: Partial<ClusterState>) {
  return buildSnapshot(state({ services: services(), ...parts }), SETTINGS);
}

function routes(...httpRoutes: KubeObject[]) {
  return build({ httpRoutes });
}

function statusOf(outcome: { routeStatuses: readonly RouteStatus[] }, name: string): RouteStatus {
  const found = outcome.routeStatuses.find((status) => status.name === name);
  if (found === undefined) throw new Error(`no status for ${name}`);
  return found;
}

/** "<Accepted reason>: <message>" of every parent of the route's status. */
function acceptedLines(httpRoute: KubeObject, parts: Partial<ClusterState> = {}): string[] {
  const outcome = build({ httpRoutes: [httpRoute], ...parts });
  return outcome.routeStatuses.flatMap((status) =>
    status.parents.map(
      (parent) => `${parent.accepted.status} ${parent.accepted.reason}: ${parent.accepted.message}`,
    ),
  );
}

/** "<ResolvedRefs status> <reason>: <message>" of the route's first parent. */
function resolvedRefsLine(httpRoute: KubeObject, parts: Partial<ClusterState> = {}): string {
  const outcome = build({ httpRoutes: [httpRoute], ...parts });
  const condition = outcome.routeStatuses[0]?.parents[0]?.resolvedRefs;
  return `${condition?.status} ${condition?.reason}: ${condition?.message}`;
}

describe('buildSnapshot: HTTPRoutes attached to Services', () => {
  it('accepts a producer route and fills the snapshot entry with its defaults', () => {
    const outcome = routes(
      httpRoute('shop', 'web-route', 'web', {
        created: '2026-01-02T03:04:05Z',
        generation: 4,
        rules: [{ backendRefs: [backend('web-v2', 80)] }],
      }),
    );
    expect(outcome.snapshot.httpRoutes).toEqual({
      'shop/web-route': {
        namespace: 'shop',
        name: 'web-route',
        created: '2026-01-02T03:04:05Z',
        parents: [{ service: 'shop/web' }],
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
            backends: [{ service: 'shop/web-v2', port: 80, weight: 1 }],
          },
        ],
      },
    });
    expect(outcome.routeStatuses).toEqual([
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        namespace: 'shop',
        name: 'web-route',
        generation: 4,
        parents: [
          {
            parentRef: { group: '', kind: 'Service', name: 'web' },
            accepted: {
              status: 'True',
              reason: 'Accepted',
              message: 'accepted for Service shop/web',
            },
            resolvedRefs: {
              status: 'True',
              reason: 'ResolvedRefs',
              message: 'every backendRef resolved',
            },
          },
        ],
      },
    ]);
    expect(outcome.problems).toEqual([]);
  });

  it('gives a route without a creationTimestamp an empty created and one without rules a rule with no backends', () => {
    const { snapshot } = routes(httpRoute('shop', 'bare', 'web'));
    expect(snapshot.httpRoutes['shop/bare']).toMatchObject({
      created: '',
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
          backends: [],
        },
      ],
    });
  });

  it('leaves routes of Gateways alone and reports only the Service parents of a mixed route', () => {
    const gatewayOnly = httpRoute('shop', 'north-south', 'web', {
      parentRefs: [
        { name: 'edge' },
        { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge' },
      ],
    });
    const mixed = httpRoute('shop', 'mixed', 'web', {
      parentRefs: [
        { kind: 'Gateway', name: 'edge' },
        { kind: 'Service', name: 'web', port: 80 },
      ],
    });
    const otherGroup = httpRoute('shop', 'other-group', 'web', {
      parentRefs: [{ group: 'example.com', kind: 'Service', name: 'web' }],
    });
    const outcome = routes(gatewayOnly, mixed, otherGroup);
    expect(outcome.routeStatuses.map((status) => status.name)).toEqual(['mixed']);
    expect(statusOf(outcome, 'mixed').parents.map((parent) => parent.parentRef)).toEqual([
      { group: '', kind: 'Service', name: 'web', port: 80 },
    ]);
    expect(Object.keys(outcome.snapshot.httpRoutes)).toEqual(['shop/mixed']);
    expect(outcome.snapshot.httpRoutes['shop/mixed']?.parents).toEqual([
      { service: 'shop/web', port: 80 },
    ]);
  });

  it('echoes each parentRef once with group "" and kind Service, keeping what the route wrote', () => {
    const outcome = routes(
      httpRoute('shop', 'r', 'web', {
        parentRefs: [
          { kind: 'Service', name: 'web', namespace: 'shop', port: 80 },
          { kind: 'Service', name: 'web', namespace: 'shop', port: 80 },
          { group: '', kind: 'Service', name: 'db' },
        ],
      }),
    );
    expect(statusOf(outcome, 'r').parents.map((parent) => parent.parentRef)).toEqual([
      { group: '', kind: 'Service', name: 'web', namespace: 'shop', port: 80 },
      { group: '', kind: 'Service', name: 'db' },
    ]);
  });

  it('accepts a consumer route in another namespace and sorts and deduplicates its parents', () => {
    const outcome = routes(
      httpRoute('other', 'to-shop', 'web', {
        parentRefs: [
          serviceParent('web', { namespace: 'shop', port: 8080 }),
          serviceParent('api'),
          serviceParent('web', { namespace: 'shop', sectionName: 'admin' }),
          serviceParent('web', { namespace: 'shop' }),
        ],
      }),
    );
    expect(outcome.snapshot.httpRoutes['other/to-shop']?.parents).toEqual([
      { service: 'other/api' },
      { service: 'shop/web' },
      { service: 'shop/web', port: 8080 },
    ]);
    expect(
      acceptedLines(
        httpRoute('other', 'c', 'x', { parentRefs: [serviceParent('web', { namespace: 'shop' })] }),
      ),
    ).toEqual(['True Accepted: accepted for Service shop/web']);
  });

  it('takes the parent port from sectionName, the name of a Service port', () => {
    const outcome = routes(
      httpRoute('shop', 'admin', 'web', {
        parentRefs: [serviceParent('web', { sectionName: 'admin', port: 8080 })],
      }),
    );
    expect(outcome.snapshot.httpRoutes['shop/admin']?.parents).toEqual([
      { service: 'shop/web', port: 8080 },
    ]);
    expect(statusOf(outcome, 'admin').parents[0]?.accepted.message).toBe(
      'accepted for port 8080 of Service shop/web',
    );
  });

  it.each([
    [serviceParent('nope'), 'spec.parentRefs[0].name "nope": no Service shop/nope in the mesh'],
    [
      serviceParent('web', { namespace: 'elsewhere' }),
      'spec.parentRefs[0].name "web": no Service elsewhere/web in the mesh',
    ],
    [
      serviceParent('coredns', { namespace: 'kube-system' }),
      'spec.parentRefs[0].name "coredns": no Service kube-system/coredns in the mesh',
    ],
    [
      serviceParent('web', { port: 81 }),
      'spec.parentRefs[0].port 81: Service shop/web has no such port',
    ],
    [
      serviceParent('web', { port: 'http' }),
      'spec.parentRefs[0].port "http": Service shop/web has no such port',
    ],
    [
      serviceParent('web', { sectionName: 'grpc' }),
      'spec.parentRefs[0].sectionName "grpc": Service shop/web has no port of that name',
    ],
    [
      serviceParent('web', { sectionName: 'http', port: 8080 }),
      'spec.parentRefs[0].sectionName "http": names port 80 of Service shop/web, not port 8080',
    ],
    [{ kind: 'Service' }, 'spec.parentRefs[0].name is missing'],
  ])('does not accept the parent %j (NoMatchingParent)', (parentRef, message) => {
    expect(acceptedLines(httpRoute('shop', 'r', 'web', { parentRefs: [parentRef] }))).toEqual([
      `False NoMatchingParent: ${message}`,
    ]);
    expect(
      routes(httpRoute('shop', 'r', 'web', { parentRefs: [parentRef] })).snapshot.httpRoutes,
    ).toEqual({});
  });

  it('keeps the parents that match when another parent does not', () => {
    const outcome = routes(
      httpRoute('shop', 'r', 'web', {
        parentRefs: [serviceParent('nope'), serviceParent('db')],
      }),
    );
    expect(statusOf(outcome, 'r').parents.map((parent) => parent.accepted.reason)).toEqual([
      'NoMatchingParent',
      'Accepted',
    ]);
    expect(outcome.snapshot.httpRoutes['shop/r']?.parents).toEqual([{ service: 'shop/db' }]);
  });

  it('skips routes in kube-system and the mesh namespace', () => {
    const outcome = build({
      services: [...services(), service('kube-system', 'dns'), service('nginx-mesh', 'nats')],
      httpRoutes: [httpRoute('kube-system', 'r', 'dns'), httpRoute('nginx-mesh', 'r', 'nats')],
    });
    expect(outcome.routeStatuses).toEqual([]);
    expect(outcome.snapshot.httpRoutes).toEqual({});
  });

  it('survives objects of the wrong shape', () => {
    const odd: KubeObject[] = [
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'x' } },
      { metadata: { name: 'a', namespace: 'shop' }, spec: 'nonsense' },
      { metadata: { name: 'b', namespace: 'shop' }, spec: { parentRefs: { kind: 'Service' } } },
      httpRoute('shop', 'c', 'web', {
        rules: [null, 7, { matches: 'all', filters: [null], backendRefs: [null, 'x'] }],
      }),
    ];
    const outcome = build({ httpRoutes: odd, referenceGrants: [{ spec: 3 }] });
    expect(outcome.routeStatuses.map((status) => status.name)).toEqual(['c']);
    expect(statusOf(outcome, 'c').parents[0]?.accepted).toEqual({
      status: 'False',
      reason: 'UnsupportedValue',
      message: 'spec.rules[2].filters[0].type is missing',
    });
  });
});

describe('buildSnapshot: HTTPRoute mirrors and timeouts', () => {
  const mirror = (extra: Record<string, unknown>, name = 'web-v2') => ({
    type: 'RequestMirror',
    requestMirror: { backendRef: backend(name, 80), ...extra },
  });

  it('reads every mirror with its share: all, percent, or a fraction', () => {
    const outcome = routes(
      httpRoute('shop', 'r', 'web', {
        rules: [
          {
            backendRefs: [backend('web', 80)],
            filters: [
              mirror({}),
              mirror({ percent: 25 }),
              mirror({ fraction: { numerator: 1, denominator: 3 } }),
              mirror({ percent: 0 }),
            ],
          },
        ],
      }),
    );
    expect(outcome.snapshot.httpRoutes['shop/r']?.rules[0]?.mirrors).toEqual([
      { service: 'shop/web-v2', port: 80, percent: 100 },
      { service: 'shop/web-v2', port: 80, percent: 25 },
      { service: 'shop/web-v2', port: 80, percent: 33.33 },
    ]);
  });

  it('leaves out a mirror whose backend does not resolve, and says so in ResolvedRefs', () => {
    const object = httpRoute('shop', 'r', 'web', {
      rules: [{ backendRefs: [backend('web', 80)], filters: [mirror({}, 'gone')] }],
    });
    const outcome = routes(object);
    expect(outcome.snapshot.httpRoutes['shop/r']?.rules[0]?.mirrors).toBeUndefined();
    expect(resolvedRefsLine(object)).toBe(
      'False BackendNotFound: spec.rules[0].filters[0].requestMirror.backendRef.name "gone": no Service shop/gone',
    );
  });

  it('reads retries, with one attempt and the four required codes by default', () => {
    const outcome = routes(
      httpRoute('shop', 'r', 'web', {
        rules: [
          {
            backendRefs: [backend('web', 80)],
            retry: { attempts: 3, codes: [504, 503, 503], backoff: '250ms' },
          },
          { backendRefs: [backend('web', 80)], retry: {} },
        ],
      }),
    );
    expect(outcome.snapshot.httpRoutes['shop/r']?.rules.map((rule) => rule.retry)).toEqual([
      { attempts: 3, codes: [503, 504], backoffMs: 250 },
      { attempts: 1, codes: [500, 502, 503, 504], backoffMs: 0 },
    ]);
  });

  it('reads timeouts in milliseconds, "0s" as none', () => {
    const outcome = routes(
      httpRoute('shop', 'r', 'web', {
        rules: [
          {
            backendRefs: [backend('web', 80)],
            timeouts: { request: '1m30s', backendRequest: '500ms' },
          },
          { backendRefs: [backend('web', 80)], timeouts: { request: '0s' } },
          { backendRefs: [backend('web', 80)], timeouts: { backendRequest: '2h' } },
        ],
      }),
    );
    expect(outcome.snapshot.httpRoutes['shop/r']?.rules.map((rule) => rule.timeouts)).toEqual([
      { requestMs: 90_000, backendRequestMs: 500 },
      { requestMs: 0 },
      { backendRequestMs: 7_200_000 },
    ]);
  });
});

describe('buildSnapshot: HTTPRoute fields this mesh refuses', () => {
  const rule = (fields: Record<string, unknown>): KubeObject =>
    httpRoute('shop', 'r', 'web', { rules: [{ backendRefs: [backend('web', 80)], ...fields }] });
  const filter = (value: Record<string, unknown>) => rule({ filters: [value] });
  const match = (value: Record<string, unknown>) => rule({ matches: [value] });

  it.each(
    (
      [
        [
          filter({ type: 'ExtensionRef', extensionRef: { group: 'x', kind: 'Y', name: 'z' } }),
          'spec.rules[0].filters[0].type "ExtensionRef": not supported by this mesh',
        ],
        [
          filter({ type: 'CORS', cors: {} }),
          'spec.rules[0].filters[0].type "CORS": not supported by this mesh',
        ],
        [
          filter({ type: 'ExternalAuth', externalAuth: {} }),
          'spec.rules[0].filters[0].type "ExternalAuth": not supported by this mesh',
        ],
        [
          filter({ type: 'Teleport' }),
          'spec.rules[0].filters[0].type "Teleport": not supported by this mesh',
        ],
        [
          rule({
            backendRefs: [
              backend('web', 80, {
                filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: {} }],
              }),
            ],
          }),
          'spec.rules[0].backendRefs[0].filters: not supported by this mesh',
        ],
        [
          rule({ timeouts: { request: '10 s' } }),
          'spec.rules[0].timeouts.request "10 s": expected a duration such as "10s" or "1m30s"',
        ],
        [
          rule({ timeouts: { request: '1s', backendRequest: '2s' } }),
          'spec.rules[0].timeouts.backendRequest "2s": longer than request "1s"',
        ],
        [
          filter({
            type: 'RequestMirror',
            requestMirror: { backendRef: backend('db', 5432), percent: 101 },
          }),
          'spec.rules[0].filters[0].requestMirror.percent 101: expected an integer from 0 to 100',
        ],
        [
          rule({ retry: { attempts: 11 } }),
          'spec.rules[0].retry.attempts 11: expected an integer from 1 to 10',
        ],
        [
          rule({ retry: { codes: [503, 404] } }),
          'spec.rules[0].retry.codes[1] 404: expected a status from 500 to 599',
        ],
        [
          rule({ retry: { backoff: 'soon' } }),
          'spec.rules[0].retry.backoff "soon": expected a duration such as "10s" or "1m30s"',
        ],
        [
          rule({ sessionPersistence: { type: 'Cookie' } }),
          'spec.rules[0].sessionPersistence: not supported by this mesh',
        ],
        [
          match({ headers: [{ type: 'Prefix', name: 'x-a', value: 'b' }] }),
          'spec.rules[0].matches[0].headers[0].type "Prefix": expected Exact or RegularExpression',
        ],
        [
          match({ queryParams: [{ type: 'Suffix', name: 'a', value: 'b' }] }),
          'spec.rules[0].matches[0].queryParams[0].type "Suffix": expected Exact or RegularExpression',
        ],
        [
          match({ path: { type: 'Glob', value: '/a*' } }),
          'spec.rules[0].matches[0].path.type "Glob": expected Exact, PathPrefix or RegularExpression',
        ],
        [
          match({ path: { type: 'RegularExpression', value: '/(a+)\\1' } }),
          'spec.rules[0].matches[0].path.value "/(a+)\\\\1": backreferences are not supported at offset 5',
        ],
        [
          match({ path: { type: 'RegularExpression', value: '/(?=a)' } }),
          'spec.rules[0].matches[0].path.value "/(?=a)": only (?: groups are supported (no lookaround, named groups or options) at offset 1',
        ],
        [
          match({ headers: [{ type: 'RegularExpression', name: 'x-a', value: 'a**' }] }),
          'spec.rules[0].matches[0].headers[0].value "a**": quantifier follows a quantifier (use a group) at offset 2',
        ],
        [
          match({ queryParams: [{ type: 'RegularExpression', name: 'q', value: 'a{1,5000}' }] }),
          'spec.rules[0].matches[0].queryParams[0].value "a{1,5000}": quantifier {1,5000} repeats more than 1000 times at offset 1',
        ],
        [
          match({ path: { type: 'Exact', value: 'relative' } }),
          expect.stringMatching(
            /^spec\.rules\[0\]\.matches\[0\]\.path\.value "relative": expected an absolute path/,
          ),
        ],
        [
          match({ path: { type: 'PathPrefix', value: '/a/../b' } }),
          expect.stringMatching(
            /^spec\.rules\[0\]\.matches\[0\]\.path\.value "\/a\/\.\.\/b": expected an absolute path/,
          ),
        ],
        [
          match({ headers: [{ name: 'x_under', value: 'a' }] }),
          'spec.rules[0].matches[0].headers[0].name "x_under": expected a header name (letters, digits and "-", at most 64)',
        ],
        [
          match({ method: 'GET /' }),
          'spec.rules[0].matches[0].method "GET /": expected an HTTP method (letters, at most 32)',
        ],
        [
          rule({
            filters: [
              { type: 'RequestRedirect', requestRedirect: { scheme: 'https' } },
              { type: 'URLRewrite', urlRewrite: { hostname: 'a.example' } },
            ],
          }),
          'spec.rules[0].filters[1].type "URLRewrite": not allowed with a RequestRedirect in one rule',
        ],
        [
          rule({
            filters: [
              { type: 'RequestHeaderModifier', requestHeaderModifier: {} },
              { type: 'RequestHeaderModifier', requestHeaderModifier: {} },
            ],
          }),
          'spec.rules[0].filters[1].type "RequestHeaderModifier": given twice in one rule',
        ],
        [
          filter({ type: 'RequestRedirect', requestRedirect: { statusCode: 304 } }),
          'spec.rules[0].filters[0].requestRedirect.statusCode 304: expected 301, 302, 303, 307 or 308',
        ],
        [
          filter({ type: 'RequestRedirect', requestRedirect: { scheme: 'ftp' } }),
          'spec.rules[0].filters[0].requestRedirect.scheme "ftp": expected http or https',
        ],
        [filter({ type: 'URLRewrite' }), 'spec.rules[0].filters[0].urlRewrite is missing'],
        [
          rule({
            matches: [{ path: { type: 'Exact', value: '/old' } }],
            filters: [
              {
                type: 'URLRewrite',
                urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } },
              },
            ],
          }),
          'spec.rules[0].filters[0].urlRewrite.path.type "ReplacePrefixMatch": needs every match of the rule to be a PathPrefix',
        ],
        [
          filter({ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath' } } }),
          'spec.rules[0].filters[0].urlRewrite.path.replaceFullPath is missing',
        ],
        [
          filter({
            type: 'RequestHeaderModifier',
            requestHeaderModifier: { set: [{ name: 'x-a', value: 'a\nb' }] },
          }),
          'spec.rules[0].filters[0].requestHeaderModifier.set[0].value "a\\nb": expected at most 4096 characters, no control characters',
        ],
        [
          rule({ backendRefs: [backend('web', 80, { weight: -1 })] }),
          'spec.rules[0].backendRefs[0].weight -1: expected an integer from 0 to 1000000',
        ],
        [
          rule({ backendRefs: [backend('web', 80, { weight: 1_000_001 })] }),
          'spec.rules[0].backendRefs[0].weight 1000001: expected an integer from 0 to 1000000',
        ],
      ] as [KubeObject, unknown][]
    ).map(([object, message]) => [message, object] as const),
  )('refuses the whole route, naming the field: %s', (message, httpRouteObject) => {
    const outcome = routes(httpRouteObject);
    expect(outcome.snapshot.httpRoutes).toEqual({});
    expect(statusOf(outcome, 'r').parents[0]?.accepted).toEqual({
      status: 'False',
      reason: 'UnsupportedValue',
      message,
    });
  });

  it('reports a missing parent before an unsupported field, and the refusal on every parent that exists', () => {
    const object = httpRoute('shop', 'r', 'web', {
      parentRefs: [serviceParent('nope'), serviceParent('web'), serviceParent('db')],
      rules: [{ sessionPersistence: { type: 'Cookie' } }],
    });
    expect(acceptedLines(object)).toEqual([
      'False NoMatchingParent: spec.parentRefs[0].name "nope": no Service shop/nope in the mesh',
      'False UnsupportedValue: spec.rules[0].sessionPersistence: not supported by this mesh',
      'False UnsupportedValue: spec.rules[0].sessionPersistence: not supported by this mesh',
    ]);
  });

  it('still resolves the references of a refused route', () => {
    const object = httpRoute('shop', 'r', 'web', {
      rules: [{ sessionPersistence: {}, backendRefs: [backend('gone', 80)] }],
    });
    expect(resolvedRefsLine(object)).toBe(
      'False BackendNotFound: spec.rules[0].backendRefs[0].name "gone": no Service shop/gone',
    );
  });
});

describe('buildSnapshot: HTTPRoute backendRefs', () => {
  const withBackends = (namespace: string, ...backendRefs: unknown[]): KubeObject =>
    httpRoute(namespace, 'r', 'web', {
      parentRefs: [serviceParent('web', { namespace: 'shop' })],
      rules: [{ backendRefs }],
    });

  it('keeps weights, defaults them to 1 and leaves out backends of weight 0', () => {
    const { snapshot } = routes(
      withBackends(
        'shop',
        backend('web', 80, { weight: 90 }),
        backend('web-v2', 80),
        backend('db', 5432, { weight: 0 }),
      ),
    );
    expect(snapshot.httpRoutes['shop/r']?.rules[0]?.backends).toEqual([
      { service: 'shop/web', port: 80, weight: 90 },
      { service: 'shop/web-v2', port: 80, weight: 1 },
    ]);
  });

  it.each([
    [
      backend('gone', 80),
      'BackendNotFound',
      'spec.rules[0].backendRefs[0].name "gone": no Service shop/gone',
      { service: 'shop/gone', port: 80 },
    ],
    [
      { name: 'web' },
      'BackendNotFound',
      'spec.rules[0].backendRefs[0].port is missing: a Service backend needs one',
      { service: 'shop/web', port: 0 },
    ],
    [
      backend('web', 81),
      'BackendNotFound',
      'spec.rules[0].backendRefs[0].port 81: Service shop/web has no such port',
      { service: 'shop/web', port: 81 },
    ],
    [
      backend('web', 80, { kind: 'Pod' }),
      'InvalidKind',
      'spec.rules[0].backendRefs[0].kind "Pod": expected Service',
      { service: 'shop/web', port: 80 },
    ],
    [
      backend('web', 80, { group: 'multicluster.x-k8s.io', kind: 'ServiceImport' }),
      'InvalidKind',
      'spec.rules[0].backendRefs[0].group "multicluster.x-k8s.io": expected "" (core)',
      { service: 'shop/web', port: 80 },
    ],
    [
      backend('api', 80, { namespace: 'other' }),
      'RefNotPermitted',
      'spec.rules[0].backendRefs[0].namespace "other": no ReferenceGrant in other allows HTTPRoutes of shop to refer to Service api',
      { service: 'other/api', port: 80 },
    ],
  ])(
    'keeps the invalid backend %j marked invalid; ResolvedRefs %s',
    (backendRef, reason, message, where) => {
      const object = withBackends('shop', backendRef, backend('web-v2', 80));
      const outcome = routes(object);
      expect(outcome.snapshot.httpRoutes['shop/r']?.rules[0]?.backends).toEqual([
        { ...where, weight: 1, invalid: true },
        { service: 'shop/web-v2', port: 80, weight: 1 },
      ]);
      expect(resolvedRefsLine(object)).toBe(`False ${reason}: ${message}`);
      expect(acceptedLines(object)).toEqual(['True Accepted: accepted for Service shop/web']);
    },
  );

  it('names the first failing reference in rule order', () => {
    const object = httpRoute('shop', 'r', 'web', {
      rules: [
        { backendRefs: [backend('web', 80), backend('web', 9)] },
        { backendRefs: [backend('gone', 80)] },
      ],
    });
    expect(resolvedRefsLine(object)).toBe(
      'False BackendNotFound: spec.rules[0].backendRefs[1].port 9: Service shop/web has no such port',
    );
  });

  it('counts a failing reference of weight 0 for ResolvedRefs without routing to it', () => {
    const object = withBackends('shop', backend('web', 80), backend('gone', 80, { weight: 0 }));
    expect(resolvedRefsLine(object)).toBe(
      'False BackendNotFound: spec.rules[0].backendRefs[1].name "gone": no Service shop/gone',
    );
    expect(routes(object).snapshot.httpRoutes['shop/r']?.rules[0]?.backends).toEqual([
      { service: 'shop/web', port: 80, weight: 1 },
    ]);
  });

  it('lets a route refer to another namespace only through a ReferenceGrant of that namespace', () => {
    const object = withBackends('shop', backend('api', 80, { namespace: 'other' }));
    const resolved = (referenceGrants: KubeObject[]): string =>
      resolvedRefsLine(object, { referenceGrants });
    expect(resolved([referenceGrant('other', 'all', 'shop')])).toBe(
      'True ResolvedRefs: every backendRef resolved',
    );
    expect(resolved([referenceGrant('other', 'just-api', 'shop', 'api')])).toMatch(/^True /);
    expect(resolved([referenceGrant('other', 'wrong-name', 'shop', 'db')])).toMatch(
      /^False RefNotPermitted/,
    );
    expect(resolved([referenceGrant('other', 'wrong-from', 'elsewhere')])).toMatch(
      /^False RefNotPermitted/,
    );
    expect(resolved([referenceGrant('shop', 'wrong-place', 'shop')])).toMatch(
      /^False RefNotPermitted/,
    );
    const wrongKind = referenceGrant('other', 'grpc', 'shop');
    const spec = wrongKind.spec as { from: Record<string, unknown>[] };
    spec.from = [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', namespace: 'shop' }];
    expect(resolved([wrongKind])).toMatch(/^False RefNotPermitted/);
  });

  it('lets a consumer route send to the Service it is attached to without a grant, and no other', () => {
    const consumer = (backendRefs: unknown[]) =>
      httpRoute('other', 'consumer', 'web', {
        parentRefs: [serviceParent('web', { namespace: 'shop' })],
        rules: [{ backendRefs }],
      });
    expect(resolvedRefsLine(consumer([backend('web', 80, { namespace: 'shop' })]))).toBe(
      'True ResolvedRefs: every backendRef resolved',
    );
    expect(resolvedRefsLine(consumer([backend('web-v2', 80, { namespace: 'shop' })]))).toMatch(
      /^False RefNotPermitted/,
    );
  });

  it('checks the grant before the Service, so a missing Service elsewhere reads as not permitted', () => {
    const object = withBackends('shop', backend('ghost', 80, { namespace: 'other' }));
    expect(resolvedRefsLine(object)).toMatch(/^False RefNotPermitted/);
    expect(
      resolvedRefsLine(object, { referenceGrants: [referenceGrant('other', 'g', 'shop')] }),
    ).toBe(
      'False BackendNotFound: spec.rules[0].backendRefs[0].name "ghost": no Service other/ghost',
    );
  });

  it('needs no grant for a consumer route whose backends are in its own namespace', () => {
    const object = httpRoute('other', 'r', 'web', {
      parentRefs: [serviceParent('web', { namespace: 'shop' })],
      rules: [{ backendRefs: [backend('api', 80)] }],
    });
    expect(resolvedRefsLine(object)).toMatch(/^True /);
  });
});

describe('buildSnapshot: HTTPRoute matches and filters', () => {
  const ruleOf = (rule: Record<string, unknown>) =>
    routes(httpRoute('shop', 'r', 'web', { rules: [rule] })).snapshot.httpRoutes['shop/r']
      ?.rules[0];

  it('lower-cases header names, keeps the first of a name, sorts; query names stay as written', () => {
    const rule = ruleOf({
      matches: [
        {
          headers: [
            { name: 'X-Tenant', value: 'a' },
            { name: 'Accept', type: 'RegularExpression', value: '.*json' },
            { name: 'x-tenant', value: 'b' },
          ],
          queryParams: [
            { name: 'page', value: '2' },
            { name: 'Page', value: '3' },
            { name: 'page', value: '4' },
          ],
          method: 'get',
        },
      ],
    });
    expect(rule?.matches).toEqual([
      {
        path: { type: 'PathPrefix', value: '/' },
        headers: [
          { name: 'accept', type: 'RegularExpression', value: '.*json' },
          { name: 'x-tenant', type: 'Exact', value: 'a' },
        ],
        queryParams: [
          { name: 'Page', type: 'Exact', value: '3' },
          { name: 'page', type: 'Exact', value: '2' },
        ],
        method: 'GET',
      },
    ]);
  });

  it('drops the trailing "/" of a PathPrefix except "/" itself and keeps the order of matches', () => {
    const rule = ruleOf({
      matches: [
        { path: { type: 'PathPrefix', value: '/api/' } },
        { path: { value: '/' } },
        { path: { type: 'Exact', value: '/exact/' } },
        { path: { type: 'RegularExpression', value: '/v[0-9]+/.*' } },
        { method: 'POST' },
      ],
    });
    expect(rule?.matches.map((match) => match.path)).toEqual([
      { type: 'PathPrefix', value: '/api' },
      { type: 'PathPrefix', value: '/' },
      { type: 'Exact', value: '/exact/' },
      { type: 'RegularExpression', value: '/v[0-9]+/.*' },
      { type: 'PathPrefix', value: '/' },
    ]);
  });

  it('carries header modifiers, keeping the first entry of a name', () => {
    const rule = ruleOf({
      filters: [
        {
          type: 'RequestHeaderModifier',
          requestHeaderModifier: {
            set: [
              { name: 'X-Set', value: 'one' },
              { name: 'x-set', value: 'two' },
            ],
            add: [{ name: 'X-Add', value: 'more' }],
            remove: ['X-Gone', 'x-gone', 'X-Other'],
          },
        },
        {
          type: 'ResponseHeaderModifier',
          responseHeaderModifier: { add: [{ name: 'X-Served-By', value: 'mesh' }] },
        },
      ],
      backendRefs: [backend('web', 80)],
    });
    expect(rule?.requestHeaders).toEqual({
      set: [{ name: 'X-Set', value: 'one' }],
      add: [{ name: 'X-Add', value: 'more' }],
      remove: ['X-Gone', 'X-Other'],
    });
    expect(rule?.responseHeaders).toEqual({
      set: [],
      add: [{ name: 'X-Served-By', value: 'mesh' }],
      remove: [],
    });
  });

  it('redirects with 302 by default and ignores the backendRefs of a redirecting rule', () => {
    const object = httpRoute('shop', 'r', 'web', {
      rules: [
        {
          name: 'moved',
          matches: [{ path: { type: 'PathPrefix', value: '/old/' } }],
          filters: [
            {
              type: 'RequestRedirect',
              requestRedirect: {
                scheme: 'https',
                hostname: 'new.example.com',
                port: 8443,
                path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' },
              },
            },
          ],
          backendRefs: [backend('gone', 80)],
        },
        { filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 301 } }] },
      ],
    });
    const rules = routes(object).snapshot.httpRoutes['shop/r']?.rules;
    expect(rules?.[0]).toEqual({
      name: 'moved',
      matches: [{ path: { type: 'PathPrefix', value: '/old' }, headers: [], queryParams: [] }],
      redirect: {
        scheme: 'https',
        hostname: 'new.example.com',
        port: 8443,
        path: { type: 'ReplacePrefixMatch', value: '/new' },
        statusCode: 302,
      },
      backends: [],
    });
    expect(rules?.[1]?.redirect).toEqual({ statusCode: 301 });
    expect(resolvedRefsLine(object)).toBe('True ResolvedRefs: every backendRef resolved');
  });

  it('carries a rewrite of hostname and full path', () => {
    const rule = ruleOf({
      filters: [
        {
          type: 'URLRewrite',
          urlRewrite: {
            hostname: 'internal.shop',
            path: { type: 'ReplaceFullPath', replaceFullPath: '/v2/orders' },
          },
        },
      ],
      backendRefs: [backend('web-v2', 80)],
    });
    expect(rule?.rewrite).toEqual({
      hostname: 'internal.shop',
      path: { type: 'ReplaceFullPath', value: '/v2/orders' },
    });
  });
});

describe('buildSnapshot: SMI and Gateway API on one Service', () => {
  const split = trafficSplit('shop', 'canary', {
    service: 'web',
    backends: [
      { service: 'web', weight: 90 },
      { service: 'web-v2', weight: 10 },
    ],
  });

  it('leaves out a TrafficSplit of a Service a producer route is accepted for, as a problem naming the route', () => {
    const outcome = build({
      trafficSplits: [split],
      httpRoutes: [
        httpRoute('shop', 'web-b', 'web', { parentRefs: [serviceParent('web', { port: 8080 })] }),
        httpRoute('shop', 'web-a', 'web', { parentRefs: [serviceParent('web', { port: 80 })] }),
      ],
    });
    expect(outcome.snapshot.trafficSplits).toEqual({});
    expect(outcome.problems).toEqual([
      {
        apiVersion: 'split.smi-spec.io/v1alpha3',
        kind: 'TrafficSplit',
        namespace: 'shop',
        name: 'canary',
        reason: 'OverriddenByHTTPRoute',
        message:
          'spec.service "web": HTTPRoute shop/web-a routes Service shop/web, and an HTTPRoute takes precedence over a TrafficSplit',
      },
    ]);
  });

  it('keeps the TrafficSplit for a consumer route, a refused route or a route of another Service', () => {
    for (const httpRoutes of [
      [
        httpRoute('other', 'consumer', 'web', {
          parentRefs: [serviceParent('web', { namespace: 'shop' })],
        }),
      ],
      [httpRoute('shop', 'refused', 'web', { rules: [{ sessionPersistence: {} }] })],
      [httpRoute('shop', 'db-route', 'db')],
      [httpRoute('shop', 'no-port', 'web', { parentRefs: [serviceParent('web', { port: 9 })] })],
    ]) {
      const outcome = build({ trafficSplits: [split], httpRoutes });
      expect(Object.keys(outcome.snapshot.trafficSplits)).toEqual(['shop/canary']);
      expect(outcome.problems).toEqual([]);
    }
  });

  it('leaves TrafficTargets of the Service as they are', () => {
    const target = trafficTarget('shop', 'web-access', {
      destination: { kind: 'ServiceAccount', name: 'web' },
      sources: [{ kind: 'ServiceAccount', name: 'client' }],
      rules: [],
    });
    const without = build({ trafficTargets: [target] });
    const withRoute = build({
      trafficTargets: [target],
      httpRoutes: [httpRoute('shop', 'r', 'web')],
    });
    expect(withRoute.snapshot.trafficTargets).toEqual(without.snapshot.trafficTargets);
  });
});

describe('buildSnapshot: HTTPRoutes whatever the order of the input', () => {
  it('gives the same snapshot and statuses for shuffled routes, grants and Services', () => {
    const httpRoutes = [
      httpRoute('shop', 'b', 'web', {
        rules: [{ backendRefs: [backend('api', 80, { namespace: 'other' })] }],
      }),
      httpRoute('other', 'z', 'web', {
        parentRefs: [serviceParent('web', { namespace: 'shop' }), serviceParent('api')],
      }),
      httpRoute('other-ns', 'a', 'web', {
        parentRefs: [serviceParent('web', { namespace: 'shop' })],
      }),
      httpRoute('shop', 'a', 'db', { rules: [{ filters: [{ type: 'CORS' }] }] }),
    ];
    const referenceGrants = [
      referenceGrant('other', 'g1', 'shop', 'api'),
      referenceGrant('other', 'g2', 'x'),
    ];
    const forward = buildSnapshot(
      state({ services: services(), httpRoutes, referenceGrants }),
      SETTINGS,
    );
    const backward = buildSnapshot(
      state({
        services: [...services()].reverse(),
        httpRoutes: [...httpRoutes].reverse(),
        referenceGrants: [...referenceGrants].reverse(),
      }),
      SETTINGS,
    );
    expect(JSON.stringify(backward)).toBe(JSON.stringify(forward));
    expect(forward.routeStatuses.map((status) => `${status.namespace}/${status.name}`)).toEqual([
      'other/z',
      'other-ns/a',
      'shop/a',
      'shop/b',
    ]);
    expect(Object.keys(forward.snapshot.httpRoutes)).toEqual(['other-ns/a', 'other/z', 'shop/b']);
  });
});

describe('buildSnapshot: GRPCRoutes attached to Services', () => {
  const grpc = (rules: unknown[], extra: Record<string, unknown> = {}) =>
    build({ grpcRoutes: [grpcRoute('shop', 'rpc', 'web', { rules, ...extra })] });
  const methodRule = (method: Record<string, unknown>) => ({
    matches: [{ method }],
    backendRefs: [backend('web-v2', 80)],
  });

  it('reads each method match as the path of the calls it takes', () => {
    const outcome = grpc([
      methodRule({ service: 'shop.Orders', method: 'Place' }),
      methodRule({ service: 'shop.Orders' }),
      methodRule({ method: 'Get' }),
      methodRule({ type: 'RegularExpression', service: 'shop\\..*', method: 'List.*' }),
      methodRule({ type: 'RegularExpression', method: 'Watch' }),
      { backendRefs: [backend('web', 80)] },
    ]);
    expect(
      outcome.snapshot.grpcRoutes['shop/rpc']?.rules.map((rule) => rule.matches[0]?.path),
    ).toEqual([
      { type: 'Exact', value: '/shop.Orders/Place' },
      { type: 'PathPrefix', value: '/shop.Orders' },
      { type: 'RegularExpression', value: '/[^/]+/Get' },
      { type: 'RegularExpression', value: '/(?:shop\\..*)/(?:List.*)' },
      { type: 'RegularExpression', value: '/[^/]+/(?:Watch)' },
      { type: 'PathPrefix', value: '/' },
    ]);
    expect(outcome.snapshot.httpRoutes).toEqual({});
  });

  it('writes a GRPCRoute status, and keeps it apart from an HTTPRoute of the same name', () => {
    const outcome = build({
      grpcRoutes: [grpcRoute('shop', 'same', 'web', { rules: [methodRule({ service: 'a.B' })] })],
      httpRoutes: [httpRoute('shop', 'same', 'web')],
    });
    expect(outcome.routeStatuses.map((status) => [status.kind, status.name])).toEqual([
      ['GRPCRoute', 'same'],
      ['HTTPRoute', 'same'],
    ]);
    expect(Object.keys(outcome.snapshot.grpcRoutes)).toEqual(['shop/same']);
    expect(Object.keys(outcome.snapshot.httpRoutes)).toEqual(['shop/same']);
  });

  it.each([
    [
      methodRule({ service: 'shop Orders' }),
      'spec.rules[0].matches[0].method.service "shop Orders": expected a gRPC service name',
    ],
    [methodRule({}), 'spec.rules[0].matches[0].method: expected a service, a method or both'],
    [
      { filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('web', 80) } }] },
      'spec.rules[0].filters[0].type "RequestMirror": not supported by this mesh for GRPCRoutes',
    ],
  ])('refuses what it cannot apply: %#', (rule, message) => {
    const outcome = grpc([rule]);
    expect(outcome.routeStatuses[0]?.parents[0]?.accepted).toEqual({
      status: 'False',
      reason: 'UnsupportedValue',
      message,
    });
    expect(outcome.snapshot.grpcRoutes).toEqual({});
  });

  it('needs a ReferenceGrant from GRPCRoutes, not HTTPRoutes, for another namespace', () => {
    const rules = [{ backendRefs: [backend('api', 80, { namespace: 'other' })] }];
    const fromHttp = build({
      grpcRoutes: [grpcRoute('shop', 'rpc', 'web', { rules })],
      referenceGrants: [referenceGrant('other', 'g', 'shop')],
    });
    expect(fromHttp.routeStatuses[0]?.parents[0]?.resolvedRefs.reason).toBe('RefNotPermitted');
    const grant = referenceGrant('other', 'g', 'shop');
    const fromGrpc = build({
      grpcRoutes: [grpcRoute('shop', 'rpc', 'web', { rules })],
      referenceGrants: [
        {
          ...grant,
          spec: {
            ...(grant.spec as Record<string, unknown>),
            from: [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', namespace: 'shop' }],
          },
        },
      ],
    });
    expect(fromGrpc.routeStatuses[0]?.parents[0]?.resolvedRefs.reason).toBe('ResolvedRefs');
  });
});
