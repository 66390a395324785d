// CLI start-up: median wall time of `nginx-meshctl version` and `nginx-meshctl --help` against
// `node -e 0` of the Node the executable embeds, measured in the same run, interleaved so that
// machine noise hits all three alike, and their CPU time (the same interleaving, separate runs),
// which other work on the machine moves far less. Target: at most 1.2x the baseline for each,
// in wall time.
//
// The executable runs from an empty directory with an empty HOME and no KUBECONFIG, as on a
// workstation without a cluster: `version` then answers from the client alone.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { targetLine } from './support/targets.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 40);
const WARMUP = 5;
const TARGET_RATIO = { how: '<=', limit: 1.2 };

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

/**
 * CPU time (user + system, every thread) of one run, as bash's `times` reports its child: other
 * work on the machine moves it far less than wall time, which it preempts.
 */
function cpuOnce(subject) {
  const result = spawnSync(
    '/bin/bash',
    ['-c', '"$0" "$@" >/dev/null 2>&1 || exit 1; times', subject.command, ...subject.args],
    { cwd: dir, env, encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`${subject.label} exited ${result.status}`);
  const children = result.stdout.trim().split('\n')[1] ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map(
    (match) => Number(match[1]) * 60 + Number(match[2]),
  );
  if (seconds.length !== 2) throw new Error(`unexpected times output: ${result.stdout}`);
  return (seconds[0] + seconds[1]) * 1000;
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
  const cpuSamples = new Map(subjects.map((subject) => [subject.figure, []]));
  for (let i = 0; i < RUNS; i += 1) {
    for (const subject of subjects) cpuSamples.get(subject.figure).push(cpuOnce(subject));
  }
  const medians = new Map(subjects.map((s) => [s.figure, median(samples.get(s.figure))]));
  const cpuMedians = new Map(subjects.map((s) => [s.figure, median(cpuSamples.get(s.figure))]));
  const cpuBaseline = cpuMedians.get('node_e0');
  const baseline = medians.get('node_e0');
  const sizeMiB = statSync(binary).size / (1024 * 1024);

  console.log(
    `cli-startup: median wall time of ${RUNS} interleaved runs each, Node ${process.versions.node}`,
  );
  for (const subject of subjects) {
    const value = medians.get(subject.figure);
    const ratio = subject.figure === 'node_e0' ? '' : `  ${(value / baseline).toFixed(2)}x`;
    const cpu = cpuMedians.get(subject.figure);
    const cpuRatio = subject.figure === 'node_e0' ? '' : `  ${(cpu / cpuBaseline).toFixed(2)}x`;
    console.log(
      `  ${subject.label.padEnd(24)} ${value.toFixed(1).padStart(7)} ms${ratio.padEnd(7)}  CPU ${cpu.toFixed(0).padStart(4)} ms${cpuRatio}`,
    );
  }
  console.log(
    `  load average ${loadavg()
      .map((value) => value.toFixed(1))
      .join(' ')}`,
  );
  const ratios = subjects.slice(1).map((s) => medians.get(s.figure) / baseline);
  console.log(`  executable size ${sizeMiB.toFixed(1)} MiB`);
  console.log(`cli_startup_node_e0_ms ${baseline.toFixed(1)} ms`);
  console.log(`cli_startup_version_ms ${medians.get('version').toFixed(1)} ms`);
  console.log(`cli_startup_help_ms ${medians.get('help').toFixed(1)} ms`);
  console.log(`cli_startup_version_ratio ${ratios[0].toFixed(2)} x`);
  console.log(`cli_startup_help_ratio ${ratios[1].toFixed(2)} x`);
  console.log(`cli_executable_size ${sizeMiB.toFixed(1)} MiB`);
  for (const figure of ['version', 'help']) {
    const ratio = cpuMedians.get(figure) / cpuBaseline;
    console.log(`cli_startup_${figure}_cpu_ratio ${ratio.toFixed(2)} x`);
  }
  console.log(targetLine('cli_startup_version_ratio', ratios[0], TARGET_RATIO, 2));
  console.log(targetLine('cli_startup_help_ratio', ratios[1], TARGET_RATIO, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
