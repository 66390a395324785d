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
// - Gateways of this mesh's GatewayClass (gateways.ts) share the route rules with GAMMA: an
//   HTTPRoute may name Services and Gateways as parents, and its one status holds both kinds of
//   parent in the route's parentRefs order.
// - peers names every injected, unfinished pod by address, whether or not it backs a Service, for
//   the agents' metrics; no sidecar's nginx configuration depends on it.
// - Work is linear in the size of the cluster (indexes by key, one pass per list, no nested
//   scans); bench/snapshot.ts measures it against merely copying the same state.
// Pure.
import {
  DEFAULT_MESH_NAMESPACE,
  GATEWAY_CONTROLLER_NAME,
  KUBE_SYSTEM_NAMESPACE,
} from '../constants';
import { CIRCUIT_BREAKER, toCircuitBreaker } from './circuit-breakers';
import {
  buildGammaRoutes,
  GRPC_ROUTE_KIND,
  OVERRIDDEN_BY_HTTP_ROUTE,
  withoutOverriddenSplits,
} from './gamma-routes';
import { buildGateways, mergeRouteStatuses } from './gateways';
import type { GatewayCertificate } from './gateways';
import { buildRouteGroups } from './http-matches';
import { compareText, indexByKey, ProblemLog, refOf, sortedRecord } from './kube-objects';
import type { ClusterState, KubeObject } from './kube-objects';
import { buildMeshSettings } from './mesh-settings';
import { buildPodIndex } from './pods';
import { buildPolicies } from './policy-problem';
import { RATE_LIMIT, toRateLimit, withoutConflicts } from './rate-limits';
import { buildServiceIndex } from './services';
import { TRAFFIC_SPLIT, TRAFFIC_TARGET, toTrafficSplit, toTrafficTarget } from './smi-policies';
import type {
  GatewayClassStatus,
  GatewayStatus,
  MeshSnapshot,
  RouteStatus,
  SnapshotMesh,
  SnapshotProblem,
} from './types';

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
   * The status of every HTTPRoute or GRPCRoute with a parentRef of kind Service or to a Gateway of
   * this mesh's GatewayClass, sorted by namespace, name and kind: one entry per route, one parent
   * per such parentRef, in the route's order.
   */
  readonly routeStatuses: readonly RouteStatus[];
  /** What this mesh decides of each Gateway of its GatewayClass, sorted by namespace and name. */
  readonly gatewayStatuses: readonly GatewayStatus[];
  /** The status of each GatewayClass naming this mesh's controller, sorted by name. */
  readonly gatewayClassStatuses: readonly GatewayClassStatus[];
  /** The Secret of every served HTTPS listener, sorted by gateway and listener. */
  readonly gatewayCertificates: readonly GatewayCertificate[];
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
  const ingress = buildGateways(
    {
      gatewayClasses: state.gatewayClasses ?? [],
      gateways: state.gateways ?? [],
      httpRoutes: state.httpRoutes ?? [],
      referenceGrants: state.referenceGrants ?? [],
      tlsSecrets: state.tlsSecrets ?? [],
      namespaces: state.namespaces,
    },
    services.byKey,
    ignored,
    GATEWAY_CONTROLLER_NAME,
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
    gateways: sortedRecord(ingress.gateways),
    gatewayRoutes: sortedRecord(ingress.routes),
    peers: pods.peers(),
  };
  return {
    snapshot,
    problems: log.sorted(),
    warnings: [...warnings].sort(compareText),
    routeStatuses: mergeRouteStatuses(
      [...gamma.statuses, ...grpc.statuses, ...ingress.routeStatuses],
      state.httpRoutes ?? [],
    ),
    gatewayStatuses: ingress.gatewayStatuses,
    gatewayClassStatuses: ingress.classStatuses,
    gatewayCertificates: ingress.certificates,
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
