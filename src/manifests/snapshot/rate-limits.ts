// RateLimit (specs.smi.nginx.com v1alpha1 and v1alpha2, one shape; v1alpha2 adds rules), resolved
// to the injected pods it limits and the addresses it limits. Decisions:
// - delay defaults to 0, nginx's own default for limit_req: every request above the rate waits
//   (none is forwarded without delay); "nodelay" forwards the burst at once. burst defaults to 0.
// - Destination and sources are Pods, Deployments, DaemonSets, StatefulSets or Services; a
//   missing namespace is the RateLimit's; the destination must be in the RateLimit's namespace
//   (CrossNamespace: no one limits another namespace's workloads). A Service stands for the pods its EndpointSlices name.
//   A destination with no injected pod is UnknownDestination; sources that were given but name no
//   pod with an address are UnknownSource (limiting every caller instead would widen the policy).
// - Rules are read whenever present (the API server prunes them from v1alpha1 objects).
// - Conflict: two RateLimits naming the same (source, destination) references, "no sources"
//   counting as a source of its own; the first by "<namespace>/<name>" keeps the pair, the later
//   one is dropped. References are compared as written, so the outcome does not change while
//   pods come and go.
// Pure.
import { arrayOf, countOf, keyOf, objectOf, sortedUnique, stringOf } from './kube-objects';
import type { Json, KubeObject, ObjectRef, PolicyType } from './kube-objects';
import { resolveRouteGroupRule } from './http-matches';
import type { RouteGroup } from './http-matches';
import { podKey, workloadKey } from './pods';
import type { PodIndex } from './pods';
import { PolicyProblem, quoted } from './policy-problem';
import type { ServiceIndex } from './services';
import { ownNamespace, requiredName, unsupportedKind } from './smi-policies';
import type { SnapshotHttpMatch, SnapshotPod, SnapshotRateLimit } from './types';

export const RATE_LIMIT: PolicyType = {
  apiVersion: 'specs.smi.nginx.com/v1alpha2',
  kind: 'RateLimit',
};

const RATE_PATTERN = /^([0-9]+)r\/([sm])$/;
const WORKLOAD_KINDS = new Set(['Deployment', 'DaemonSet', 'StatefulSet']);
const REFERENCE_KINDS = 'Pod, Deployment, DaemonSet, StatefulSet or Service';

/** What RateLimits are resolved against. */
export interface RateLimitContext {
  readonly pods: PodIndex;
  readonly services: ServiceIndex;
  readonly routeGroups: ReadonlyMap<string, RouteGroup>;
}

/** A RateLimit resolved, with the reference pairs it claims; throws a PolicyProblem. */
export interface ResolvedRateLimit {
  readonly rateLimit: SnapshotRateLimit;
  /** "<source reference> -> <destination reference>" for conflict detection. */
  readonly pairs: readonly string[];
}

export function toRateLimit(
  object: KubeObject,
  ref: ObjectRef,
  context: RateLimitContext,
): ResolvedRateLimit {
  const spec = objectOf(object.spec);
  const { rate, per } = parseRate(spec.rate);
  const burst = parseBurst(spec.burst);
  const delay = parseDelay(spec.delay);
  const destination = objectOf(spec.destination);
  const destinationRef = referenceKey(destination, ref.namespace, 'spec.destination');
  ownNamespace(
    keyOf(stringOf(destination.namespace) ?? ref.namespace, ''),
    ref.namespace,
    'spec.destination.namespace',
  );
  const destinationPods = resolvePods(destination, ref.namespace, context).map(podKey);
  if (destinationPods.length === 0) {
    throw new PolicyProblem(
      'UnknownDestination',
      `spec.destination "${destinationRef}": names no injected pod`,
    );
  }
  const sourceRefs: string[] = [];
  const sourceIps: string[] = [];
  arrayOf(spec.sources).forEach((entry, position) => {
    const source = objectOf(entry);
    sourceRefs.push(referenceKey(source, ref.namespace, `spec.sources[${position}]`));
    for (const pod of resolvePods(source, ref.namespace, context)) sourceIps.push(...pod.ips);
  });
  if (sourceRefs.length > 0 && sourceIps.length === 0) {
    throw new PolicyProblem(
      'UnknownSource',
      `spec.sources "${sourceRefs.join('", "')}": name no injected pod with an address`,
    );
  }
  const rateLimit: SnapshotRateLimit = {
    namespace: ref.namespace,
    name: ref.name,
    destinationPods: sortedUnique(destinationPods),
    sourceIps: sortedUnique(sourceIps),
    rate,
    per,
    burst,
    delay,
    matches: ruleMatches(spec.rules, ref.namespace, context.routeGroups),
  };
  const sources = sourceRefs.length === 0 ? ['*'] : sortedUnique(sourceRefs);
  return { rateLimit, pairs: sources.map((source) => `${source} -> ${destinationRef}`) };
}

function parseRate(value: unknown): { rate: number; per: 's' | 'm' } {
  const match = typeof value === 'string' ? RATE_PATTERN.exec(value) : null;
  const rate = Number(match?.[1]);
  if (match === null || !Number.isSafeInteger(rate) || rate <= 0) {
    throw new PolicyProblem(
      'InvalidRate',
      `spec.rate ${quoted(value)}: expected <requests>r/s or <requests>r/m, above 0`,
    );
  }
  return { rate, per: match[2] === 'm' ? 'm' : 's' };
}

function parseBurst(value: unknown): number {
  if (value === undefined) return 0;
  const burst = countOf(value);
  if (burst === undefined) {
    throw new PolicyProblem(
      'InvalidField',
      `spec.burst ${quoted(value)}: expected an integer >= 0`,
    );
  }
  return burst;
}

function parseDelay(value: unknown): number | 'nodelay' {
  if (value === undefined) return 0;
  if (value === 'nodelay') return 'nodelay';
  const delay =
    typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : countOf(value);
  if (delay === undefined || !Number.isSafeInteger(delay)) {
    throw new PolicyProblem(
      'InvalidField',
      `spec.delay ${quoted(value)}: expected an integer >= 0 or "nodelay"`,
    );
  }
  return delay;
}

/** "<Kind> <namespace>/<name>" of a reference; throws on a kind that is not supported. */
function referenceKey(reference: Json, namespace: string, field: string): string {
  const kind = stringOf(reference.kind);
  if (kind === undefined || (kind !== 'Pod' && kind !== 'Service' && !WORKLOAD_KINDS.has(kind))) {
    throw unsupportedKind(`${field}.kind`, reference.kind, REFERENCE_KINDS);
  }
  const name = requiredName(reference, field);
  return `${kind} ${keyOf(stringOf(reference.namespace) ?? namespace, name)}`;
}

/** The injected pods a valid reference names. */
function resolvePods(
  reference: Json,
  namespace: string,
  context: RateLimitContext,
): readonly SnapshotPod[] {
  const kind = stringOf(reference.kind) ?? '';
  const name = stringOf(reference.name) ?? '';
  const ns = stringOf(reference.namespace) ?? namespace;
  if (kind === 'Pod') {
    const pod = context.pods.get(keyOf(ns, name));
    return pod === undefined ? [] : [pod];
  }
  if (kind === 'Service') {
    const keys = context.services.podKeysOf(keyOf(ns, name));
    return keys
      .map((key) => context.pods.get(key))
      .filter((pod): pod is SnapshotPod => pod !== undefined);
  }
  return context.pods.ofWorkload(workloadKey(ns, kind, name));
}

function ruleMatches(
  rules: unknown,
  namespace: string,
  routeGroups: ReadonlyMap<string, RouteGroup>,
): SnapshotHttpMatch[] {
  return arrayOf(rules).flatMap((entry, position) => {
    const rule = objectOf(entry);
    const field = `spec.rules[${position}]`;
    if (rule.kind !== 'HTTPRouteGroup') {
      throw unsupportedKind(`${field}.kind`, rule.kind, 'HTTPRouteGroup');
    }
    return resolveRouteGroupRule(routeGroups, namespace, rule, field);
  });
}

/**
 * Drops every RateLimit that claims a (source, destination) pair an earlier one (in the given
 * order, "<namespace>/<name>") already holds; `conflict` is told which one and why.
 */
export function withoutConflicts(
  resolved: readonly (readonly [string, ResolvedRateLimit])[],
  conflict: (key: string, message: string) => void,
): [string, SnapshotRateLimit][] {
  const holders = new Map<string, string>();
  const kept: [string, SnapshotRateLimit][] = [];
  for (const [key, { rateLimit, pairs }] of resolved) {
    const taken = pairs.find((pair) => holders.has(pair));
    if (taken !== undefined) {
      conflict(
        key,
        `spec.sources/spec.destination "${taken}": already limited by RateLimit ${holders.get(taken) ?? ''}`,
      );
      continue;
    }
    for (const pair of pairs) holders.set(pair, key);
    kept.push([key, rateLimit]);
  }
  return kept;
}
