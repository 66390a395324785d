// Sidecar configuration render time: a mesh of 2,000 Services with three meshed endpoints each
// and 300 policies (splits, targets under deny, rate limits), rendered in-process. The baseline
// in the same run is JSON.stringify of the same snapshot (the cost of merely walking and
// printing the input); the ratio says how many baselines one render costs.
import { renderSidecarConfig } from '../src/render/sidecar';
import { largeSnapshot, shopContext } from '../test/support/sidecar-snapshots';

const SERVICES = 2_000;
const POLICIES = 300;
const ROUNDS = 7;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function time(run: () => unknown): number {
  const started = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const snapshot = largeSnapshot(SERVICES, POLICIES);
const context = shopContext();
const text = renderSidecarConfig(snapshot, context).text;
JSON.stringify(snapshot);
const renderMs: number[] = [];
const baselineMs: number[] = [];
for (let round = 0; round < ROUNDS; round += 1) {
  baselineMs.push(time(() => JSON.stringify(snapshot)));
  renderMs.push(time(() => renderSidecarConfig(snapshot, context)));
}
const ratio = median(renderMs) / median(baselineMs);
console.log(
  `sidecar render: ${SERVICES} services x 3 endpoints + ${POLICIES} policies, median of ${ROUNDS} rounds, Node ${process.versions.node}`,
);
console.log(`  JSON.stringify(snapshot)  ${median(baselineMs).toFixed(1)} ms`);
console.log(`  renderSidecarConfig       ${median(renderMs).toFixed(1)} ms  ${ratio.toFixed(1)}x`);
console.log(`sidecar_render_ms_2000_services ${median(renderMs).toFixed(1)} ms`);
console.log(`sidecar_config_bytes_2000_services ${Buffer.byteLength(text)} bytes`);
console.log(`sidecar_render_ratio_to_json_stringify ${ratio.toFixed(1)} x`);
