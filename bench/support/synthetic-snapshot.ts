// A mesh snapshot of a given size for benchmarks: services in ten namespaces, each with three
// endpoints on injected pods (also in peers, as the controller names them), an access rule per
// service, and a way to change one service per round, as an endpoint replaced during a rollout
// would: its pods and their peers change with it. On top of that, churn: the first service
// scaled by one or two pods, and a circuit breaker on it (a policy every sidecar renders).
import { emptySnapshot } from '../../src/manifests/snapshot/delta';
import type {
  MeshSnapshot,
  SnapshotCircuitBreaker,
  SnapshotPeer,
  SnapshotService,
  SnapshotTrafficTarget,
} from '../../src/manifests/snapshot/types';
import { DEFAULT_SNAPSHOT_MESH } from '../../src/manifests/snapshot/mesh-base';

const ENDPOINTS_PER_SERVICE = 3;

function address(service: number, endpoint: number, round: number): string {
  const n = service * ENDPOINTS_PER_SERVICE + endpoint + round * 7;
  return `198.18.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
}

/** What churn adds to a round's snapshot. */
export interface SnapshotChurn {
  /** Pods the first service has beyond its three, on addresses no other endpoint uses. */
  readonly addedEndpoints: number;
  /** A circuit breaker on the first service with this many errors (none when absent). */
  readonly breakerErrors?: number;
}

function serviceOf(index: number, round: number, added = 0): SnapshotService {
  const namespace = `ns-${index % 10}`;
  const name = `svc-${index}`;
  const extra = Array.from({ length: added }, (_, endpoint) => ({
    address: `198.18.251.${endpoint + 1}`,
    ports: { http: 8080, grpc: 9090 },
    pod: `${namespace}/${name}-added-${endpoint}`,
    identity: `${namespace}/${name}`,
  }));
  return {
    namespace,
    name,
    clusterIPs: [`198.19.${Math.floor(index / 250)}.${(index % 250) + 1}`],
    ports: [
      { name: 'http', port: 80, protocol: 'TCP', kind: 'http' },
      { name: 'grpc', port: 9090, protocol: 'TCP', kind: 'tcp' },
    ],
    endpoints: [
      ...Array.from({ length: ENDPOINTS_PER_SERVICE }, (_, endpoint) => ({
        address: address(index, endpoint, round),
        ports: { http: 8080, grpc: 9090 },
        pod: `${namespace}/${name}-${endpoint}-r${round}`,
        identity: `${namespace}/${name}`,
      })),
      ...extra,
    ],
  };
}

function breakerOn(service: SnapshotService, errors: number): SnapshotCircuitBreaker {
  return {
    namespace: service.namespace,
    name: `breaker-${service.name}`,
    service: `${service.namespace}/${service.name}`,
    errors,
    timeoutSeconds: 30,
  };
}

/**
 * A snapshot of count services; the service at index round % count has the endpoints of that
 * round (round 0 is the initial state), so snapshots of consecutive rounds differ by one service.
 * With churn, the first service also has its added endpoints and breaker: snapshots of the same
 * round differ by those alone.
 */
export function syntheticSnapshot(
  count: number,
  round = 0,
  churn: SnapshotChurn = { addedEndpoints: 0 },
): MeshSnapshot {
  const changed = round === 0 ? -1 : round % count;
  const services: Record<string, SnapshotService> = {};
  const trafficTargets: Record<string, SnapshotTrafficTarget> = {};
  const peers: Record<string, SnapshotPeer> = {};
  const circuitBreakers: Record<string, SnapshotCircuitBreaker> = {};
  for (let index = 0; index < count; index += 1) {
    const service = serviceOf(
      index,
      index === changed ? round : 0,
      index === 0 ? churn.addedEndpoints : 0,
    );
    const key = `${service.namespace}/${service.name}`;
    services[key] = service;
    for (const endpoint of service.endpoints) {
      peers[endpoint.address] = {
        pod: endpoint.pod ?? '',
        owner: `deployment/${service.name}`,
      };
    }
    trafficTargets[key] = {
      namespace: service.namespace,
      name: service.name,
      destination: key,
      sources: [`${service.namespace}/svc-${(index + 1) % count}`],
      httpMatches: [{ name: 'all', methods: ['*'], pathRegex: '/.*', headers: {} }],
      tcp: false,
    };
    if (index === 0 && churn.breakerErrors !== undefined) {
      const breaker = breakerOn(service, churn.breakerErrors);
      circuitBreakers[`${breaker.namespace}/${breaker.name}`] = breaker;
    }
  }
  const sorted = <T>(record: Record<string, T>): Record<string, T> =>
    Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    ...emptySnapshot({ ...DEFAULT_SNAPSHOT_MESH, mtlsMode: 'strict', accessControlMode: 'deny' }),
    services: sorted(services),
    trafficTargets: sorted(trafficTargets),
    peers: sorted(peers),
    circuitBreakers,
  };
}
