// Gateway API HTTPRoutes (gateway.networking.k8s.io/v1) attached to Services, as GAMMA defines
// them (GEP-1426, GEP-1294): which routes the mesh applies, and the status it writes on each.
// Decisions:
// - A route is this mesh's when a parentRef has group "" (or none) and kind Service; only those
//   parentRefs get a status entry (the parentRef echoed with group "" and kind "Service"), and
//   a route without one is left alone. Routes in the ignored namespaces are skipped.
// - A parentRef's namespace defaults to the route's. Its Service must be one of the mesh's, and
//   its port (when given) one of the Service's ports; sectionName, when given, names a port of
//   the Service and must agree with port. Otherwise that parent is not Accepted
//   (NoMatchingParent); the route's other parents are unaffected. A route in its Service's
//   namespace is a producer route; in another namespace, a consumer route (the renderer applies
//   it to that namespace's clients only). Both are accepted; hostnames are ignored, as GAMMA
//   requires.
// - A field the mesh does not implement (gamma-rules.ts lists them) makes the route not Accepted
//   on every parent (UnsupportedValue, naming the field), and the route adds nothing to the
//   snapshot: it is applied whole or not at all. So do backendRefs[].filters and a weight outside
//   0-GATEWAY_BACKEND_MAX_WEIGHT.
// - backendRefs are Services (group "", kind Service), namespace defaulting to the route's, with
//   a port of the Service. A Service the route is attached to (a consumer route's own parent)
//   may be named from any namespace, as GAMMA lets a consumer route send to the Service it
//   routes; any other Service of another namespace needs a ReferenceGrant there allowing routes of
//   this kind from the route's namespace to Services (all, or this name); it is checked before
//   the Service is looked up, so that a route learns nothing of a namespace that does not grant
//   it. A reference
//   that fails stays in its rule marked invalid (its share of requests is answered 500) and makes
//   ResolvedRefs False with the first failure's reason (InvalidKind, RefNotPermitted,
//   BackendNotFound), in rule and backendRef order; Accepted stays True. The weight defaults to
//   1; backends of weight 0 are left out (a failing reference of weight 0 still counts for
//   ResolvedRefs). A rule that redirects ignores its backendRefs.
// - SMI and Gateway API on one Service: once a producer route is Accepted for a Service (on any
//   port), it decides how that Service's traffic is routed and split, and a TrafficSplit whose
//   root is that Service is not applied: it becomes a problem of the TrafficSplit
//   (OverriddenByHTTPRoute, naming the first such route by namespace and name), which the SMI
//   status turns into a False Accepted condition and an Event. Consumer routes override nothing
//   (they serve some clients only). TrafficTarget, RateLimit and CircuitBreaker still apply.
// - Output is independent of input order: routes in "<namespace>/<name>" order, statuses sorted
//   by namespace and name, accepted parents sorted by Service and port; rules, matches, backends
//   and status parents keep the route's order.
// Pure.
import {
  arrayOf,
  compareText,
  countOf,
  indexByKey,
  keyOf,
  objectOf,
  portOf,
  refOf,
  stringOf,
} from './kube-objects';
import type { Json, KubeObject, ObjectRef, PolicyType } from './kube-objects';
import { isRedirectRule, toGrpcRuleShape, toRuleShape, UNSUPPORTED_VALUE } from './gamma-rules';
import { PolicyProblem, quoted } from './policy-problem';
import type {
  RouteCondition,
  RouteParentStatus,
  RouteStatus,
  SnapshotHttpRoute,
  SnapshotRouteBackend,
  SnapshotRouteMirror,
  SnapshotRouteParent,
  SnapshotRouteRule,
  SnapshotService,
} from './types';

export const HTTP_ROUTE: PolicyType = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
};
export const GRPC_ROUTE: PolicyType = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'GRPCRoute',
};

/** A kind of route: what it is, and how one of its rules reads without its backends. */
export interface RouteKind {
  readonly type: PolicyType;
  readonly shape: (rule: Json, field: string) => Omit<SnapshotRouteRule, 'backends'>;
}

export const HTTP_ROUTE_KIND: RouteKind = { type: HTTP_ROUTE, shape: toRuleShape };
export const GRPC_ROUTE_KIND: RouteKind = { type: GRPC_ROUTE, shape: toGrpcRuleShape };
/** The Gateway API's group, as a ReferenceGrant names HTTPRoutes by it. */
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
/** The largest backendRef weight the Gateway API allows. */
export const GATEWAY_BACKEND_MAX_WEIGHT = 1_000_000;
/** The reason a TrafficSplit is not applied because an HTTPRoute routes its root Service. */
export const OVERRIDDEN_BY_HTTP_ROUTE = 'OverriddenByHTTPRoute';

/** The routes the mesh applies and the status of every route that names a Service parent. */
export interface GammaRoutes {
  /** Routes accepted for at least one parent, in "<namespace>/<name>" order. */
  readonly routes: readonly (readonly [string, SnapshotHttpRoute])[];
  /** Sorted by namespace and name. */
  readonly statuses: readonly RouteStatus[];
  /** Service key → key of the first accepted producer route for it, by route key. */
  readonly producers: ReadonlyMap<string, string>;
}

/** What resolving a route's rules needs besides the route. */
export interface RouteContext {
  readonly kind: RouteKind;
  /** "<namespace>/<name>" of the Services the route's parentRefs name (whether they exist). */
  readonly parentServices?: ReadonlySet<string>;
  readonly services: ReadonlyMap<string, SnapshotService>;
  /** Namespace → the specs of its ReferenceGrants. */
  readonly grants: ReadonlyMap<string, readonly Json[]>;
}

/** Why a reference could not be used: a ResolvedRefs reason and a one-line message. */
interface RefFailure {
  readonly reason: string;
  readonly message: string;
}

/** Builds every route of a kind outside the ignored namespaces; total and order-independent. */
export function buildGammaRoutes(
  routes: readonly KubeObject[],
  referenceGrants: readonly KubeObject[],
  services: ReadonlyMap<string, SnapshotService>,
  ignored: ReadonlySet<string>,
  kind: RouteKind = HTTP_ROUTE_KIND,
): GammaRoutes {
  const context: RouteContext = {
    kind,
    services,
    grants: grantsByNamespace(referenceGrants, ignored),
  };
  const index = indexByKey(routes);
  const accepted: [string, SnapshotHttpRoute][] = [];
  const statuses: RouteStatus[] = [];
  const producers = new Map<string, string>();
  for (const key of [...index.keys()].sort(compareText)) {
    const object = index.get(key) as KubeObject;
    const ref = refOf(object) as ObjectRef;
    if (ignored.has(ref.namespace)) continue;
    const built = buildRoute(object, ref, context);
    if (built === undefined) continue;
    statuses.push(built.status);
    if (built.route === undefined) continue;
    accepted.push([key, built.route]);
    for (const parent of built.route.parents) {
      const inOwnNamespace = parent.service.startsWith(`${ref.namespace}/`);
      if (inOwnNamespace && !producers.has(parent.service)) producers.set(parent.service, key);
    }
  }
  statuses.sort((a, b) => compareText(a.namespace, b.namespace) || compareText(a.name, b.name));
  return { routes: accepted, statuses, producers };
}

/**
 * The TrafficSplits not overridden by a producer HTTPRoute of their root Service; each one left
 * out is reported through `overridden` with a message naming the route.
 */
export function withoutOverriddenSplits<T extends { readonly service: string }>(
  splits: readonly (readonly [string, T])[],
  producers: ReadonlyMap<string, string>,
  overridden: (key: string, message: string) => void,
): [string, T][] {
  const kept: [string, T][] = [];
  for (const [key, split] of splits) {
    const route = producers.get(split.service);
    if (route === undefined) {
      kept.push([key, split]);
      continue;
    }
    const name = split.service.slice(split.service.indexOf('/') + 1);
    overridden(
      key,
      `spec.service "${name}": HTTPRoute ${route} routes Service ${split.service}, and an HTTPRoute takes precedence over a TrafficSplit`,
    );
  }
  return kept;
}

/** The specs of the ReferenceGrants outside the ignored namespaces, by namespace. */
export function grantsByNamespace(
  grants: readonly KubeObject[],
  ignored: ReadonlySet<string>,
): Map<string, Json[]> {
  const byNamespace = new Map<string, Json[]>();
  for (const grant of indexByKey(grants).values()) {
    const ref = refOf(grant) as ObjectRef;
    if (ignored.has(ref.namespace)) continue;
    const specs = byNamespace.get(ref.namespace) ?? [];
    specs.push(objectOf(grant.spec));
    byNamespace.set(ref.namespace, specs);
  }
  return byNamespace;
}

/** A parentRef of kind Service, where it stands, and its echo for the status. */
interface ServiceParentRef {
  readonly entry: Json;
  readonly field: string;
  readonly echo: Record<string, unknown>;
}

function buildRoute(
  object: KubeObject,
  ref: ObjectRef,
  shared: RouteContext,
): { status: RouteStatus; route?: SnapshotHttpRoute } | undefined {
  const spec = objectOf(object.spec);
  const parentRefs = serviceParentRefs(spec.parentRefs);
  if (parentRefs.length === 0) return undefined;
  const context: RouteContext = {
    ...shared,
    parentServices: new Set(
      parentRefs.map(({ entry }) =>
        keyOf(stringOf(entry.namespace) ?? ref.namespace, stringOf(entry.name) ?? ''),
      ),
    ),
  };
  const { resolvedRefs, rules, refusal } = toRouteRules(spec, ref, context);
  const parents: SnapshotRouteParent[] = [];
  const statusParents = parentRefs.map(({ entry, field, echo }): RouteParentStatus => {
    const resolved = resolveParent(entry, field, ref.namespace, context.services);
    let accepted: RouteCondition;
    if ('failure' in resolved) {
      accepted = { status: 'False', reason: 'NoMatchingParent', message: resolved.failure };
    } else if (refusal !== undefined) {
      accepted = { status: 'False', reason: refusal.reason, message: refusal.message };
    } else {
      parents.push(resolved.parent);
      accepted = { status: 'True', reason: 'Accepted', message: acceptedMessage(resolved.parent) };
    }
    return { parentRef: echo, accepted, resolvedRefs };
  });
  const metadata = objectOf(object.metadata);
  const status: RouteStatus = {
    apiVersion: stringOf(object.apiVersion) ?? context.kind.type.apiVersion,
    kind: stringOf(object.kind) ?? context.kind.type.kind,
    namespace: ref.namespace,
    name: ref.name,
    generation: countOf(metadata.generation) ?? 0,
    parents: statusParents,
  };
  if (rules === undefined || parents.length === 0) return { status };
  return {
    status,
    route: {
      namespace: ref.namespace,
      name: ref.name,
      created: typeof metadata.creationTimestamp === 'string' ? metadata.creationTimestamp : '',
      parents: sortedParents(parents),
      rules,
    },
  };
}

/**
 * A route's rules as the mesh applies them (undefined, with the refusal, when a field is not
 * supported) and its ResolvedRefs condition: one implementation for every kind of parent.
 */
export function toRouteRules(
  spec: Json,
  ref: ObjectRef,
  context: RouteContext,
): { resolvedRefs: RouteCondition; rules?: SnapshotRouteRule[]; refusal?: PolicyProblem } {
  const ruleEntries = arrayOf(spec.rules).map(objectOf);
  if (ruleEntries.length === 0) ruleEntries.push({});
  const resolvedRefs = resolvedRefsOf(ruleEntries, ref, context);
  try {
    const rules = ruleEntries.map((rule, position) =>
      toRule(rule, `spec.rules[${position}]`, ref, context),
    );
    return { resolvedRefs, rules };
  } catch (error) {
    if (!(error instanceof PolicyProblem)) throw error;
    return { resolvedRefs, refusal: error };
  }
}

/**
 * A parentRef as a status echoes it: as written, keys sorted, with group and kind made explicit.
 * Kind defaults to Gateway; group to "" for a Service (as GAMMA routes name Services), else to
 * the Gateway API's group.
 */
export function parentRefEcho(entry: Json): Record<string, unknown> {
  const kind = stringOf(entry.kind) ?? 'Gateway';
  const group =
    typeof entry.group === 'string' ? entry.group : kind === 'Service' ? '' : GATEWAY_API_GROUP;
  const echo: Record<string, unknown> = {};
  for (const name of [...new Set([...Object.keys(entry), 'group', 'kind'])].sort(compareText)) {
    echo[name] = name === 'group' ? group : name === 'kind' ? kind : entry[name];
  }
  return echo;
}

/** The parentRefs of kind Service (group "" or none), each once, in the route's order. */
function serviceParentRefs(value: unknown): ServiceParentRef[] {
  const seen = new Set<string>();
  const found: ServiceParentRef[] = [];
  arrayOf(value).forEach((item, position) => {
    const entry = objectOf(item);
    const group = entry.group ?? '';
    if (group !== '' || entry.kind !== 'Service') return;
    const echo = parentRefEcho(entry);
    const text = JSON.stringify(echo);
    if (seen.has(text)) return;
    seen.add(text);
    found.push({ entry, field: `spec.parentRefs[${position}]`, echo });
  });
  return found;
}

/** The Service (and port) a parentRef names, or why it names none of the mesh. */
function resolveParent(
  entry: Json,
  field: string,
  namespace: string,
  services: ReadonlyMap<string, SnapshotService>,
): { parent: SnapshotRouteParent } | { failure: string } {
  const name = stringOf(entry.name);
  if (name === undefined) return { failure: `${field}.name is missing` };
  const key = keyOf(stringOf(entry.namespace) ?? namespace, name);
  const service = services.get(key);
  if (service === undefined) {
    return { failure: `${field}.name "${name}": no Service ${key} in the mesh` };
  }
  let port: number | undefined;
  if (entry.port !== undefined) {
    port = portOf(entry.port);
    if (port === undefined || !service.ports.some((candidate) => candidate.port === port)) {
      return { failure: `${field}.port ${quoted(entry.port)}: Service ${key} has no such port` };
    }
  }
  const section = entry.sectionName;
  if (section !== undefined) {
    const named = service.ports.find((candidate) => candidate.name === section);
    if (named === undefined) {
      return {
        failure: `${field}.sectionName ${quoted(section)}: Service ${key} has no port of that name`,
      };
    }
    if (port !== undefined && named.port !== port) {
      return {
        failure: `${field}.sectionName ${quoted(section)}: names port ${named.port} of Service ${key}, not port ${port}`,
      };
    }
    port = named.port;
  }
  return { parent: { service: key, ...(port === undefined ? {} : { port }) } };
}

function acceptedMessage(parent: SnapshotRouteParent): string {
  return parent.port === undefined
    ? `accepted for Service ${parent.service}`
    : `accepted for port ${parent.port} of Service ${parent.service}`;
}

function sortedParents(parents: readonly SnapshotRouteParent[]): SnapshotRouteParent[] {
  const unique = new Map<string, SnapshotRouteParent>();
  for (const parent of parents) unique.set(`${parent.service} ${parent.port ?? ''}`, parent);
  return [...unique.values()].sort(
    (a, b) => compareText(a.service, b.service) || (a.port ?? 0) - (b.port ?? 0),
  );
}

/** ResolvedRefs: False with the first failing reference of a rule that forwards, else True. */
function resolvedRefsOf(
  rules: readonly Json[],
  route: ObjectRef,
  context: RouteContext,
): RouteCondition {
  for (const [position, rule] of rules.entries()) {
    if (isRedirectRule(rule)) continue;
    const failure = arrayOf(rule.backendRefs)
      .map((entry, at) =>
        resolveBackend(
          objectOf(entry),
          `spec.rules[${position}].backendRefs[${at}]`,
          route,
          context,
        ),
      )
      .find((backend) => backend.failure !== undefined)?.failure;
    if (failure !== undefined) return { status: 'False', ...failure };
    const mirrorFailure = mirrorRefs(rule, `spec.rules[${position}]`)
      .map(([entry, at]) => resolveBackend(entry, at, route, context))
      .find((backend) => backend.failure !== undefined)?.failure;
    if (mirrorFailure !== undefined) return { status: 'False', ...mirrorFailure };
  }
  return { status: 'True', reason: 'ResolvedRefs', message: 'every backendRef resolved' };
}

function toRule(
  rule: Json,
  field: string,
  route: ObjectRef,
  context: RouteContext,
): SnapshotRouteRule {
  const shape = context.kind.shape(rule, field);
  if (isRedirectRule(rule)) return { ...shape, backends: [] };
  const backends: SnapshotRouteBackend[] = [];
  arrayOf(rule.backendRefs).forEach((item, position) => {
    const entry = objectOf(item);
    const at = `${field}.backendRefs[${position}]`;
    if (arrayOf(entry.filters).length > 0) {
      throw new PolicyProblem(UNSUPPORTED_VALUE, `${at}.filters: not supported by this mesh`);
    }
    const weight = entry.weight === undefined ? 1 : countOf(entry.weight);
    if (weight === undefined || weight > GATEWAY_BACKEND_MAX_WEIGHT) {
      throw new PolicyProblem(
        UNSUPPORTED_VALUE,
        `${at}.weight ${quoted(entry.weight)}: expected an integer from 0 to ${GATEWAY_BACKEND_MAX_WEIGHT}`,
      );
    }
    if (weight === 0) return;
    const backend = resolveBackend(entry, at, route, context);
    backends.push({
      service: backend.service,
      port: backend.port,
      weight,
      ...(backend.failure === undefined ? {} : { invalid: true }),
    });
  });
  const mirrors = toMirrors(rule, field, route, context);
  return { ...shape, backends, ...(mirrors.length === 0 ? {} : { mirrors }) };
}

/** The backendRef of each RequestMirror filter of a rule, with its field. */
function mirrorRefs(rule: Json, field: string): [Json, string][] {
  return arrayOf(rule.filters).flatMap((item, position) => {
    const filter = objectOf(item);
    if (filter.type !== 'RequestMirror') return [];
    const at = `${field}.filters[${position}].requestMirror`;
    return [[objectOf(objectOf(filter.requestMirror).backendRef), `${at}.backendRef`]];
  });
}

/** The rule's mirrors whose backend resolved (the others show in ResolvedRefs). */
function toMirrors(
  rule: Json,
  field: string,
  route: ObjectRef,
  context: RouteContext,
): SnapshotRouteMirror[] {
  return arrayOf(rule.filters).flatMap((item, position) => {
    const filter = objectOf(item);
    if (filter.type !== 'RequestMirror') return [];
    const at = `${field}.filters[${position}].requestMirror`;
    const mirror = objectOf(filter.requestMirror);
    const percent = mirrorPercent(mirror, at);
    const backend = resolveBackend(objectOf(mirror.backendRef), `${at}.backendRef`, route, context);
    if (backend.failure !== undefined || percent === 0) return [];
    return [{ service: backend.service, port: backend.port, percent }];
  });
}

/** The share a RequestMirror copies, in percent with two decimals: percent, fraction, or all. */
function mirrorPercent(mirror: Json, field: string): number {
  if (mirror.percent !== undefined) {
    const percent = countOf(mirror.percent);
    if (percent === undefined || percent > 100) {
      throw new PolicyProblem(
        UNSUPPORTED_VALUE,
        `${field}.percent ${quoted(mirror.percent)}: expected an integer from 0 to 100`,
      );
    }
    return percent;
  }
  if (mirror.fraction !== undefined) {
    const fraction = objectOf(mirror.fraction);
    const numerator = countOf(fraction.numerator);
    const denominator = fraction.denominator === undefined ? 100 : countOf(fraction.denominator);
    if (
      numerator === undefined ||
      denominator === undefined ||
      denominator === 0 ||
      numerator > denominator
    ) {
      throw new PolicyProblem(
        UNSUPPORTED_VALUE,
        `${field}.fraction: expected a numerator from 0 to a denominator above 0`,
      );
    }
    return Math.round((numerator * 10000) / denominator) / 100;
  }
  return 100;
}

/** The Service port a backendRef names, with why it cannot be used when it cannot. */
function resolveBackend(
  entry: Json,
  field: string,
  route: ObjectRef,
  context: RouteContext,
): { service: string; port: number; failure?: RefFailure } {
  const name = stringOf(entry.name) ?? '';
  const namespace = stringOf(entry.namespace) ?? route.namespace;
  const service = keyOf(namespace, name);
  const port = portOf(entry.port);
  const failure = backendFailure(entry, field, { namespace, name }, route, context);
  return { service, port: port ?? 0, ...(failure === undefined ? {} : { failure }) };
}

function backendFailure(
  entry: Json,
  field: string,
  target: ObjectRef,
  route: ObjectRef,
  context: RouteContext,
): RefFailure | undefined {
  const group = entry.group ?? '';
  if (group !== '') {
    return {
      reason: 'InvalidKind',
      message: `${field}.group ${quoted(group)}: expected "" (core)`,
    };
  }
  const kind = entry.kind ?? 'Service';
  if (kind !== 'Service') {
    return { reason: 'InvalidKind', message: `${field}.kind ${quoted(kind)}: expected Service` };
  }
  if (target.name === '') return { reason: 'BackendNotFound', message: `${field}.name is missing` };
  if (
    target.namespace !== route.namespace &&
    context.parentServices?.has(keyOf(target.namespace, target.name)) !== true &&
    !granted(context, route.namespace, target)
  ) {
    return {
      reason: 'RefNotPermitted',
      message: `${field}.namespace "${target.namespace}": no ReferenceGrant in ${target.namespace} allows HTTPRoutes of ${route.namespace} to refer to Service ${target.name}`,
    };
  }
  const key = keyOf(target.namespace, target.name);
  const service = context.services.get(key);
  if (service === undefined) {
    return {
      reason: 'BackendNotFound',
      message: `${field}.name "${target.name}": no Service ${key}`,
    };
  }
  if (entry.port === undefined) {
    return {
      reason: 'BackendNotFound',
      message: `${field}.port is missing: a Service backend needs one`,
    };
  }
  const port = portOf(entry.port);
  if (port === undefined || !service.ports.some((candidate) => candidate.port === port)) {
    return {
      reason: 'BackendNotFound',
      message: `${field}.port ${quoted(entry.port)}: Service ${key} has no such port`,
    };
  }
  return undefined;
}

/** Whether a ReferenceGrant of target's namespace lets HTTPRoutes of `from` refer to target. */
function granted(context: RouteContext, from: string, target: ObjectRef): boolean {
  return referenceGranted(
    context.grants,
    { group: GATEWAY_API_GROUP, kind: context.kind.type.kind, namespace: from },
    { group: '', kind: 'Service', ...target },
  );
}

/** One side of a cross-namespace reference, as a ReferenceGrant names it. */
export interface GrantParty {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
}

/**
 * Whether a ReferenceGrant in the target's namespace lets objects of `from` (group, kind,
 * namespace) refer to the target: its kind in its group, all of them or this name.
 */
export function referenceGranted(
  grants: ReadonlyMap<string, readonly Json[]>,
  from: GrantParty,
  target: GrantParty & { readonly name: string },
): boolean {
  return (grants.get(target.namespace) ?? []).some(
    (spec) =>
      arrayOf(spec.from).some((item) => {
        const entry = objectOf(item);
        return (
          (entry.group ?? '') === from.group &&
          entry.kind === from.kind &&
          entry.namespace === from.namespace
        );
      }) &&
      arrayOf(spec.to).some((item) => {
        const entry = objectOf(item);
        const name = stringOf(entry.name);
        return (
          (entry.group ?? '') === target.group &&
          entry.kind === target.kind &&
          (name === undefined || name === target.name)
        );
      }),
  );
}
