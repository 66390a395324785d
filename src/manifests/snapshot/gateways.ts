// Gateway API Gateways (gateway.networking.k8s.io/v1) of this mesh's GatewayClass, the ingress
// side of the mesh: which Gateways and listeners the gateway pods serve, which HTTPRoutes attach
// where, and every status the controller writes on GatewayClasses, Gateways and those routes.
// Decisions:
// - A GatewayClass is this mesh's when spec.controllerName is the controller's name; it is
//   Accepted. Other classes, their Gateways and the parentRefs naming them are left alone.
//   Gateways in the ignored namespaces are skipped, as are routes there.
// - A listener is HTTP or HTTPS; another protocol is not Accepted (UnsupportedProtocol) and takes
//   no route kind. A port in the proxy's own range (8886-8909) is not Accepted
//   (PortUnavailable). A port outside 1-65535, a hostname that is not a DNS name (or "*." and one),
//   an HTTPS tls.mode other than Terminate, an unknown allowedRoutes.namespaces.from or a
//   selector that cannot be read are not Accepted either (UnsupportedValue). Of two listeners
//   with one name, the first counts.
// - allowedRoutes.kinds defaults to HTTPRoute, the only kind a gateway serves; any other kind
//   makes ResolvedRefs False (InvalidRouteKinds) and is left out of supportedKinds.
//   allowedRoutes.namespaces.from is Same (the default), All or Selector (matchLabels and
//   matchExpressions over the Namespace's labels; a Namespace the controller has not seen has
//   only its kubernetes.io/metadata.name label, as the API server gives every Namespace).
// - HTTPS terminates TLS with certificateRefs[0] (every ref must resolve): a core Secret, in the
//   Gateway's namespace or one whose ReferenceGrant lets Gateways of the Gateway's namespace
//   refer to it (else RefNotPermitted), holding a PEM certificate in tls.crt and a PEM private
//   key in tls.key (else InvalidCertificateRef, as for another group or kind, a missing Secret
//   or no ref at all).
// - Listeners on one port are Conflicted when they mix HTTP and HTTPS (ProtocolConflict) or share
//   a hostname, no hostname counting as one (HostnameConflict). None of the conflicting
//   listeners is chosen: each is not Accepted (with the conflict's reason) and not Programmed.
// - A listener is Programmed when it is Accepted, not Conflicted and its refs resolved; only
//   those are in the snapshot. The Gateway is Accepted when all its listeners are Programmed,
//   Accepted with reason ListenersNotValid when at least one listener is Accepted, and not
//   Accepted (ListenersNotValid) otherwise. Its Programmed condition and addresses depend on
//   the pods and are the controller's.
// - A route attaches through a parentRef of group gateway.networking.k8s.io and kind Gateway
//   (the defaults; namespace defaults to the route's) naming one of these Gateways; only those
//   parentRefs get a status entry, echoing the parentRef with group and kind made explicit.
//   sectionName and port select listeners (every listener when neither is given); none selected
//   is NoMatchingParent, none of them taking the route's kind and namespace is
//   NotAllowedByListeners, none whose hostname intersects the route's is
//   NoMatchingListenerHostname. Otherwise the parent is Accepted and the route attaches to every
//   selected listener that takes it, Programmed or not: attachedRoutes counts each Accepted
//   route once on each listener it attaches to. The snapshot holds attachments to Programmed
//   listeners only.
// - Hostnames intersect as the Gateway API says: equal names, a name under a wildcard ("*."
//   matches one or more labels, never the bare domain), or the narrower of two wildcards; a
//   listener without hostname takes the route's hostnames, a route without hostnames takes the
//   listener's (none: every host).
// - Rules, backendRefs, ReferenceGrants for backends and refusals are the GAMMA builder's
//   (gamma-routes.ts, toRouteRules): a field the mesh does not implement makes every Gateway
//   parent not Accepted (UnsupportedValue); a backend that fails stays in its rule marked invalid
//   (answered 500) and makes ResolvedRefs False while the parent stays Accepted; a rule without
//   backendRefs answers 500. A backend Service of another namespace always needs a ReferenceGrant
//   here: GAMMA's exception for a consumer route's own parent Service does not apply.
// - Output is independent of input order: everything keyed is sorted by key; listeners and
//   status parents keep the Gateway's and the route's order.
// Pure.
import { SIDECAR_RESERVED_PORT_FIRST, SIDECAR_RESERVED_PORT_LAST } from '../constants';
import {
  GATEWAY_API_GROUP,
  grantsByNamespace,
  HTTP_ROUTE,
  HTTP_ROUTE_KIND,
  parentRefEcho,
  referenceGranted,
  toRouteRules,
} from './gamma-routes';
import type { RouteContext } from './gamma-routes';
import {
  arrayOf,
  compareText,
  countOf,
  indexByKey,
  isObject,
  keyOf,
  objectOf,
  portOf,
  refOf,
  stringOf,
} from './kube-objects';
import type { Json, KubeObject, ObjectRef } from './kube-objects';
import { quoted } from './policy-problem';
import type {
  GatewayClassStatus,
  GatewayCondition,
  GatewayListenerStatus,
  GatewayStatus,
  RouteCondition,
  RouteParentStatus,
  RouteStatus,
  SnapshotGateway,
  SnapshotGatewayAttachment,
  SnapshotGatewayListener,
  SnapshotGatewayRoute,
  SnapshotService,
} from './types';

/** The label the API server puts on every Namespace, holding its name. */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** The only route kind a gateway serves. */
const HTTP_ROUTE_GROUP_KIND = { group: GATEWAY_API_GROUP, kind: HTTP_ROUTE.kind } as const;
const HOSTNAME = /^(?:\*\.)?[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const IPV4 = /^\d+\.\d+\.\d+\.\d+$/;
const HOSTNAME_MAX_LENGTH = 253;
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s]+?)-----END \1-----/g;
const PRIVATE_KEY_LABELS: ReadonlySet<string> = new Set([
  'PRIVATE KEY',
  'RSA PRIVATE KEY',
  'EC PRIVATE KEY',
]);
/** The first byte of DER: an ASN.1 SEQUENCE, as every certificate and key is. */
const DER_SEQUENCE = 0x30;

/** What the gateways are built from: lists of raw objects in any order. */
export interface GatewayInputs {
  readonly gatewayClasses: readonly KubeObject[];
  readonly gateways: readonly KubeObject[];
  readonly httpRoutes: readonly KubeObject[];
  readonly referenceGrants: readonly KubeObject[];
  readonly tlsSecrets: readonly KubeObject[];
  readonly namespaces: readonly KubeObject[];
}

/** The Secret the controller copies to a Gateway's pods for one served HTTPS listener. */
export interface GatewayCertificate {
  /** "<namespace>/<name>" of the Gateway. */
  readonly gateway: string;
  readonly listener: string;
  /** "<namespace>/<name>" of the Secret. */
  readonly secret: string;
}

/** The gateways the mesh serves and every status it writes for them. */
export interface GatewayBuild {
  /** Every Gateway of this mesh's classes, "<namespace>/<name>" order. */
  readonly gateways: readonly (readonly [string, SnapshotGateway])[];
  /** Routes attached to at least one served listener, "<namespace>/<name>" order. */
  readonly routes: readonly (readonly [string, SnapshotGatewayRoute])[];
  /** Sorted by name. */
  readonly classStatuses: readonly GatewayClassStatus[];
  /** Sorted by namespace and name. */
  readonly gatewayStatuses: readonly GatewayStatus[];
  /**
   * Every HTTPRoute with a parentRef to one of these Gateways, sorted by namespace and name:
   * one parent per such parentRef, in the route's order.
   */
  readonly routeStatuses: readonly RouteStatus[];
  /** One per served HTTPS listener, sorted by gateway and listener. */
  readonly certificates: readonly GatewayCertificate[];
}

/** A listener as decided, before routes attach. */
interface ListenerState {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
  readonly hostname?: string;
  readonly supportedKinds: readonly { readonly group: string; readonly kind: string }[];
  /** Whether routes of a namespace may attach. */
  readonly allows: (namespace: string) => boolean;
  /** Accepted False, when the listener itself cannot be used. */
  readonly refusal?: GatewayCondition;
  readonly resolvedRefs: GatewayCondition;
  /** HTTPS: "<namespace>/<name>" of the certificate's Secret, when it resolved. */
  readonly secret?: string;
}

/** A listener with its conflicts decided and the routes attached to it. */
interface ListenerEntry {
  readonly state: ListenerState;
  readonly conditions: readonly GatewayCondition[];
  readonly programmed: boolean;
  readonly accepted: boolean;
  /** Keys of the routes Accepted on it. */
  readonly routes: Set<string>;
}

interface GatewayEntry {
  readonly ref: ObjectRef;
  readonly generation: number;
  readonly listeners: readonly ListenerEntry[];
}

/** What deciding a listener needs besides the listener. */
interface GatewayContext {
  readonly gateway: ObjectRef;
  readonly namespaceLabels: ReadonlyMap<string, Json>;
  readonly secrets: ReadonlyMap<string, KubeObject>;
  readonly grants: ReadonlyMap<string, readonly Json[]>;
}

/** Builds the Gateways of the classes naming `controllerName`; total and order-independent. */
export function buildGateways(
  state: GatewayInputs,
  services: ReadonlyMap<string, SnapshotService>,
  ignored: ReadonlySet<string>,
  controllerName: string,
): GatewayBuild {
  const classes = ourClasses(state.gatewayClasses, controllerName);
  const grants = grantsByNamespace(state.referenceGrants, ignored);
  const shared = {
    namespaceLabels: labelsByNamespace(state.namespaces),
    secrets: indexByKey(state.tlsSecrets),
    grants,
  };
  const gateways = new Map<string, GatewayEntry>();
  const index = indexByKey(state.gateways);
  for (const key of [...index.keys()].sort(compareText)) {
    const object = index.get(key) as KubeObject;
    const ref = refOf(object) as ObjectRef;
    if (ignored.has(ref.namespace)) continue;
    const className = stringOf(objectOf(object.spec).gatewayClassName);
    if (className === undefined || !classes.has(className)) continue;
    gateways.set(key, toGatewayEntry(object, { ...shared, gateway: ref }));
  }
  const context: RouteContext = { kind: HTTP_ROUTE_KIND, services, grants };
  const routes: [string, SnapshotGatewayRoute][] = [];
  const routeStatuses: RouteStatus[] = [];
  const routeIndex = indexByKey(state.httpRoutes);
  for (const key of [...routeIndex.keys()].sort(compareText)) {
    const object = routeIndex.get(key) as KubeObject;
    const ref = refOf(object) as ObjectRef;
    if (ignored.has(ref.namespace)) continue;
    const built = buildRoute(object, ref, gateways, context);
    if (built === undefined) continue;
    routeStatuses.push(built.status);
    if (built.route !== undefined) routes.push([key, built.route]);
  }
  return {
    gateways: [...gateways].map(([key, entry]) => [key, toSnapshotGateway(entry)] as const),
    routes,
    classStatuses: [...classes.values()].sort((a, b) => compareText(a.name, b.name)),
    gatewayStatuses: [...gateways.values()].map(toGatewayStatus),
    routeStatuses,
    certificates: [...gateways].flatMap(([key, entry]) => certificatesOf(key, entry)),
  };
}

/**
 * Route statuses of several builders merged: the entries of one route become one, its parents
 * in the order of the route's parentRefs (`routes` holds the raw routes). Sorted by namespace,
 * name and kind.
 */
export function mergeRouteStatuses(
  statuses: readonly RouteStatus[],
  routes: readonly KubeObject[],
): RouteStatus[] {
  const byRoute = new Map<string, RouteStatus>();
  const merged = new Set<string>();
  for (const status of statuses) {
    const key = `${status.kind} ${keyOf(status.namespace, status.name)}`;
    const earlier = byRoute.get(key);
    if (earlier !== undefined) merged.add(key);
    byRoute.set(
      key,
      earlier === undefined
        ? status
        : { ...earlier, parents: [...earlier.parents, ...status.parents] },
    );
  }
  const index = indexByKey(routes);
  for (const key of merged) {
    const status = byRoute.get(key) as RouteStatus;
    const route = index.get(keyOf(status.namespace, status.name));
    const order = new Map<string, number>();
    arrayOf(objectOf(route?.spec).parentRefs).forEach((entry, position) => {
      const text = JSON.stringify(parentRefEcho(objectOf(entry)));
      if (!order.has(text)) order.set(text, position);
    });
    const rank = (parent: RouteParentStatus): number =>
      order.get(JSON.stringify(parent.parentRef)) ?? Number.MAX_SAFE_INTEGER;
    byRoute.set(key, { ...status, parents: [...status.parents].sort((a, b) => rank(a) - rank(b)) });
  }
  return [...byRoute.values()].sort(
    (a, b) =>
      compareText(a.namespace, b.namespace) ||
      compareText(a.name, b.name) ||
      compareText(a.kind, b.kind),
  );
}

/** The GatewayClasses naming `controllerName`, by name, with their status. */
function ourClasses(
  objects: readonly KubeObject[],
  controllerName: string,
): Map<string, GatewayClassStatus> {
  const byName = new Map<string, KubeObject>();
  for (const object of objects) {
    const name = stringOf(objectOf(object.metadata).name);
    if (name === undefined) continue;
    const existing = byName.get(name);
    if (existing === undefined || compareText(uidOf(object), uidOf(existing)) < 0) {
      byName.set(name, object);
    }
  }
  const classes = new Map<string, GatewayClassStatus>();
  for (const [name, object] of byName) {
    if (objectOf(object.spec).controllerName !== controllerName) continue;
    classes.set(name, {
      name,
      generation: generationOf(object),
      conditions: [
        {
          type: 'Accepted',
          status: 'True',
          reason: 'Accepted',
          message: `handled by ${controllerName}`,
        },
      ],
    });
  }
  return classes;
}

function uidOf(object: KubeObject): string {
  return stringOf(objectOf(object.metadata).uid) ?? '';
}

function generationOf(object: KubeObject): number {
  return countOf(objectOf(object.metadata).generation) ?? 0;
}

function labelsByNamespace(namespaces: readonly KubeObject[]): Map<string, Json> {
  const labels = new Map<string, Json>();
  for (const namespace of namespaces) {
    const metadata = objectOf(namespace.metadata);
    const name = stringOf(metadata.name);
    if (name !== undefined) labels.set(name, objectOf(metadata.labels));
  }
  return labels;
}

function toGatewayEntry(object: KubeObject, context: GatewayContext): GatewayEntry {
  const seen = new Set<string>();
  const states: ListenerState[] = [];
  arrayOf(objectOf(object.spec).listeners).forEach((item, position) => {
    const entry = objectOf(item);
    const name = stringOf(entry.name);
    if (name === undefined || seen.has(name)) return;
    seen.add(name);
    states.push(toListenerState(entry, `spec.listeners[${position}]`, name, context));
  });
  const conflicts = conflictsOf(states);
  return {
    ref: context.gateway,
    generation: generationOf(object),
    listeners: states.map((state) => toListenerEntry(state, conflicts.get(state.name))),
  };
}

function toListenerState(
  entry: Json,
  field: string,
  name: string,
  context: GatewayContext,
): ListenerState {
  const protocol = stringOf(entry.protocol) ?? '';
  const port = portOf(entry.port) ?? 0;
  const hostname = stringOf(entry.hostname);
  const base = { name, port, protocol, ...(hostname === undefined ? {} : { hostname }) };
  if (protocol !== 'HTTP' && protocol !== 'HTTPS') {
    return {
      ...base,
      supportedKinds: [],
      allows: () => false,
      refusal: notAccepted(
        'UnsupportedProtocol',
        `${field}.protocol ${quoted(entry.protocol)}: expected HTTP or HTTPS`,
      ),
      resolvedRefs: RESOLVED_REFS,
    };
  }
  const allowedRoutes = objectOf(entry.allowedRoutes);
  const kinds = routeKindsOf(allowedRoutes.kinds, `${field}.allowedRoutes.kinds`);
  const namespaces = namespaceFilterOf(
    objectOf(allowedRoutes.namespaces),
    `${field}.allowedRoutes.namespaces`,
    context,
  );
  const tls =
    protocol === 'HTTPS' ? certificateOf(objectOf(entry.tls), `${field}.tls`, context) : {};
  const refusal =
    listenerValueProblem(entry, field) ??
    ('problem' in namespaces ? namespaces.problem : undefined) ??
    tls.refusal;
  return {
    ...base,
    supportedKinds: kinds.supported,
    allows: 'allows' in namespaces ? namespaces.allows : () => false,
    ...(refusal === undefined ? {} : { refusal }),
    resolvedRefs: kinds.failure ?? tls.failure ?? RESOLVED_REFS,
    ...(tls.secret === undefined ? {} : { secret: tls.secret }),
  };
}

const RESOLVED_REFS: GatewayCondition = {
  type: 'ResolvedRefs',
  status: 'True',
  reason: 'ResolvedRefs',
  message: 'every reference resolved',
};

function notAccepted(reason: string, message: string): GatewayCondition {
  return { type: 'Accepted', status: 'False', reason, message };
}

function unresolved(reason: string, message: string): GatewayCondition {
  return { type: 'ResolvedRefs', status: 'False', reason, message };
}

/** Why a listener's port or hostname cannot be used, if it cannot. */
function listenerValueProblem(entry: Json, field: string): GatewayCondition | undefined {
  const port = portOf(entry.port);
  if (port === undefined) {
    return notAccepted('UnsupportedValue', `${field}.port ${quoted(entry.port)}: expected 1-65535`);
  }
  if (port >= SIDECAR_RESERVED_PORT_FIRST && port <= SIDECAR_RESERVED_PORT_LAST) {
    return notAccepted(
      'PortUnavailable',
      `${field}.port ${port}: the gateway's proxy uses ${SIDECAR_RESERVED_PORT_FIRST}-${SIDECAR_RESERVED_PORT_LAST} itself`,
    );
  }
  if (entry.hostname !== undefined && !isHostname(entry.hostname)) {
    return notAccepted(
      'UnsupportedValue',
      `${field}.hostname ${quoted(entry.hostname)}: expected a DNS name, optionally prefixed "*."`,
    );
  }
  return undefined;
}

function isHostname(value: unknown): boolean {
  return (
    typeof value === 'string' &&
    value.length <= HOSTNAME_MAX_LENGTH &&
    HOSTNAME.test(value) &&
    !IPV4.test(value)
  );
}

/** The kinds a listener takes, and InvalidRouteKinds when it names others. */
function routeKindsOf(
  value: unknown,
  field: string,
): { supported: { group: string; kind: string }[]; failure?: GatewayCondition } {
  const entries = arrayOf(value);
  if (entries.length === 0) return { supported: [{ ...HTTP_ROUTE_GROUP_KIND }] };
  const invalid: string[] = [];
  let supported = false;
  for (const [position, item] of entries.entries()) {
    const entry = objectOf(item);
    const group = typeof entry.group === 'string' ? entry.group : GATEWAY_API_GROUP;
    if (group === GATEWAY_API_GROUP && entry.kind === HTTP_ROUTE.kind) supported = true;
    else invalid.push(`${field}[${position}] ${quoted(entry.kind)} of group ${quoted(group)}`);
  }
  return {
    supported: supported ? [{ ...HTTP_ROUTE_GROUP_KIND }] : [],
    ...(invalid.length === 0
      ? {}
      : {
          failure: unresolved(
            'InvalidRouteKinds',
            `${invalid.join(', ')}: a gateway of this mesh takes HTTPRoutes only`,
          ),
        }),
  };
}

/** Which namespaces a listener takes routes from, or why that cannot be read. */
function namespaceFilterOf(
  namespaces: Json,
  field: string,
  context: GatewayContext,
): { allows: (namespace: string) => boolean } | { problem: GatewayCondition } {
  const from = namespaces.from ?? 'Same';
  switch (from) {
    case 'Same':
      return { allows: (namespace) => namespace === context.gateway.namespace };
    case 'All':
      return { allows: () => true };
    case 'Selector': {
      const selector = selectorOf(namespaces.selector);
      if (selector === undefined) {
        return {
          problem: notAccepted(
            'UnsupportedValue',
            `${field}.selector: expected matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist)`,
          ),
        };
      }
      return {
        allows: (namespace) =>
          selector({
            [NAMESPACE_NAME_LABEL]: namespace,
            ...context.namespaceLabels.get(namespace),
          }),
      };
    }
    default:
      return {
        problem: notAccepted(
          'UnsupportedValue',
          `${field}.from ${quoted(from)}: expected Same, All or Selector`,
        ),
      };
  }
}

/** A label selector as a predicate over labels; undefined when it cannot be read. */
function selectorOf(value: unknown): ((labels: Json) => boolean) | undefined {
  if (!isObject(value)) return undefined;
  const tests: ((labels: Json) => boolean)[] = [];
  const matchLabels = value.matchLabels ?? {};
  const matchExpressions = value.matchExpressions ?? [];
  if (!isObject(matchLabels) || !Array.isArray(matchExpressions)) return undefined;
  for (const [key, wanted] of Object.entries(matchLabels)) {
    if (typeof wanted !== 'string') return undefined;
    tests.push((labels) => labels[key] === wanted);
  }
  for (const item of arrayOf(matchExpressions)) {
    const test = expressionOf(objectOf(item));
    if (test === undefined) return undefined;
    tests.push(test);
  }
  return (labels) => tests.every((test) => test(labels));
}

function expressionOf(expression: Json): ((labels: Json) => boolean) | undefined {
  const key = stringOf(expression.key);
  const values = arrayOf(expression.values ?? []);
  if (key === undefined || !values.every((value) => typeof value === 'string')) return undefined;
  const has = (labels: Json): boolean => typeof labels[key] === 'string';
  switch (expression.operator) {
    case 'In':
      return values.length === 0
        ? undefined
        : (labels) => values.some((value) => value === labels[key]);
    case 'NotIn':
      return values.length === 0
        ? undefined
        : (labels) => !values.some((value) => value === labels[key]);
    case 'Exists':
      return values.length === 0 ? has : undefined;
    case 'DoesNotExist':
      return values.length === 0 ? (labels) => !has(labels) : undefined;
    default:
      return undefined;
  }
}

/** An HTTPS listener's certificate: its Secret, or why it is not usable. */
function certificateOf(
  tls: Json,
  field: string,
  context: GatewayContext,
): { secret?: string; failure?: GatewayCondition; refusal?: GatewayCondition } {
  const mode = tls.mode ?? 'Terminate';
  if (mode !== 'Terminate') {
    return {
      refusal: notAccepted(
        'UnsupportedValue',
        `${field}.mode ${quoted(mode)}: an HTTPS listener terminates TLS (Terminate)`,
      ),
    };
  }
  const refs = arrayOf(tls.certificateRefs);
  if (refs.length === 0) {
    return {
      failure: unresolved(
        'InvalidCertificateRef',
        `${field}.certificateRefs: an HTTPS listener needs a certificate`,
      ),
    };
  }
  let secret: string | undefined;
  for (const [position, item] of refs.entries()) {
    const resolved = resolveCertificate(
      objectOf(item),
      `${field}.certificateRefs[${position}]`,
      context,
    );
    if ('failure' in resolved) return { failure: resolved.failure };
    secret ??= resolved.secret;
  }
  return secret === undefined ? {} : { secret };
}

function resolveCertificate(
  entry: Json,
  field: string,
  context: GatewayContext,
): { secret: string } | { failure: GatewayCondition } {
  const group = entry.group ?? '';
  const kind = entry.kind ?? 'Secret';
  if (group !== '' || kind !== 'Secret') {
    return {
      failure: unresolved(
        'InvalidCertificateRef',
        `${field}: ${quoted(kind)} of group ${quoted(group)}: expected a core Secret`,
      ),
    };
  }
  const name = stringOf(entry.name);
  if (name === undefined) {
    return { failure: unresolved('InvalidCertificateRef', `${field}.name is missing`) };
  }
  const gateway = context.gateway;
  const namespace = stringOf(entry.namespace) ?? gateway.namespace;
  const key = keyOf(namespace, name);
  if (
    namespace !== gateway.namespace &&
    !referenceGranted(
      context.grants,
      { group: GATEWAY_API_GROUP, kind: 'Gateway', namespace: gateway.namespace },
      { group: '', kind: 'Secret', namespace, name },
    )
  ) {
    return {
      failure: unresolved(
        'RefNotPermitted',
        `${field}.namespace "${namespace}": no ReferenceGrant in ${namespace} allows Gateways of ${gateway.namespace} to refer to Secret ${name}`,
      ),
    };
  }
  const problem = secretProblem(context.secrets.get(key), key);
  if (problem !== undefined) {
    return { failure: unresolved('InvalidCertificateRef', `${field}: ${problem}`) };
  }
  return { secret: key };
}

/** Why a Secret does not hold a usable certificate and key, if it does not. */
function secretProblem(secret: KubeObject | undefined, key: string): string | undefined {
  if (secret === undefined) return `no TLS Secret ${key}`;
  if (secret.type !== undefined && secret.type !== 'kubernetes.io/tls') {
    return `Secret ${key} is of type ${quoted(secret.type)}, not kubernetes.io/tls`;
  }
  const data = objectOf(secret.data);
  if (!pemLabels(data['tls.crt']).includes('CERTIFICATE')) {
    return `Secret ${key}: tls.crt holds no PEM certificate`;
  }
  if (!pemLabels(data['tls.key']).some((label) => PRIVATE_KEY_LABELS.has(label))) {
    return `Secret ${key}: tls.key holds no PEM private key`;
  }
  return undefined;
}

/** The labels of the well-formed PEM blocks (DER sequences) in a base64-encoded Secret value. */
function pemLabels(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  const text = Buffer.from(value, 'base64').toString('latin1');
  const labels: string[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const der = Buffer.from(match[2] ?? '', 'base64');
    if (der.length > 1 && der[0] === DER_SEQUENCE) labels.push(match[1] ?? '');
  }
  return labels;
}

/** Listener name → the Conflicted reason, for the usable listeners sharing a port badly. */
function conflictsOf(states: readonly ListenerState[]): Map<string, string> {
  const byPort = new Map<number, ListenerState[]>();
  for (const state of states) {
    if (state.refusal !== undefined) continue;
    byPort.set(state.port, [...(byPort.get(state.port) ?? []), state]);
  }
  const conflicts = new Map<string, string>();
  for (const listeners of byPort.values()) {
    if (new Set(listeners.map((state) => state.protocol)).size > 1) {
      for (const state of listeners) conflicts.set(state.name, 'ProtocolConflict');
      continue;
    }
    const count = new Map<string, number>();
    for (const state of listeners) {
      count.set(state.hostname ?? '', (count.get(state.hostname ?? '') ?? 0) + 1);
    }
    for (const state of listeners) {
      if ((count.get(state.hostname ?? '') ?? 0) > 1) conflicts.set(state.name, 'HostnameConflict');
    }
  }
  return conflicts;
}

function toListenerEntry(state: ListenerState, conflict: string | undefined): ListenerEntry {
  const conflictMessage =
    conflict === 'ProtocolConflict'
      ? `another listener on port ${state.port} has another protocol`
      : `another listener on port ${state.port} has ${state.hostname === undefined ? 'no hostname either' : `hostname ${state.hostname}`}`;
  const accepted: GatewayCondition =
    state.refusal ??
    (conflict === undefined
      ? { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'listener accepted' }
      : notAccepted(conflict, conflictMessage));
  const conflicted: GatewayCondition =
    conflict === undefined
      ? { type: 'Conflicted', status: 'False', reason: 'NoConflicts', message: 'no conflicts' }
      : { type: 'Conflicted', status: 'True', reason: conflict, message: conflictMessage };
  const programmed = accepted.status === 'True' && state.resolvedRefs.status === 'True';
  return {
    state,
    accepted: accepted.status === 'True',
    programmed,
    conditions: [
      accepted,
      conflicted,
      state.resolvedRefs,
      programmed
        ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'listener served' }
        : {
            type: 'Programmed',
            status: 'False',
            reason: 'Invalid',
            message: 'listener not served: see its other conditions',
          },
    ],
    routes: new Set(),
  };
}

/** A Gateway parentRef of a route, where it stands and its echo. */
interface GatewayParentRef {
  readonly entry: Json;
  readonly field: string;
  readonly gateway: string;
  readonly echo: Record<string, unknown>;
}

function buildRoute(
  object: KubeObject,
  ref: ObjectRef,
  gateways: ReadonlyMap<string, GatewayEntry>,
  context: RouteContext,
): { status: RouteStatus; route?: SnapshotGatewayRoute } | undefined {
  const spec = objectOf(object.spec);
  const parentRefs = gatewayParentRefs(spec.parentRefs, ref.namespace, gateways);
  if (parentRefs.length === 0) return undefined;
  const { resolvedRefs, rules, refusal } = toRouteRules(spec, ref, context);
  const hostnames = arrayOf(spec.hostnames).flatMap((item) => {
    const hostname = stringOf(item);
    return hostname === undefined ? [] : [hostname.toLowerCase()];
  });
  const routeKey = keyOf(ref.namespace, ref.name);
  const attachments = new Map<string, SnapshotGatewayAttachment>();
  const parents = parentRefs.map(({ entry, field, gateway, echo }): RouteParentStatus => {
    const selected = selectListeners(entry, field, gateways.get(gateway) as GatewayEntry);
    if ('failure' in selected) return { parentRef: echo, accepted: selected.failure, resolvedRefs };
    const attached = attach(selected.listeners, ref.namespace, hostnames, field, gateway);
    if ('failure' in attached) return { parentRef: echo, accepted: attached.failure, resolvedRefs };
    if (refusal !== undefined) {
      const accepted: RouteCondition = {
        status: 'False',
        reason: refusal.reason,
        message: refusal.message,
      };
      return { parentRef: echo, accepted, resolvedRefs };
    }
    for (const { listener, hostnames: names } of attached.listeners) {
      listener.routes.add(routeKey);
      if (!listener.programmed) continue;
      const attachment = { gateway, listener: listener.state.name, hostnames: names };
      attachments.set(`${gateway} ${listener.state.name}`, attachment);
    }
    const names = attached.listeners.map(({ listener }) => listener.state.name).join(', ');
    const accepted: RouteCondition = {
      status: 'True',
      reason: 'Accepted',
      message: `accepted by listener${attached.listeners.length > 1 ? 's' : ''} ${names} of Gateway ${gateway}`,
    };
    return { parentRef: echo, accepted, resolvedRefs };
  });
  const metadata = objectOf(object.metadata);
  const status: RouteStatus = {
    apiVersion: stringOf(object.apiVersion) ?? HTTP_ROUTE.apiVersion,
    kind: stringOf(object.kind) ?? HTTP_ROUTE.kind,
    namespace: ref.namespace,
    name: ref.name,
    generation: countOf(metadata.generation) ?? 0,
    parents,
  };
  if (rules === undefined || attachments.size === 0) return { status };
  return {
    status,
    route: {
      namespace: ref.namespace,
      name: ref.name,
      created: typeof metadata.creationTimestamp === 'string' ? metadata.creationTimestamp : '',
      attachments: [...attachments.values()].sort(
        (a, b) => compareText(a.gateway, b.gateway) || compareText(a.listener, b.listener),
      ),
      rules,
    },
  };
}

/** The parentRefs naming one of `gateways`, each once, in the route's order. */
function gatewayParentRefs(
  value: unknown,
  namespace: string,
  gateways: ReadonlyMap<string, GatewayEntry>,
): GatewayParentRef[] {
  const seen = new Set<string>();
  const found: GatewayParentRef[] = [];
  arrayOf(value).forEach((item, position) => {
    const entry = objectOf(item);
    const echo = parentRefEcho(entry);
    if (echo.group !== GATEWAY_API_GROUP || echo.kind !== 'Gateway') return;
    const name = stringOf(entry.name);
    if (name === undefined) return;
    const gateway = keyOf(stringOf(entry.namespace) ?? namespace, name);
    const text = JSON.stringify(echo);
    if (!gateways.has(gateway) || seen.has(text)) return;
    seen.add(text);
    found.push({ entry, field: `spec.parentRefs[${position}]`, gateway, echo });
  });
  return found;
}

function noMatch(reason: string, message: string): { failure: RouteCondition } {
  return { failure: { status: 'False', reason, message } };
}

/** The listeners a parentRef's sectionName and port select. */
function selectListeners(
  entry: Json,
  field: string,
  gateway: GatewayEntry,
): { listeners: readonly ListenerEntry[] } | { failure: RouteCondition } {
  const key = keyOf(gateway.ref.namespace, gateway.ref.name);
  const section = entry.sectionName === '' ? undefined : entry.sectionName;
  const port = entry.port === undefined ? undefined : portOf(entry.port);
  if (entry.port !== undefined && port === undefined) {
    return noMatch('NoMatchingParent', `${field}.port ${quoted(entry.port)}: expected 1-65535`);
  }
  const listeners = gateway.listeners.filter(
    ({ state }) =>
      (section === undefined || state.name === section) &&
      (port === undefined || state.port === port),
  );
  if (listeners.length > 0) return { listeners };
  const wanted = [
    ...(section === undefined ? [] : [`named ${quoted(section)}`]),
    ...(port === undefined ? [] : [`on port ${port}`]),
  ];
  return noMatch(
    'NoMatchingParent',
    wanted.length === 0
      ? `${field}: Gateway ${key} has no listeners`
      : `${field}: Gateway ${key} has no listener ${wanted.join(' ')}`,
  );
}

/** The selected listeners that take the route, with the host names it serves on each. */
function attach(
  listeners: readonly ListenerEntry[],
  namespace: string,
  hostnames: readonly string[],
  field: string,
  gateway: string,
): { listeners: { listener: ListenerEntry; hostnames: string[] }[] } | { failure: RouteCondition } {
  const allowed = listeners.filter(
    ({ state }) =>
      state.supportedKinds.some((kind) => kind.kind === HTTP_ROUTE.kind) && state.allows(namespace),
  );
  if (allowed.length === 0) {
    return noMatch(
      'NotAllowedByListeners',
      `${field}: no listener of Gateway ${gateway} it selects takes HTTPRoutes of namespace ${namespace}`,
    );
  }
  const attached = allowed.flatMap((listener) => {
    const names = intersectHostnames(listener.state.hostname, hostnames);
    return names === undefined ? [] : [{ listener, hostnames: names }];
  });
  if (attached.length === 0) {
    return noMatch(
      'NoMatchingListenerHostname',
      `spec.hostnames: none intersects the hostname of a listener of Gateway ${gateway} that ${field} selects`,
    );
  }
  return { listeners: attached };
}

/**
 * The host names a route serves on a listener, sorted: [] for any host, undefined when the two
 * do not intersect.
 */
export function intersectHostnames(
  listener: string | undefined,
  route: readonly string[],
): string[] | undefined {
  const wanted = listener?.toLowerCase();
  if (wanted === undefined) return [...new Set(route)].sort(compareText);
  if (route.length === 0) return [wanted];
  const names = new Set<string>();
  for (const hostname of route) {
    if (covers(wanted, hostname)) names.add(hostname);
    else if (covers(hostname, wanted)) names.add(wanted);
  }
  return names.size === 0 ? undefined : [...names].sort(compareText);
}

/** Whether every host `narrower` takes is one `pattern` takes ("*." takes one or more labels). */
function covers(pattern: string, narrower: string): boolean {
  if (pattern === narrower) return true;
  if (!pattern.startsWith('*.')) return false;
  const suffix = pattern.slice(1);
  return narrower.endsWith(suffix) && narrower.length > suffix.length;
}

function toSnapshotGateway(entry: GatewayEntry): SnapshotGateway {
  return {
    namespace: entry.ref.namespace,
    name: entry.ref.name,
    listeners: entry.listeners
      .filter((listener) => listener.programmed)
      .map(({ state }): SnapshotGatewayListener => {
        const https = state.protocol === 'HTTPS';
        return {
          name: state.name,
          port: state.port,
          protocol: https ? 'HTTPS' : 'HTTP',
          ...(state.hostname === undefined ? {} : { hostname: state.hostname.toLowerCase() }),
          ...(https ? { tls: true as const } : {}),
        };
      }),
  };
}

function toGatewayStatus(entry: GatewayEntry): GatewayStatus {
  const listeners = entry.listeners.map((listener): GatewayListenerStatus => ({
    name: listener.state.name,
    supportedKinds: listener.state.supportedKinds,
    attachedRoutes: listener.routes.size,
    conditions: listener.conditions,
  }));
  const unserved = entry.listeners.filter((listener) => !listener.programmed);
  const anyAccepted = entry.listeners.some((listener) => listener.accepted);
  let accepted: GatewayCondition;
  if (entry.listeners.length > 0 && unserved.length === 0) {
    accepted = {
      type: 'Accepted',
      status: 'True',
      reason: 'Accepted',
      message: 'Gateway accepted',
    };
  } else {
    const names = unserved.map((listener) => listener.state.name).join(', ');
    const message =
      entry.listeners.length === 0
        ? 'spec.listeners: the Gateway has none'
        : `listeners not served: ${names}`;
    accepted = {
      type: 'Accepted',
      status: anyAccepted ? 'True' : 'False',
      reason: 'ListenersNotValid',
      message,
    };
  }
  return {
    namespace: entry.ref.namespace,
    name: entry.ref.name,
    generation: entry.generation,
    conditions: [accepted],
    listeners,
  };
}

function certificatesOf(key: string, entry: GatewayEntry): GatewayCertificate[] {
  return entry.listeners.flatMap(({ state, programmed }) =>
    programmed && state.secret !== undefined
      ? [{ gateway: key, listener: state.name, secret: state.secret }]
      : [],
  );
}
