// Snapshot deltas: the controller sends each agent only the entries that changed since the
// generation the agent holds, not the whole mesh, so a change to one Service costs bytes in
// proportion to that Service and not to the mesh. Entries are compared by canonical JSON (keys
// sorted at every depth), so two builds of the same state never produce a spurious change.
import { compareCodePoints, sortKeysDeep } from '../inject/json';
import type { MeshSnapshot, SnapshotCollection, SnapshotMesh } from './types';
import { SNAPSHOT_COLLECTIONS, UNRENDERED_COLLECTIONS } from './types';

/** What turns the snapshot of generation `base` into the snapshot of generation `generation`. */
export interface SnapshotDelta {
  readonly generation: number;
  /** The generation this delta applies to; an agent holding another one asks for a full copy. */
  readonly base: number;
  /** The new mesh-wide settings, only when they changed. */
  readonly mesh?: SnapshotMesh;
  /** Entries added or changed, whole, by collection and key. */
  readonly upserts: Partial<Record<SnapshotCollection, Record<string, unknown>>>;
  /** Keys removed, by collection, sorted. */
  readonly deletes: Partial<Record<SnapshotCollection, readonly string[]>>;
}

/** The JSON text of value with object keys sorted at every depth: equal data, equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeysDeep(value));
}

/**
 * Equal by canonical JSON. Snapshots are built with sorted keys, so plain JSON text usually
 * decides at native speed; only entries whose text differs pay for sorting their keys.
 */
function sameEntry(a: unknown, b: unknown): boolean {
  return (
    a === b || JSON.stringify(a) === JSON.stringify(b) || canonicalJson(a) === canonicalJson(b)
  );
}

/**
 * Whether a delta can change a sidecar's nginx configuration: it changes the mesh settings or a
 * collection the renderer reads. A pod starting or stopping changes only peers, which it does not.
 */
export function changesRendering(delta: SnapshotDelta): boolean {
  if (delta.mesh !== undefined) return true;
  const touched = [...Object.keys(delta.upserts), ...Object.keys(delta.deletes)];
  return touched.some(
    (collection) => !UNRENDERED_COLLECTIONS.has(collection as SnapshotCollection),
  );
}

/** A snapshot with the given mesh settings and no entries: what an agent holds before any. */
export function emptySnapshot(mesh: SnapshotMesh): MeshSnapshot {
  return {
    mesh,
    services: {},
    trafficTargets: {},
    trafficSplits: {},
    rateLimits: {},
    circuitBreakers: {},
    httpRoutes: {},
    grpcRoutes: {},
    gateways: {},
    gatewayRoutes: {},
    peers: {},
  };
}

/**
 * The delta from previous (generation base) to next (generation generation). Applying it to
 * previous gives a snapshot whose canonical JSON equals next's.
 */
export function diffSnapshots(
  previous: MeshSnapshot,
  next: MeshSnapshot,
  base: number,
  generation: number,
): SnapshotDelta {
  const upserts: Partial<Record<SnapshotCollection, Record<string, unknown>>> = {};
  const deletes: Partial<Record<SnapshotCollection, readonly string[]>> = {};
  for (const collection of SNAPSHOT_COLLECTIONS) {
    const before = previous[collection] as Readonly<Record<string, unknown>>;
    const after = next[collection] as Readonly<Record<string, unknown>>;
    const changed: Record<string, unknown> = {};
    for (const key of Object.keys(after).sort(compareCodePoints)) {
      const entry = after[key];
      if (!(key in before) || !sameEntry(before[key], entry)) {
        changed[key] = entry;
      }
    }
    const removed = Object.keys(before)
      .filter((key) => !(key in after))
      .sort(compareCodePoints);
    if (Object.keys(changed).length > 0) upserts[collection] = changed;
    if (removed.length > 0) deletes[collection] = removed;
  }
  const meshChanged = !sameEntry(previous.mesh, next.mesh);
  return { generation, base, ...(meshChanged ? { mesh: next.mesh } : {}), upserts, deletes };
}

/** True when the delta changes nothing. */
export function isEmptyDelta(delta: SnapshotDelta): boolean {
  return (
    delta.mesh === undefined &&
    SNAPSHOT_COLLECTIONS.every(
      (collection) =>
        Object.keys(delta.upserts[collection] ?? {}).length === 0 &&
        (delta.deletes[collection] ?? []).length === 0,
    )
  );
}

/**
 * snapshot with the delta's deletes and upserts applied; every collection's keys stay sorted, so
 * the result prints as the controller's own snapshot does. The delta's base is not checked here:
 * the caller decides whether it holds that generation.
 */
export function applyDelta(snapshot: MeshSnapshot, delta: SnapshotDelta): MeshSnapshot {
  const result: Record<string, unknown> = { mesh: delta.mesh ?? snapshot.mesh };
  for (const collection of SNAPSHOT_COLLECTIONS) {
    const upserts = delta.upserts[collection] ?? {};
    const deletes = delta.deletes[collection] ?? [];
    const current = snapshot[collection] as Readonly<Record<string, unknown>>;
    if (Object.keys(upserts).length === 0 && deletes.length === 0) {
      result[collection] = current;
      continue;
    }
    result[collection] = mergeEntries(current, upserts, deletes);
  }
  return result as unknown as MeshSnapshot;
}

/**
 * current with upserts written over it and deletes removed, keys in code-point order. A
 * snapshot's keys are sorted, so the few new keys are merged into them in one pass (a delta to
 * a big collection costs no sort of it); keys that arrived unsorted are sorted.
 */
function mergeEntries(
  current: Readonly<Record<string, unknown>>,
  upserts: Readonly<Record<string, unknown>>,
  deletes: readonly string[],
): Record<string, unknown> {
  const removed = new Set(deletes);
  const kept = Object.keys(current);
  const added = Object.keys(upserts)
    .filter((key) => !Object.hasOwn(current, key))
    .sort(compareCodePoints);
  if (!isSorted(kept)) {
    kept.push(...added);
    kept.sort(compareCodePoints);
    added.length = 0;
  }
  const merged: Record<string, unknown> = {};
  const put = (key: string): void => {
    if (!removed.has(key)) merged[key] = Object.hasOwn(upserts, key) ? upserts[key] : current[key];
  };
  let next = 0;
  for (const key of kept) {
    while (next < added.length && compareCodePoints(added[next] as string, key) < 0) {
      put(added[next] as string);
      next += 1;
    }
    put(key);
  }
  for (; next < added.length; next += 1) put(added[next] as string);
  return merged;
}

function isSorted(keys: readonly string[]): boolean {
  for (let index = 1; index < keys.length; index += 1) {
    if ((keys[index - 1] as string) >= (keys[index] as string)) return false;
  }
  return true;
}

/** A snapshot its holder may change in place (an agent's own copy, parsed from the wire). */
export type MutableSnapshot = {
  mesh: SnapshotMesh;
} & { [C in SnapshotCollection]: Record<string, MeshSnapshot[C][string]> };

/**
 * Applies the delta to snapshot itself and returns it: the cost is the size of the delta, not of
 * the mesh, where applyDelta copies every collection the delta touches. New keys go last, so key
 * order is no longer sorted; the sidecar's renderer sorts what it reads, so its output does not
 * depend on that order. Only for a snapshot nobody else holds.
 */
export function applyDeltaInPlace(
  snapshot: MutableSnapshot,
  delta: SnapshotDelta,
): MutableSnapshot {
  if (delta.mesh !== undefined) snapshot.mesh = delta.mesh;
  for (const collection of SNAPSHOT_COLLECTIONS) {
    const entries = snapshot[collection] as Record<string, unknown>;
    for (const key of delta.deletes[collection] ?? []) delete entries[key];
    const upserts = delta.upserts[collection];
    if (upserts !== undefined) Object.assign(entries, upserts);
  }
  return snapshot;
}
