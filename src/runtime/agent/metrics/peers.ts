// Who a request's peer is, in the words of the metrics' labels: the pods and workloads of the
// latest snapshot the agent applied, found by address (the snapshot's peers: every meshed pod,
// whether or not it backs a Service; then, for a controller that sends no peers, the endpoints'
// pods) or, for a peer the snapshot does not know, by the namespace in its SPIFFE ID. Pure.
import {
  METRIC_DESTINATION_PREFIX,
  METRIC_DIRECTION_INBOUND,
  METRIC_DIRECTION_OUTBOUND,
  EGRESS_SERVICE,
  METRIC_FAILURE_CODE,
  METRIC_LABEL_CODE,
  METRIC_LABEL_DIRECTION,
  METRIC_LABEL_NAMESPACE,
  METRIC_LABEL_POD,
  METRIC_OWNER_LABELS,
  METRIC_SOURCE_PREFIX,
} from '../../../manifests/constants';
import type { MeshSnapshot } from '../../../manifests/snapshot/types';
import type { StatsKey } from './stats';
import { lastUpstreamHost } from './stats';

/** Label name → value, in the order they are printed. */
export type Labels = readonly (readonly [string, string])[];

/** A pod of the mesh as its address names it. */
interface PeerPod {
  readonly namespace: string;
  readonly name: string;
  /** Owner kind (lower case) and name, when the snapshot knows them. */
  readonly ownerKind?: string;
  readonly ownerName?: string;
}

/** Addresses of the snapshot's meshed pods → those pods. */
export type PeerIndex = ReadonlyMap<string, PeerPod>;

const OWNER_KINDS: ReadonlySet<string> = new Set(METRIC_OWNER_LABELS);

/**
 * Every address of the snapshot's peers, then every endpoint address that belongs to a pod and
 * is no peer (all of them, from a controller that sends no peers); of an endpoint address named
 * twice the first by Service key wins.
 */
export function buildPeerIndex(snapshot: MeshSnapshot): PeerIndex {
  const index = new Map<string, PeerPod>();
  for (const address of Object.keys(snapshot.peers)) {
    const peer = snapshot.peers[address];
    if (peer !== undefined) index.set(address, toPeerPod(peer.pod, peer.owner));
  }
  for (const key of Object.keys(snapshot.services).sort()) {
    for (const endpoint of snapshot.services[key]?.endpoints ?? []) {
      if (endpoint.pod === undefined || index.has(endpoint.address)) continue;
      index.set(endpoint.address, toPeerPod(endpoint.pod, endpoint.owner));
    }
  }
  return index;
}

/** A pod from "<namespace>/<name>" and an optional owner "<kind>/<name>". */
function toPeerPod(pod: string, owner = ''): PeerPod {
  const slash = pod.indexOf('/');
  const ownerSlash = owner.indexOf('/');
  return {
    namespace: pod.slice(0, slash),
    name: pod.slice(slash + 1),
    ...(ownerSlash < 0
      ? {}
      : { ownerKind: owner.slice(0, ownerSlash), ownerName: owner.slice(ownerSlash + 1) }),
  };
}

/** The namespace of a SPIFFE ID spiffe://<trust domain>/ns/<namespace>/sa/<account>, or ''. */
function namespaceOfSpiffeId(id: string): string {
  const match = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(id);
  return match?.[1] ?? '';
}

/** "2xx" for 200 to 299. */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

/**
 * The class a request counts in: its HTTP status's, except that a gRPC call that ended with a
 * status other than OK (0) is a failure, METRIC_FAILURE_CODE, whatever HTTP said (gRPC answers
 * 200 and reports errors in grpc-status).
 */
export function requestClass(status: number, grpcStatus: string): string {
  if (grpcStatus !== '' && grpcStatus !== '0') return METRIC_FAILURE_CODE;
  return statusClass(status);
}

function peerLabels(
  prefix: string,
  namespace: string,
  pod: PeerPod | undefined,
): [string, string][] {
  const labels: [string, string][] = [
    [`${prefix}${METRIC_LABEL_NAMESPACE}`, pod?.namespace ?? namespace],
    [`${prefix}${METRIC_LABEL_POD}`, pod?.name ?? ''],
  ];
  if (pod?.ownerKind !== undefined && OWNER_KINDS.has(pod.ownerKind))
    labels.push([`${prefix}${pod.ownerKind}`, pod.ownerName ?? '']);
  return labels;
}

/**
 * The labels of a record's series: direction, status class, then the peer's (src_* inbound,
 * dst_* and dst_service outbound). A peer the snapshot does not know keeps empty labels.
 */
export function labelsOf(record: StatsKey, peers: PeerIndex): Labels {
  const common: [string, string][] = [
    [METRIC_LABEL_CODE, requestClass(record.status, record.grpcStatus)],
  ];
  if (record.direction === 'inbound') {
    return [
      [METRIC_LABEL_DIRECTION, METRIC_DIRECTION_INBOUND],
      ...common,
      ...peerLabels(
        METRIC_SOURCE_PREFIX,
        namespaceOfSpiffeId(record.peerId),
        peers.get(record.peer),
      ),
    ];
  }
  const slash = record.service.indexOf('/');
  const serviceNamespace = slash < 0 ? '' : record.service.slice(0, slash);
  // Traffic that left the mesh names no pod, even when its address is one's on another port.
  const host =
    record.upstream === '' || record.service === EGRESS_SERVICE
      ? ''
      : lastUpstreamHost(record.upstream);
  return [
    [METRIC_LABEL_DIRECTION, METRIC_DIRECTION_OUTBOUND],
    ...common,
    ...peerLabels(METRIC_DESTINATION_PREFIX, serviceNamespace, peers.get(host)),
    [`${METRIC_DESTINATION_PREFIX}service`, record.service.slice(slash + 1)],
  ];
}

/** The status classes every HTTP edge reports from its first request on: success and failure. */
export const SEEDED_CLASSES: readonly string[] = ['2xx', METRIC_FAILURE_CODE];

/**
 * The same label set in the other seeded status classes (SEEDED_CLASSES): the series an HTTP
 * edge keeps at zero from its first request, so that its first failure (or first success after
 * failures) counts in Prometheus's increase() and rate().
 */
export function classSiblings(labels: Labels): Labels[] {
  const code = labels.find(([name]) => name === METRIC_LABEL_CODE)?.[1];
  if (code === undefined) return [];
  return SEEDED_CLASSES.filter((seeded) => seeded !== code).map((seeded) =>
    labels.map(([name, value]): readonly [string, string] =>
      name === METRIC_LABEL_CODE ? [name, seeded] : [name, value],
    ),
  );
}

/** The value of every peer label in the overflow series. */
export const OVERFLOW_LABEL_VALUE = '_other';

/**
 * The series a record joins once the registry holds as many as it may: direction and status
 * class kept, every peer label `_other`, owner labels dropped, so that one series per direction
 * and class takes the rest.
 */
export function overflowLabels(labels: Labels): Labels {
  return labels.flatMap(([name, value]): (readonly [string, string])[] => {
    if (name === METRIC_LABEL_DIRECTION || name === METRIC_LABEL_CODE) return [[name, value]];
    const bare = name.startsWith(METRIC_SOURCE_PREFIX)
      ? name.slice(METRIC_SOURCE_PREFIX.length)
      : name.slice(METRIC_DESTINATION_PREFIX.length);
    return OWNER_KINDS.has(bare) ? [] : [[name, OVERFLOW_LABEL_VALUE]];
  });
}
