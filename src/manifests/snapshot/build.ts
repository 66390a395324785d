// The controller's pure step from Kubernetes objects to the mesh snapshot every agent receives.
// The runtime keeps the watched objects; this function decides what they mean. Decisions that
// hold throughout (each part's own are in its file header):
// - Objects in kube-system and in the mesh's own namespace are ignored: the mesh does not police
//   its control plane. Namespaces are part of the state the controller watches; nothing in the
//   snapshot depends on them today.
// - Raw objects may lack any field. A core object (Service, EndpointSlice, Pod) without a name or
//   namespace is skipped; a field of the wrong shape reads as absent. A policy that cannot be
//   used becomes a SnapshotProblem and is left out; nothing else changes because of it.
// - The output does not depend on the order of the input: collections are records whose keys
//   were inserted in sorted order, lists are sorted, problems are sorted by kind, namespace and
//   name, warnings alphabetically.
// - Gateway API HTTPRoutes attached to Services (gamma-routes.ts) are built before the SMI
//   policies' split is kept: a producer HTTPRoute accepted for a Service overrides a TrafficSplit
//   of that Service (OverriddenByHTTPRoute), and routeStatuses holds what the controller writes
//   on every route naming a Service parent.
// - peers names every injected, unfinished pod by address, whether or not it backs a Service, for
//   the agents' metrics; no sidecar's nginx configuration depends on it.
// - Work is linear in the size of the cluster (indexes by key, one pass per list, no nested
//   scans); bench/snapshot.ts measures it against merely copying the same state.
// Pure.
import { DEFAULT_MESH_NAMESPACE, KUBE_SYSTEM_NAMESPACE } from '../constants';
import { CIRCUIT_BREAKER, toCircuitBreaker } from './circuit-breakers';
import {
  buildGammaRoutes,
  GRPC_ROUTE_KIND,
  OVERRIDDEN_BY_HTTP_ROUTE,
  withoutOverriddenSplits,
} from './gamma-routes';
import { buildRouteGroups } from './http-matches';
import { compareText, indexByKey, ProblemLog, refOf, sortedRecord } from './kube-objects';
import type { ClusterState, KubeObject } from './kube-objects';
import { buildMeshSettings } from './mesh-settings';
import { buildPodIndex } from './pods';
import { buildPolicies } from './policy-problem';
import { RATE_LIMIT, toRateLimit, withoutConflicts } from './rate-limits';
import { buildServiceIndex } from './services';
import { TRAFFIC_SPLIT, TRAFFIC_TARGET, toTrafficSplit, toTrafficTarget } from './smi-policies';
import type { MeshSnapshot, RouteStatus, SnapshotMesh, SnapshotProblem } from './types';

export type { ClusterState, KubeObject } from './kube-objects';

/** What the snapshot is built with besides the cluster's objects. */
export interface SnapshotSettings {
  /** The control plane's namespace; its objects are not part of the mesh. */
  readonly meshNamespace: string;
  /** From ConfigMap meshconfig (install-time + transparent); MeshConfig spec overrides its runtime fields. */
  readonly base: SnapshotMesh;
}

/** A snapshot, the policies that could not be used, and warnings naming the object at fault. */
export interface SnapshotOutcome {
  readonly snapshot: MeshSnapshot;
  /** Sorted by kind, namespace and name. */
  readonly problems: readonly SnapshotProblem[];
  /** Sorted. */
  readonly warnings: readonly string[];
  /**
   * The status of every HTTPRoute with a parentRef of kind Service, sorted by namespace and name:
   * one entry per such parentRef.
   */
  readonly routeStatuses: readonly RouteStatus[];
}

/** The mesh snapshot of `state`; total (never throws on odd objects) and deterministic. */
export function buildSnapshot(state: ClusterState, settings: SnapshotSettings): SnapshotOutcome {
  const ignored = new Set([
    KUBE_SYSTEM_NAMESPACE,
    settings.meshNamespace || DEFAULT_MESH_NAMESPACE,
  ]);
  const warnings: string[] = [];
  const log = new ProblemLog();
  const mesh = buildMeshSettings(settings.base, state.meshConfig, warnings);
  const pods = buildPodIndex(state.pods, ignored);
  const services = buildServiceIndex(state.services, state.endpointSlices, pods, ignored, warnings);
  const routeGroups = buildRouteGroups(state.httpRouteGroups, ignored, log);
  const smi = {
    services: services.byKey,
    routeGroups,
    tcpRoutes: tcpRouteKeys(state.tcpRoutes, ignored),
  };
  const trafficTargets = buildPolicies(state.trafficTargets, TRAFFIC_TARGET, ignored, log, (o, r) =>
    toTrafficTarget(o, r, smi),
  );
  const gamma = buildGammaRoutes(
    state.httpRoutes ?? [],
    state.referenceGrants ?? [],
    services.byKey,
    ignored,
  );
  const grpc = buildGammaRoutes(
    state.grpcRoutes ?? [],
    state.referenceGrants ?? [],
    services.byKey,
    ignored,
    GRPC_ROUTE_KIND,
  );
  const trafficSplitIndex = indexByKey(state.trafficSplits);
  const trafficSplits = withoutOverriddenSplits(
    buildPolicies(state.trafficSplits, TRAFFIC_SPLIT, ignored, log, (o, r) =>
      toTrafficSplit(o, r, smi),
    ),
    gamma.producers,
    (key, message) =>
      log.add(
        trafficSplitIndex.get(key) as KubeObject,
        TRAFFIC_SPLIT,
        OVERRIDDEN_BY_HTTP_ROUTE,
        message,
      ),
  );
  const rateLimitIndex = indexByKey(state.rateLimits);
  const resolvedRateLimits = buildPolicies(state.rateLimits, RATE_LIMIT, ignored, log, (o, r) =>
    toRateLimit(o, r, { pods, services, routeGroups }),
  );
  const rateLimits = withoutConflicts(resolvedRateLimits, (key, message) =>
    log.add(rateLimitIndex.get(key) as KubeObject, RATE_LIMIT, 'Conflict', message),
  );
  const circuitBreakers = buildPolicies(
    state.circuitBreakers,
    CIRCUIT_BREAKER,
    ignored,
    log,
    (o, r) => toCircuitBreaker(o, r, services.byKey, mesh),
  );
  const snapshot: MeshSnapshot = {
    mesh,
    services: sortedRecord(services.byKey),
    trafficTargets: sortedRecord(trafficTargets),
    trafficSplits: sortedRecord(trafficSplits),
    rateLimits: sortedRecord(rateLimits),
    circuitBreakers: sortedRecord(circuitBreakers),
    httpRoutes: sortedRecord(gamma.routes),
    grpcRoutes: sortedRecord(grpc.routes),
    peers: pods.peers(),
  };
  return {
    snapshot,
    problems: log.sorted(),
    warnings: [...warnings].sort(compareText),
    routeStatuses: [...gamma.statuses, ...grpc.statuses].sort(
      (a, b) =>
        compareText(a.namespace, b.namespace) ||
        compareText(a.name, b.name) ||
        compareText(a.kind, b.kind),
    ),
  };
}

function tcpRouteKeys(routes: readonly KubeObject[], ignored: ReadonlySet<string>): Set<string> {
  const keys = new Set<string>();
  for (const [key, route] of indexByKey(routes)) {
    const ref = refOf(route);
    if (ref !== undefined && !ignored.has(ref.namespace)) keys.add(key);
  }
  return keys;
}
