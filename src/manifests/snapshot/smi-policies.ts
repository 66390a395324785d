// SMI TrafficTarget (access.smi-spec.io/v1alpha2) and TrafficSplit (split.smi-spec.io/v1alpha3),
// resolved against the cluster. Decisions:
// - TrafficTarget: destination and sources must be ServiceAccounts; a missing namespace is the
//   TrafficTarget's. The destination must be in the TrafficTarget's namespace (a policy author
//   decides who may reach their own workloads, never another namespace's: CrossNamespace);
//   sources may be anywhere. Rules name HTTPRouteGroups and TCPRoutes in the TrafficTarget's namespace.
//   Sources are sorted and deduplicated; HTTP matches keep the order of the rules.
// - TrafficSplit: the root and every backend are Services of the split's namespace; backends of
//   weight 0 are dropped, a weight above TRAFFIC_SPLIT_MAX_WEIGHT is refused (sums of weights
//   stay exact integers, and shares stay what they say), a backend named twice gets the sum of
//   its weights, backends are sorted
//   by Service. Matches name HTTPRouteGroups of the split's namespace and take all their matches.
// Pure.
import { TRAFFIC_SPLIT_MAX_WEIGHT } from '../constants';
import {
  arrayOf,
  countOf,
  keyOf,
  objectOf,
  portOf,
  sortedUnique,
  stringOf,
  compareText,
} from './kube-objects';
import type { Json, KubeObject, ObjectRef, PolicyType } from './kube-objects';
import { resolveRouteGroupRule } from './http-matches';
import type { RouteGroup } from './http-matches';
import { PolicyProblem, quoted } from './policy-problem';
import type {
  SnapshotHttpMatch,
  SnapshotService,
  SnapshotTrafficSplit,
  SnapshotTrafficTarget,
} from './types';

export const TRAFFIC_TARGET: PolicyType = {
  apiVersion: 'access.smi-spec.io/v1alpha2',
  kind: 'TrafficTarget',
};
export const TRAFFIC_SPLIT: PolicyType = {
  apiVersion: 'split.smi-spec.io/v1alpha3',
  kind: 'TrafficSplit',
};

/** What SMI policies are resolved against. */
export interface SmiContext {
  readonly services: ReadonlyMap<string, SnapshotService>;
  readonly routeGroups: ReadonlyMap<string, RouteGroup>;
  /** Keys "<namespace>/<name>" of the TCPRoutes. */
  readonly tcpRoutes: ReadonlySet<string>;
}

/** A TrafficTarget resolved; throws a PolicyProblem when it cannot be used. */
export function toTrafficTarget(
  object: KubeObject,
  ref: ObjectRef,
  context: SmiContext,
): SnapshotTrafficTarget {
  const spec = objectOf(object.spec);
  const destination = objectOf(spec.destination);
  const port = destinationPort(destination.port);
  const sources = arrayOf(spec.sources).map((source, position) =>
    serviceAccount(objectOf(source), ref.namespace, `spec.sources[${position}]`),
  );
  const httpMatches: SnapshotHttpMatch[] = [];
  let tcp = false;
  arrayOf(spec.rules).forEach((entry, position) => {
    const rule = objectOf(entry);
    const field = `spec.rules[${position}]`;
    if (rule.kind === 'HTTPRouteGroup') {
      httpMatches.push(...resolveRouteGroupRule(context.routeGroups, ref.namespace, rule, field));
    } else if (rule.kind === 'TCPRoute') {
      requireTcpRoute(context.tcpRoutes, ref.namespace, rule, field);
      tcp = true;
    } else {
      throw unsupportedKind(`${field}.kind`, rule.kind, 'HTTPRouteGroup or TCPRoute');
    }
  });
  return {
    namespace: ref.namespace,
    name: ref.name,
    destination: ownNamespace(
      serviceAccount(destination, ref.namespace, 'spec.destination'),
      ref.namespace,
      'spec.destination.namespace',
    ),
    ...(port === undefined ? {} : { port }),
    sources: sortedUnique(sources),
    httpMatches,
    tcp,
  };
}

function destinationPort(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const port = portOf(value);
  if (port === undefined) {
    throw new PolicyProblem(
      'InvalidField',
      `spec.destination.port ${quoted(value)}: expected a port 1-65535`,
    );
  }
  return port;
}

/** "<namespace>/<name>" of a ServiceAccount reference. */
function serviceAccount(reference: Json, namespace: string, field: string): string {
  if (reference.kind !== 'ServiceAccount') {
    throw unsupportedKind(`${field}.kind`, reference.kind, 'ServiceAccount');
  }
  return keyOf(stringOf(reference.namespace) ?? namespace, requiredName(reference, field));
}

function requireTcpRoute(
  tcpRoutes: ReadonlySet<string>,
  namespace: string,
  rule: Json,
  field: string,
): void {
  const name = requiredName(rule, field);
  if (!tcpRoutes.has(keyOf(namespace, name))) {
    throw new PolicyProblem(
      'UnknownTCPRoute',
      `${field}.name "${name}": no TCPRoute ${keyOf(namespace, name)}`,
    );
  }
}

/** A TrafficSplit resolved; throws a PolicyProblem when it cannot be used. */
export function toTrafficSplit(
  object: KubeObject,
  ref: ObjectRef,
  context: SmiContext,
): SnapshotTrafficSplit {
  const spec = objectOf(object.spec);
  const service = existingService(context, ref.namespace, spec.service, 'spec.service');
  const weights = new Map<string, number>();
  arrayOf(spec.backends).forEach((entry, position) => {
    const backend = objectOf(entry);
    const field = `spec.backends[${position}]`;
    const key = existingService(context, ref.namespace, backend.service, `${field}.service`);
    const weight = countOf(backend.weight);
    if (weight === undefined || weight > TRAFFIC_SPLIT_MAX_WEIGHT) {
      throw new PolicyProblem(
        'InvalidField',
        `${field}.weight ${quoted(backend.weight)}: expected an integer from 0 to ${TRAFFIC_SPLIT_MAX_WEIGHT}`,
      );
    }
    if (weight > 0) weights.set(key, (weights.get(key) ?? 0) + weight);
  });
  if (weights.size === 0) {
    throw new PolicyProblem('NoWeight', 'spec.backends: no backend has a weight above 0');
  }
  const matches = arrayOf(spec.matches).flatMap((entry, position) => {
    const match = objectOf(entry);
    const field = `spec.matches[${position}]`;
    if (match.kind !== 'HTTPRouteGroup') {
      throw unsupportedKind(`${field}.kind`, match.kind, 'HTTPRouteGroup');
    }
    return resolveRouteGroupRule(context.routeGroups, ref.namespace, { name: match.name }, field);
  });
  return {
    namespace: ref.namespace,
    name: ref.name,
    service,
    backends: [...weights]
      .sort((a, b) => compareText(a[0], b[0]))
      .map(([backend, weight]) => ({ service: backend, weight })),
    matches,
  };
}

/** "<namespace>/<name>" of a Service of `namespace` named by `value` at `field`. */
function existingService(
  context: SmiContext,
  namespace: string,
  value: unknown,
  field: string,
): string {
  const name = stringOf(value);
  if (name === undefined) throw new PolicyProblem('InvalidField', `${field} is missing`);
  const key = keyOf(namespace, name);
  if (!context.services.has(key)) {
    throw new PolicyProblem('UnknownService', `${field} "${name}": no Service ${key}`);
  }
  return key;
}

/**
 * key ("<namespace>/<name>") when it is in the policy's own namespace; a CrossNamespace
 * PolicyProblem naming field otherwise. Policies act only on their own namespace's workloads.
 */
export function ownNamespace(key: string, namespace: string, field: string): string {
  const [target = ''] = key.split('/');
  if (target !== namespace) {
    throw new PolicyProblem(
      'CrossNamespace',
      `${field} "${target}": a policy may only name its own namespace ("${namespace}") here`,
    );
  }
  return key;
}

/** The name of a reference, which every reference needs. */
export function requiredName(reference: Json, field: string): string {
  const name = stringOf(reference.name);
  if (name === undefined) throw new PolicyProblem('InvalidField', `${field}.name is missing`);
  return name;
}

export function unsupportedKind(field: string, value: unknown, expected: string): PolicyProblem {
  return new PolicyProblem('UnsupportedKind', `${field} ${quoted(value)}: expected ${expected}`);
}
