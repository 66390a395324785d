// Snapshot build time: the controller's pure step from watched objects to the mesh snapshot, on
// synthetic clusters of 1,000 and 10,000 Services (3 injected pods behind each, one EndpointSlice
// each, about six policies per hundred Services), against the cost of merely copying the same
// state (JSON.parse(JSON.stringify(state))) in the same run. Also the snapshot's size as JSON and
// gzipped, which is what one full sync sends to every agent.
//
// Two builds are timed. "cold": every object is new to the builder (the controller's first build
// after it starts). "rebuild": one Service, its EndpointSlice and its pods changed since the last
// build, every other object is the one the builder saw before; this is what the controller does on
// every change, since its cache hands over the same object until that object changes, and the
// builder keeps what it read of each pod object and patches the indexes it built from the set of
// pods (the cold builds in between are a sequence of their own, which does not evict them).
// Target: 10,000 Services in < 100 ms.
import { gzipSync } from 'node:zlib';
import { buildSnapshot } from '../src/manifests/snapshot/build';
import type { ClusterState } from '../src/manifests/snapshot/build';
import { syntheticClusterState, syntheticSnapshotSettings } from './support/synthetic-cluster';
import type { Target } from './support/targets.mjs';
import { targetLine } from './support/targets.mjs';

const SIZES = [1_000, 10_000] as const;
const ENDPOINTS_PER_SERVICE = 3;
const ROUNDS = 9;
const TARGET_MS_10000: Target = { how: '<', limit: 100 };

interface Measurement {
  readonly services: number;
  readonly buildMs: number;
  readonly rebuildMs: number;
  readonly copyMs: number;
  readonly bytes: number;
  readonly gzipBytes: number;
  readonly problems: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function time(run: () => unknown): number {
  const started = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const fresh = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** state with Service k, its EndpointSlice and its pods replaced by new, equal objects. */
function changedOne(state: ClusterState, k: number): ClusterState {
  const renew = (list: readonly ClusterState['services'][number][], owner: (j: number) => number) =>
    list.map((object, j) => (owner(j) === k ? fresh(object) : object));
  return {
    ...state,
    services: renew(state.services, (j) => j),
    endpointSlices: renew(state.endpointSlices, (j) => j),
    pods: renew(state.pods, (j) => Math.floor(j / ENDPOINTS_PER_SERVICE)),
  };
}

function measure(services: number): Measurement {
  const state: ClusterState = syntheticClusterState(services, ENDPOINTS_PER_SERVICE);
  const settings = syntheticSnapshotSettings();
  const build = () => buildSnapshot(state, settings);
  const copy = () => JSON.parse(JSON.stringify(state)) as unknown;
  // Warm up both paths, then interleave rounds so machine noise hits both alike.
  build();
  copy();
  const buildMs: number[] = [];
  const rebuildMs: number[] = [];
  const copyMs: number[] = [];
  let current = state;
  for (let round = 0; round < ROUNDS; round += 1) {
    copyMs.push(time(copy));
    const cold = fresh(state);
    buildMs.push(time(() => buildSnapshot(cold, settings)));
    current = changedOne(current, (round * 7_919) % services);
    const next = current;
    rebuildMs.push(time(() => buildSnapshot(next, settings)));
  }
  const outcome = build();
  const meshed = Object.values(outcome.snapshot.services).reduce(
    (sum, service) => sum + service.endpoints.filter((each) => each.identity !== undefined).length,
    0,
  );
  if (meshed !== services * ENDPOINTS_PER_SERVICE)
    throw new Error(`expected every endpoint meshed, got ${meshed}`);
  const text = JSON.stringify(outcome.snapshot);
  return {
    services,
    buildMs: median(buildMs),
    rebuildMs: median(rebuildMs),
    copyMs: median(copyMs),
    bytes: Buffer.byteLength(text),
    gzipBytes: gzipSync(text).length,
    problems: outcome.problems.length,
  };
}

const results = SIZES.map(measure);
console.log(
  `snapshot: build from ${ENDPOINTS_PER_SERVICE} injected pods per Service, median of ${ROUNDS} rounds, Node ${process.versions.node}`,
);
for (const result of results) {
  const ratio = result.buildMs / result.copyMs;
  console.log(
    `  ${String(result.services).padStart(6)} Services  copy state ${result.copyMs.toFixed(1)} ms  cold build ${result.buildMs.toFixed(1)} ms (${ratio.toFixed(2)}x copy)  rebuild after one change ${result.rebuildMs.toFixed(1)} ms (${(result.rebuildMs / result.copyMs).toFixed(2)}x copy)  snapshot ${(result.bytes / 1e6).toFixed(2)} MB, gzip ${(result.gzipBytes / 1e6).toFixed(2)} MB  problems ${result.problems}`,
  );
}
const large = results[1] as Measurement;
for (const result of results) {
  console.log(`snapshot_build_ms_${result.services}_services ${result.buildMs.toFixed(1)} ms`);
  console.log(`snapshot_rebuild_ms_${result.services}_services ${result.rebuildMs.toFixed(1)} ms`);
  console.log(`snapshot_copy_ms_${result.services}_services ${result.copyMs.toFixed(1)} ms`);
  console.log(
    `snapshot_ratio_to_copy_${result.services}_services ${(result.buildMs / result.copyMs).toFixed(2)} x`,
  );
  console.log(`snapshot_bytes_${result.services}_services ${result.bytes} bytes`);
  console.log(`snapshot_gzip_bytes_${result.services}_services ${result.gzipBytes} bytes`);
}
// The target is the rebuild after one change; the cold build is held to it for comparison.
console.log(
  targetLine(`snapshot_rebuild_ms_${large.services}_services`, large.rebuildMs, TARGET_MS_10000, 1),
);
console.log(
  targetLine(`snapshot_build_ms_${large.services}_services`, large.buildMs, TARGET_MS_10000, 1),
);
