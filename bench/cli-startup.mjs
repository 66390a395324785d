// CLI start-up: median wall time of `nginx-meshctl version` and `nginx-meshctl --help` against
// `node -e 0` of the Node the executable embeds, measured in the same run, interleaved so that
// machine noise hits all three alike. Target: at most 1.3x the baseline for both.
//
// The executable runs from an empty directory with an empty HOME and no KUBECONFIG, as on a
// workstation without a cluster: `version` then answers from the client alone.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 40);
const WARMUP = 5;
const TARGET_RATIO = 1.3;

const build = spawnSync(
  process.execPath,
  [join(root, 'scripts', 'build-binary.mjs'), '--if-stale'],
  {
    stdio: 'inherit',
  },
);
if (build.status !== 0) process.exit(1);

const dir = mkdtempSync(join(tmpdir(), 'meshctl-bench-'));
const home = join(dir, 'home');
mkdirSync(home);
const binary = join(dir, 'nginx-meshctl');
copyFileSync(join(root, 'dist', 'nginx-meshctl'), binary);
const env = { PATH: '/usr/bin:/bin', HOME: home };

const subjects = [
  { figure: 'node_e0', label: 'node -e 0', command: process.execPath, args: ['-e', '0'] },
  { figure: 'version', label: 'nginx-meshctl version', command: binary, args: ['version'] },
  { figure: 'help', label: 'nginx-meshctl --help', command: binary, args: ['--help'] },
];

function timeOnce(subject) {
  const started = process.hrtime.bigint();
  const result = spawnSync(subject.command, subject.args, { cwd: dir, env, stdio: 'ignore' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${subject.label} exited ${result.status}`);
  return ms;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

try {
  for (let i = 0; i < WARMUP; i += 1) for (const subject of subjects) timeOnce(subject);
  const samples = new Map(subjects.map((subject) => [subject.figure, []]));
  for (let i = 0; i < RUNS; i += 1) {
    for (const subject of subjects) samples.get(subject.figure).push(timeOnce(subject));
  }
  const medians = new Map(subjects.map((s) => [s.figure, median(samples.get(s.figure))]));
  const baseline = medians.get('node_e0');
  const sizeMiB = statSync(binary).size / (1024 * 1024);

  console.log(
    `cli-startup: median wall time of ${RUNS} interleaved runs each, Node ${process.versions.node}`,
  );
  for (const subject of subjects) {
    const value = medians.get(subject.figure);
    const ratio = subject.figure === 'node_e0' ? '' : `  ${(value / baseline).toFixed(2)}x`;
    console.log(`  ${subject.label.padEnd(24)} ${value.toFixed(1).padStart(7)} ms${ratio}`);
  }
  const ratios = subjects.slice(1).map((s) => medians.get(s.figure) / baseline);
  const met = ratios.every((ratio) => ratio <= TARGET_RATIO);
  console.log(`  executable size ${sizeMiB.toFixed(1)} MiB`);
  console.log(`  target <= ${TARGET_RATIO}x for both: ${met ? 'met' : 'NOT met'}`);
  console.log(`cli_startup_node_e0_ms ${baseline.toFixed(1)} ms`);
  console.log(`cli_startup_version_ms ${medians.get('version').toFixed(1)} ms`);
  console.log(`cli_startup_help_ms ${medians.get('help').toFixed(1)} ms`);
  console.log(`cli_startup_version_ratio ${ratios[0].toFixed(2)} x`);
  console.log(`cli_startup_help_ratio ${ratios[1].toFixed(2)} x`);
  console.log(`cli_executable_size ${sizeMiB.toFixed(1)} MiB`);
  process.exitCode = met ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
