// The policy objects a sidecar's configuration is made of, named so that the agent can leave
// some out: when nginx refuses a rendered configuration anyway (a value the controller's checks
// let through, or an older controller), the agent renders it again without candidates until
// nginx accepts it, and says which objects it left out. Pure.
import type { MeshSnapshot } from '../../manifests/snapshot/types';

/** The snapshot collections that hold policy objects, and the kind each holds. */
export const POLICY_KINDS = {
  trafficTargets: 'TrafficTarget',
  trafficSplits: 'TrafficSplit',
  rateLimits: 'RateLimit',
  circuitBreakers: 'CircuitBreaker',
  httpRoutes: 'HTTPRoute',
  grpcRoutes: 'GRPCRoute',
  /** HTTPRoutes on a Gateway, which only the gateway's pods hold. */
  gatewayRoutes: 'HTTPRoute',
} as const;
export type PolicyCollection = keyof typeof POLICY_KINDS;

/** One policy object of a snapshot: its collection and "<namespace>/<name>" key. */
export interface SidecarPolicy {
  readonly collection: PolicyCollection;
  readonly key: string;
}

/** "<Kind> <namespace>/<name>", as users know the object. */
export function policyLabel(policy: SidecarPolicy): string {
  return `${POLICY_KINDS[policy.collection]} ${policy.key}`;
}

/** The snapshot without the given policy objects; everything else is shared, not copied. */
export function withoutPolicies(
  snapshot: MeshSnapshot,
  policies: readonly SidecarPolicy[],
): MeshSnapshot {
  if (policies.length === 0) return snapshot;
  const left = new Map<PolicyCollection, Set<string>>();
  for (const { collection, key } of policies)
    left.set(collection, (left.get(collection) ?? new Set()).add(key));
  const result: Record<string, unknown> = { ...snapshot };
  for (const [collection, keys] of left) {
    const kept = Object.entries(snapshot[collection]).filter(([key]) => !keys.has(key));
    result[collection] = Object.fromEntries(kept);
  }
  return result as unknown as MeshSnapshot;
}
