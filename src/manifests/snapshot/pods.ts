// Injected pods of the snapshot: who each one is (service account, addresses, owning workload),
// with indexes the policies resolve their Pod, Deployment, StatefulSet and DaemonSet references
// through, and the peers agents name their metrics' peers by. Pods that are not injected have no
// sidecar to configure and are left out. Pure.
import { podOwner } from '../admission';
import {
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
  OWNER_LABEL_PREFIX,
} from '../constants';
import {
  annotationsOf,
  arrayOf,
  keyOf,
  labelsOf,
  objectOf,
  refOf,
  sortedUnique,
  stringOf,
} from './kube-objects';
import type { KubeObject } from './kube-objects';
import type { SnapshotPeer, SnapshotPod } from './types';

/** Owner kinds the injector writes as nsm.nginx.com/<kind>, in the order they are preferred. */
const OWNER_LABEL_KINDS = [
  'deployment',
  'statefulset',
  'daemonset',
  'replicaset',
  'job',
  'cronjob',
  'pod',
] as const;
/** [kind, label key] of OWNER_LABEL_KINDS, computed once rather than per pod. */
const OWNER_LABELS: readonly (readonly [string, string])[] = OWNER_LABEL_KINDS.map(
  (kind) => [kind, `${OWNER_LABEL_PREFIX}${kind}`] as const,
);

/** Pods that finished; their addresses may already belong to other pods. */
const FINISHED_PHASES = new Set(['Succeeded', 'Failed']);

/** An injected pod with the strings endpoints share, computed once per pod. */
export interface InjectedPod {
  /** "<namespace>/<name>". */
  readonly key: string;
  /** "<namespace>/<service account>". */
  readonly identity: string;
  /** "<kind>/<name>" of the owning workload (kind lower case). */
  readonly owner: string;
}

/** The injected pods and the ways policies look them up. */
export interface PodIndex {
  /** The pod of that namespace and name; looks up by the strings as given, building none. */
  readonly find: (namespace: string, name: string) => InjectedPod | undefined;
  /** The pod with key "<namespace>/<name>", resolved in full. */
  readonly get: (key: string) => SnapshotPod | undefined;
  /** The pods of a workload, by workloadKey(); in no particular order. */
  readonly ofWorkload: (key: string) => readonly SnapshotPod[];
  /** Every pod resolved in full, by key, in no particular order. */
  readonly all: () => ReadonlyMap<string, SnapshotPod>;
  /**
   * Every address of a pod → that pod, keys sorted. Of two pods holding one address (a stale
   * status) the one first by key wins, so the result does not depend on input order.
   */
  readonly peers: () => Record<string, SnapshotPeer>;
}

/** Whether the injector marked this pod as carrying the sidecar. */
export function isInjected(pod: KubeObject): boolean {
  return annotationsOf(pod)[INJECTION_STATUS_ANNOTATION] === INJECTION_STATUS_INJECTED;
}

/**
 * What one pod object says, whatever the build: facts read once per object and kept while the
 * object lives. The controller's cache hands the builder the same object until the pod changes,
 * so a rebuild after a change reads only the pods that changed. The fields resolved on first use
 * (pod, ownerKey) depend on the object alone, so keeping them is safe.
 */
interface Entry extends InjectedPod {
  readonly object: KubeObject;
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  /** The full pod, resolved on first use: only policies naming pods or workloads need it. */
  pod?: SnapshotPod;
  /** workloadKey() of its owner, resolved on first use. */
  ownerKey?: string;
  /** What agents receive of this pod, built on first use. */
  peer?: SnapshotPeer;
}

/** Per pod object: its entry, or null when it is not an injected, unfinished pod. */
const entries = new WeakMap<KubeObject, Entry | null>();

function entryOf(object: KubeObject): Entry | undefined {
  let entry = entries.get(object);
  if (entry === undefined) {
    entry = toEntry(object) ?? null;
    entries.set(object, entry);
  }
  return entry ?? undefined;
}

const resolve = (entry: Entry): SnapshotPod => (entry.pod ??= toSnapshotPod(entry));

const peerOf = (entry: Entry): SnapshotPeer =>
  (entry.peer ??= { pod: entry.key, owner: entry.owner });

const ownerKeyOf = (entry: Entry): string => {
  entry.ownerKey ??= `${entry.namespace}/${entry.owner}`;
  return entry.ownerKey;
};

/**
 * Indexes every injected, unfinished pod outside the ignored namespaces, in one pass that only
 * reads what endpoints need (name and service account); addresses and owners are resolved for
 * the pods policies name, when they name them. Of two pods with one key (which the API server
 * never returns) the one that prints first as JSON wins, so the result does not depend on their
 * order. The workload index is built on first use.
 */
export function buildPodIndex(pods: readonly KubeObject[], ignored: ReadonlySet<string>): PodIndex {
  const byNamespace = new Map<string, Map<string, Entry>>();
  for (const object of pods) {
    const entry = entryOf(object);
    if (entry === undefined || ignored.has(entry.namespace)) continue;
    let names = byNamespace.get(entry.namespace);
    if (names === undefined) byNamespace.set(entry.namespace, (names = new Map<string, Entry>()));
    const existing = names.get(entry.name);
    if (existing !== undefined && JSON.stringify(object) >= JSON.stringify(existing.object))
      continue;
    names.set(entry.name, entry);
  }
  const byKey = (key: string): Entry | undefined => {
    const slash = key.indexOf('/');
    return slash < 0 ? undefined : byNamespace.get(key.slice(0, slash))?.get(key.slice(slash + 1));
  };
  let byOwner: Map<string, Entry[]> | undefined;
  const ownersIndex = (): Map<string, Entry[]> => {
    if (byOwner !== undefined) return byOwner;
    byOwner = new Map<string, Entry[]>();
    for (const names of byNamespace.values()) {
      for (const entry of names.values()) {
        const key = ownerKeyOf(entry);
        const list = byOwner.get(key);
        if (list === undefined) byOwner.set(key, [entry]);
        else list.push(entry);
      }
    }
    return byOwner;
  };
  return {
    find: (namespace, name) => byNamespace.get(namespace)?.get(name),
    get: (key) => {
      const entry = byKey(key);
      return entry === undefined ? undefined : resolve(entry);
    },
    ofWorkload: (key) => (ownersIndex().get(key) ?? []).map(resolve),
    all: () => {
      const all = new Map<string, SnapshotPod>();
      for (const names of byNamespace.values()) {
        for (const entry of names.values()) all.set(entry.key, resolve(entry));
      }
      return all;
    },
    peers: () => {
      const pairs: (readonly [string, SnapshotPeer])[] = [];
      for (const names of byNamespace.values()) {
        for (const entry of names.values()) {
          const peer = peerOf(entry);
          for (const ip of resolve(entry).ips) pairs.push([ip, peer]);
        }
      }
      return sortedPeers(pairs);
    },
  };
}

/**
 * The pairs as a record in address order, the first pod by key for an address named twice. One
 * sort of a list, then one pass: a cluster's pods are tens of thousands, and every build pays it.
 */
function sortedPeers(pairs: (readonly [string, SnapshotPeer])[]): Record<string, SnapshotPeer> {
  pairs.sort(([a, peerA], [b, peerB]) =>
    a < b ? -1 : a > b ? 1 : peerA.pod < peerB.pod ? -1 : peerA.pod > peerB.pod ? 1 : 0,
  );
  const record: Record<string, SnapshotPeer> = {};
  let last: string | undefined;
  for (const [ip, peer] of pairs) {
    if (ip !== last) record[ip] = peer;
    last = ip;
  }
  return record;
}

/** The byOwner key of a workload; kind in any case. */
export function workloadKey(namespace: string, kind: string, name: string): string {
  return `${namespace}/${kind.toLowerCase()}/${name}`;
}

function toEntry(object: KubeObject): Entry | undefined {
  if (!isInjected(object)) return undefined;
  const ref = refOf(object);
  if (ref === undefined) return undefined;
  if (FINISHED_PHASES.has(stringOf(objectOf(object.status).phase) ?? '')) return undefined;
  const spec = objectOf(object.spec);
  const serviceAccount =
    stringOf(spec.serviceAccountName) ?? stringOf(spec.serviceAccount) ?? 'default';
  const owner = ownerOf(object, ref.name);
  return {
    object,
    owner: `${owner.kind}/${owner.name}`,
    namespace: ref.namespace,
    name: ref.name,
    serviceAccount,
    key: keyOf(ref.namespace, ref.name),
    identity: keyOf(ref.namespace, serviceAccount),
  };
}

function toSnapshotPod(entry: Entry): SnapshotPod {
  const owner = ownerOf(entry.object, entry.name);
  return {
    namespace: entry.namespace,
    name: entry.name,
    serviceAccount: entry.serviceAccount,
    ips: podIps(objectOf(entry.object.status)),
    ownerKind: owner.kind,
    ownerName: owner.name,
  };
}

/** status.podIPs (dual stack), else status.podIP; sorted. */
function podIps(status: Readonly<Record<string, unknown>>): string[] {
  const listed: string[] = [];
  for (const entry of arrayOf(status.podIPs)) {
    const ip = stringOf(objectOf(entry).ip);
    if (ip !== undefined) listed.push(ip);
  }
  if (listed.length > 0) return listed.length === 1 ? listed : sortedUnique(listed);
  const single = stringOf(status.podIP);
  return single === undefined ? [] : [single];
}

/**
 * The owner the injector labelled the pod with; else its controller reference (a Deployment's
 * ReplicaSet names the Deployment); else the pod itself.
 */
function ownerOf(pod: KubeObject, podName: string): { kind: string; name: string } {
  const labels = labelsOf(pod);
  for (const [kind, label] of OWNER_LABELS) {
    const name = stringOf(labels[label]);
    if (name !== undefined) return { kind, name };
  }
  const owner = podOwner(pod);
  return owner.kind === '' || owner.name === '' ? { kind: 'pod', name: podName } : owner;
}

/** The key of a pod, for endpoints and policies. */
export function podKey(pod: SnapshotPod): string {
  return keyOf(pod.namespace, pod.name);
}
