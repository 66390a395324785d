// Injected pods of the snapshot: who each one is (service account, addresses, owning workload),
// with indexes the policies resolve their Pod, Deployment, StatefulSet and DaemonSet references
// through, and the peers agents name their metrics' peers by. Pods that are not injected have no
// sidecar to configure and are left out. Pure.
import { podOwner } from '../admission';
import { GATEWAY_MANAGED_LABEL } from '../gateway/workload';
import {
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
  OWNER_LABEL_PREFIX,
} from '../constants';
import {
  annotationsOf,
  arrayOf,
  compareText,
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
  let step: BuildStep | undefined;
  const stepOf = (): BuildStep => (step ??= startStep(byNamespace));
  const ownersIndex = (): ReadonlyMap<string, readonly Entry[]> => {
    const { last, next, changes } = stepOf();
    next.byOwner ??=
      changes !== undefined && last?.byOwner !== undefined
        ? patchOwners(last.byOwner, changes)
        : freshOwners(next.entries);
    return next.byOwner;
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
      const { last, next, changes } = stepOf();
      next.peers ??=
        changes !== undefined && last?.peers !== undefined
          ? patchPeers(last.peers, changes)
          : freshPeers(next.entries);
      return next.peers.record;
    },
  };
}

/**
 * What a build derived from its set of entries, kept so that the next build redoes only the pods
 * that changed: a cluster's pods are tens of thousands, and one Service's rollout changes a
 * handful. The peers record handed out is never changed afterwards (the controller diffs it
 * against the next); the indexes are owned by the memo and patched in place by the next build.
 */
interface PodSetMemo {
  readonly entries: ReadonlySet<Entry>;
  peers?: PeersState;
  /** ownerKeyOf() → the entries of that workload, in no particular order. */
  byOwner?: Map<string, Entry[]>;
}

interface PeersState {
  /** Every address → the entries holding it (one, unless a status is stale). */
  readonly holders: Map<string, Entry[]>;
  /** Every address of the record, in its key order. */
  readonly ips: string[];
  readonly record: Record<string, SnapshotPeer>;
}

/** The entries one build has and the build before it in its sequence did not, and the reverse. */
interface Changes {
  readonly added: readonly Entry[];
  readonly removed: readonly Entry[];
}

/** One build against the memo of the sequence it continues. */
interface BuildStep {
  readonly last: PodSetMemo | undefined;
  readonly next: PodSetMemo;
  /** Set when patching last's indexes is cheaper than building them afresh. */
  readonly changes: Changes | undefined;
}

/**
 * The memos of the last builds, newest first. The controller builds one sequence, each build
 * from the last; another sequence in the same process (a cold build, a test) gets a memo of its
 * own rather than evicting the controller's.
 */
let memos: PodSetMemo[] = [];
const MEMOS_KEPT = 2;
/** Beyond the first 16 entries, every so many is sampled to find which sequence a build continues. */
const SAMPLE_STRIDE = 997;
/** Share of changed entries beyond which building afresh is cheaper than patching. */
const PATCH_LIMIT = 0.25;

/** The memo that holds most of the sampled entries: the build sequence this one continues. */
function memoOf(sample: readonly Entry[]): PodSetMemo | undefined {
  let best: PodSetMemo | undefined;
  let bestHits = 0;
  for (const memo of memos) {
    const hits = sample.filter((entry) => memo.entries.has(entry)).length;
    if (hits > bestHits) {
      best = memo;
      bestHits = hits;
    }
  }
  return best;
}

/** This build's entries, what changed since the memo it continues, and its own memo (kept). */
function startStep(byNamespace: ReadonlyMap<string, ReadonlyMap<string, Entry>>): BuildStep {
  const current = new Set<Entry>();
  const sample: Entry[] = [];
  for (const names of byNamespace.values()) {
    for (const entry of names.values()) {
      if (current.size < 16 || current.size % SAMPLE_STRIDE === 0) sample.push(entry);
      current.add(entry);
    }
  }
  const last = memoOf(sample);
  const changes = last === undefined ? undefined : changedEntries(last, current);
  const count = changes === undefined ? 0 : changes.added.length + changes.removed.length;
  // The same entries: the same memo, indexes and all. Otherwise the last memo's indexes belong
  // to this build from now on, which may patch them.
  const next: PodSetMemo = last !== undefined && count === 0 ? last : { entries: current };
  memos = [next, ...memos.filter((memo) => memo !== last && memo !== next)].slice(0, MEMOS_KEPT);
  const patchable = changes !== undefined && count <= current.size * PATCH_LIMIT;
  return { last, next, changes: patchable ? changes : undefined };
}

/** The entries of current the last memo did not have, and those it had that current lacks. */
function changedEntries(last: PodSetMemo, current: ReadonlySet<Entry>): Changes {
  const added: Entry[] = [];
  for (const entry of current) if (!last.entries.has(entry)) added.push(entry);
  const removed: Entry[] = [];
  if (current.size - added.length !== last.entries.size) {
    for (const entry of last.entries) if (!current.has(entry)) removed.push(entry);
  }
  return { added, removed };
}

/** Removes entry from the list under key, dropping the key with its last entry. */
function removeFrom(index: Map<string, Entry[]>, key: string, entry: Entry): void {
  const list = index.get(key)?.filter((held) => held !== entry) ?? [];
  if (list.length === 0) index.delete(key);
  else index.set(key, list);
}

function addTo(index: Map<string, Entry[]>, key: string, entry: Entry): void {
  const list = index.get(key);
  if (list === undefined) index.set(key, [entry]);
  else list.push(entry);
}

function freshOwners(entries: ReadonlySet<Entry>): Map<string, Entry[]> {
  const byOwner = new Map<string, Entry[]>();
  for (const entry of entries) addTo(byOwner, ownerKeyOf(entry), entry);
  return byOwner;
}

function patchOwners(byOwner: Map<string, Entry[]>, changes: Changes): Map<string, Entry[]> {
  for (const entry of changes.removed) removeFrom(byOwner, ownerKeyOf(entry), entry);
  for (const entry of changes.added) addTo(byOwner, ownerKeyOf(entry), entry);
  return byOwner;
}

/** Of the entries holding one address, the first by key; undefined for none. */
function winnerOf(list: readonly Entry[] | undefined): Entry | undefined {
  let winner: Entry | undefined;
  for (const entry of list ?? [])
    if (winner === undefined || entry.key < winner.key) winner = entry;
  return winner;
}

/** The peer to publish for winner, reusing before (the last record's) when it says the same. */
function samePeerAs(winner: Entry, before: SnapshotPeer | undefined): SnapshotPeer {
  const peer = peerOf(winner);
  if (before !== undefined && before.pod === peer.pod && before.owner === peer.owner) {
    winner.peer = before;
    return before;
  }
  return peer;
}

/** Where ip is, or would be inserted, in the sorted ips. */
function indexOfIp(ips: readonly string[], ip: string): number {
  let low = 0;
  let high = ips.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((ips[middle] ?? '') < ip) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The touched addresses whose peer differs from the last record's (undefined: gone), keeping
 * ips sorted as addresses come and go; keysChanged when any did.
 */
function changedPeers(
  last: PeersState,
  touched: ReadonlySet<string>,
): { changed: Map<string, SnapshotPeer | undefined>; keysChanged: boolean } {
  const changed = new Map<string, SnapshotPeer | undefined>();
  let keysChanged = false;
  for (const ip of touched) {
    const before = Object.hasOwn(last.record, ip) ? last.record[ip] : undefined;
    const winner = winnerOf(last.holders.get(ip));
    const peer = winner === undefined ? undefined : samePeerAs(winner, before);
    if (peer === before) continue;
    if (peer === undefined) last.ips.splice(indexOfIp(last.ips, ip), 1);
    else if (before === undefined) last.ips.splice(indexOfIp(last.ips, ip), 0, ip);
    keysChanged ||= peer === undefined || before === undefined;
    changed.set(ip, peer);
  }
  return { changed, keysChanged };
}

/**
 * Every address of the entries → its winner's peer, keys in address order, from the last build's
 * state: only the addresses of the changed entries are looked at again.
 */
function patchPeers(last: PeersState, { added, removed }: Changes): PeersState {
  const { holders, ips } = last;
  const touched = new Set<string>();
  for (const entry of removed) {
    for (const ip of resolve(entry).ips) {
      removeFrom(holders, ip, entry);
      touched.add(ip);
    }
  }
  for (const entry of added) {
    for (const ip of resolve(entry).ips) {
      addTo(holders, ip, entry);
      touched.add(ip);
    }
  }
  const { changed, keysChanged } = changedPeers(last, touched);
  if (changed.size === 0) return last;
  const record: Record<string, SnapshotPeer> = {};
  if (keysChanged) {
    for (const ip of ips) {
      const peer = changed.has(ip) ? changed.get(ip) : last.record[ip];
      if (peer !== undefined) record[ip] = peer;
    }
  } else {
    Object.assign(record, last.record);
    for (const [ip, peer] of changed) if (peer !== undefined) record[ip] = peer;
  }
  return { holders, ips, record };
}

/**
 * The record built from nothing, in address order, the first pod by key for an address named
 * twice: one sort of the pairs, then one pass.
 */
function freshPeers(current: ReadonlySet<Entry>): PeersState {
  const pairs: (readonly [string, Entry])[] = [];
  for (const entry of current) for (const ip of resolve(entry).ips) pairs.push([ip, entry]);
  pairs.sort(
    ([a, entryA], [b, entryB]) => compareText(a, b) || compareText(entryA.key, entryB.key),
  );
  const holders = new Map<string, Entry[]>();
  const ips: string[] = [];
  const record: Record<string, SnapshotPeer> = {};
  for (const [ip, entry] of pairs) {
    const list = holders.get(ip);
    if (list !== undefined) {
      list.push(entry);
      continue;
    }
    holders.set(ip, [entry]);
    ips.push(ip);
    record[ip] = peerOf(entry);
  }
  return { holders, ips, record };
}

/** The byOwner key of a workload; kind in any case. */
export function workloadKey(namespace: string, kind: string, name: string): string {
  return `${namespace}/${kind.toLowerCase()}/${name}`;
}

/**
 * A gateway's pod carries the mesh's proxy but serves plaintext (or its listeners' own TLS) to
 * clients: it is no meshed endpoint, and its clients must not speak mTLS to it.
 */
function isGatewayPod(object: KubeObject): boolean {
  return object.metadata?.labels?.[GATEWAY_MANAGED_LABEL] !== undefined;
}

function toEntry(object: KubeObject): Entry | undefined {
  if (!isInjected(object) || isGatewayPod(object)) return undefined;
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
