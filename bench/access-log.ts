// Cost of the sidecar's access log: requests per second through a real sidecar nginx on loopback
// (outbound HTTP server → an upstream server of the same nginx), logging every request in the
// default and in the json format to the agent's FIFO, against the same configuration without an
// access log (OFF, the baseline), alternated over rounds in the same run. The relay is the
// agent's own code in a process of its own, as in the pod; its stdout is a pipe this script
// drains, as the container runtime does, counting the lines so that none goes missing. Load
// comes from bench/support/load.ts in another process: closed loops on keep-alive connections.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { MeshSnapshot } from '../src/manifests/snapshot/types';
import { buildSidecarModel, renderSidecarConfig } from '../src/render/sidecar';
import { membersPath } from '../src/render/sidecar/upstream-slots';
import { startAccessLogRelay } from '../src/runtime/agent/access-log-relay';
import type { LogFields } from '../src/runtime/role/log';
import { httpPort, service, shopContext, withMesh } from '../test/support/sidecar-snapshots';
import { buildMeshModule, listensSoon, prepareSidecarDir } from '../test/support/sidecar-dir';
import type { LoadResult, LoadSpec } from './support/load';
import { runLoad } from './support/load';
import { cpuSeconds, processTree } from './support/proc-stats';
import type { Target } from './support/targets.mjs';
import { targetLine } from './support/targets.mjs';

const ROUNDS = 9;
const CONNECTIONS = 8;
const WARMUP_MS = 1_000;
const PHASE_MS = 3_000;
const APP_PORT = 18_081;
const TARGET_RATIO: Target = { how: '>=', limit: 0.95 };

type Mode = 'off' | 'default' | 'json';
const MODES: readonly Mode[] = ['off', 'default', 'json'];

// ---------------------------------------------------------------------------------------------
// Child modes: the agent's relay, and the load generator.

/** The agent's relay on its own stdout; says it is ready on stderr. */
async function relay(path: string): Promise<void> {
  const print = (msg: string, fields: LogFields = {}): void =>
    void process.stderr.write(`${JSON.stringify({ msg, ...fields })}\n`);
  const logger = { debug: print, info: print, warn: print, error: print, with: () => logger };
  await startAccessLogRelay({ path, out: process.stdout, logger });
  process.stderr.write('ready\n');
}

async function load(spec: string): Promise<void> {
  process.stdout.write(`${JSON.stringify(await runLoad(JSON.parse(spec) as LoadSpec))}\n`);
}

// ---------------------------------------------------------------------------------------------

function snapshot(logFormat: 'default' | 'json'): MeshSnapshot {
  return withMesh(
    { mtlsMode: 'off', logFormat },
    {
      services: service(
        'shop/api',
        '10.96.0.11',
        [httpPort(8080)],
        [{ address: '127.0.0.1', ports: { http: APP_PORT } }],
      ),
    },
  );
}

/**
 * The three configurations, with this machine's paths and the upstream server added, and the
 * members file they name (the same for every mode: only the log differs).
 */
function configurations(
  dir: string,
  meshModule: string,
  fifo: string,
): { texts: Record<Mode, string>; members: string } {
  const context = shopContext({
    containerPorts: [],
    runDir: dir,
    svidFile: join(dir, 'svid.pem'),
    bundleFile: join(dir, 'bundle.crt'),
    modules: ['/usr/lib/nginx/modules/ngx_stream_module.so', meshModule],
  });
  // The upstream is a server of the same nginx, so the app costs the same in every run.
  const withApp = (text: string): string =>
    text.replace(
      /\n}\n$/,
      `\n    server {\n        listen 127.0.0.1:${APP_PORT};\n        return 200 "ok\\n";\n    }\n}\n`,
    );
  const off = renderSidecarConfig(snapshot('default'), context);
  return {
    texts: {
      off: withApp(off.text),
      default: withApp(
        renderSidecarConfig(snapshot('default'), { ...context, accessLog: fifo }).text,
      ),
      json: withApp(renderSidecarConfig(snapshot('json'), { ...context, accessLog: fifo }).text),
    },
    members: off.members,
  };
}

async function startNginx(dir: string, text: string): Promise<ChildProcess> {
  const config = join(dir, 'nginx.conf');
  writeFileSync(config, text);
  const child = spawn('nginx', ['-e', 'stderr', '-p', dir, '-c', config, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (const port of [8889, APP_PORT])
    if (!(await listensSoon(port))) throw new Error(`nginx did not listen on ${port}`);
  return child;
}

async function stopNginx(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGQUIT');
  await exited;
}

/** Runs one phase of load in a child process. */
async function loadPhase(loopback: string, durationMs: number): Promise<LoadResult> {
  const spec: LoadSpec = {
    host: loopback,
    port: 8889,
    mode: 'closed',
    connections: CONNECTIONS,
    warmupMs: 0,
    durationMs,
    retry: false,
  };
  const child = spawn(process.execPath, [process.argv[1] ?? '', '--load', JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load generator exited ${String(code)}`);
  return JSON.parse(output) as LoadResult;
}

/** The relay in a process of its own; its stdout drained here, lines counted. */
async function startRelay(
  fifo: string,
): Promise<{ pid: number; lines: () => number; stop(): void }> {
  const child = spawn(process.execPath, [process.argv[1] ?? '', '--relay', fifo], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let lines = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) lines += 1;
  });
  await new Promise<void>((resolve, reject) => {
    let said = '';
    child.stderr.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`relay exited ${String(code)}: ${said}`)));
  });
  return { pid: child.pid ?? 0, lines: () => lines, stop: () => child.kill('SIGKILL') };
}

/** Resolves once the count has not moved for 300 ms: the relay has copied what nginx wrote. */
async function settled(count: () => number): Promise<number> {
  let last = -1;
  while (count() !== last) {
    last = count();
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return last;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

interface Run {
  readonly rps: number;
  readonly requests: number;
  readonly lines: number;
  readonly relayCpuMs: number;
  /** nginx's CPU and, with the access log, the relay's, per 1,000 requests of the phase. */
  readonly sidecarCpuMsPerThousand: number;
}

async function main(): Promise<void> {
  const meshModule = buildMeshModule();
  const dir = prepareSidecarDir('bench-access-log-');
  const fifo = join(dir, 'access.log');
  // As the agent: the FIFO is there before nginx first opens it.
  const agent = await startRelay(fifo);
  const { texts, members } = configurations(dir, meshModule, fifo);
  // Without it the Service's upstream has no live server.
  writeFileSync(membersPath(dir), members);
  const loopback =
    buildSidecarModel(snapshot('default'), shopContext({ containerPorts: [] })).model
      .outboundHttp[0]?.loopback ?? '';
  const runs: Record<Mode, Run[]> = { off: [], default: [], json: [] };
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      // Each round in another order, so that no mode always follows the same one.
      const order = MODES.map((_, index) => MODES[(index + round) % MODES.length] ?? 'off');
      for (const mode of order) {
        const nginx = await startNginx(dir, texts[mode]);
        const linesBefore = agent.lines();
        const warm = await loadPhase(loopback, WARMUP_MS);
        const nginxPids = processTree(nginx.pid ?? 0);
        const relayBefore = cpuSeconds([agent.pid]);
        const nginxBefore = cpuSeconds(nginxPids);
        const measured = await loadPhase(loopback, PHASE_MS);
        const relayCpuMs = (cpuSeconds([agent.pid]) - relayBefore) * 1000;
        const nginxCpuMs = (cpuSeconds(nginxPids) - nginxBefore) * 1000;
        await stopNginx(nginx);
        const lines = (await settled(agent.lines)) - linesBefore;
        if (measured.errors > 0) throw new Error(`${mode}: ${measured.firstError}`);
        runs[mode].push({
          rps: measured.rps,
          requests: warm.completed + measured.completed,
          lines,
          relayCpuMs: mode === 'off' ? 0 : relayCpuMs,
          sidecarCpuMsPerThousand:
            ((nginxCpuMs + (mode === 'off' ? 0 : relayCpuMs)) * 1000) / measured.completed,
        });
      }
      process.stdout.write(`round ${round + 1}/${ROUNDS}: ${order.join(', ')} done\n`);
    }
  } finally {
    agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  report(runs);
}

function report(runs: Record<Mode, Run[]>): void {
  const rps = (mode: Mode): number => median(runs[mode].map((run) => run.rps));
  // Each round's own ratio, so that a slow drift of the machine's speed cancels out.
  const ratio = (mode: Mode): number =>
    median(runs[mode].map((run, round) => run.rps / (runs.off[round]?.rps ?? Number.NaN)));
  // In-flight requests at a phase's end are logged but not counted as completed.
  const missing = (mode: Mode): number =>
    runs[mode].reduce((sum, run) => sum + Math.max(0, run.requests - run.lines), 0);
  const cpuPerThousand = (mode: Mode): number =>
    median(runs[mode].map((run) => run.relayCpuMs / ((run.rps * PHASE_MS) / 1000 / 1000)));
  const sidecarCpu = (mode: Mode): number =>
    median(runs[mode].map((run) => run.sidecarCpuMsPerThousand));
  // What a sidecar bound by its CPU would serve, logging, relative to not: less sensitive to
  // other load on the machine than req/s, which it takes its CPU from.
  const capacity = (mode: Mode): number =>
    median(
      runs[mode].map(
        (run, round) =>
          (runs.off[round]?.sidecarCpuMsPerThousand ?? Number.NaN) / run.sidecarCpuMsPerThousand,
      ),
    );
  const lines = [
    `sidecar access log: closed loops on ${CONNECTIONS} keep-alive connections, ${PHASE_MS / 1000} s per run after ${WARMUP_MS / 1000} s of warm-up, ratios to off within each round, median of ${ROUNDS} rounds; Node ${process.versions.node}, ${cpus().length} CPUs`,
    `  off      ${rps('off').toFixed(0)} req/s (spread ${runs.off.map((run) => run.rps.toFixed(0)).join('/')}); sidecar CPU ${sidecarCpu('off').toFixed(1)} ms per 1,000 requests`,
    ...(['default', 'json'] as const).map(
      (mode) =>
        `  ${mode.padEnd(8)} ${rps(mode).toFixed(0)} req/s  ${ratio(mode).toFixed(3)}x (spread ${runs[mode].map((run) => run.rps.toFixed(0)).join('/')}); sidecar CPU ${sidecarCpu(mode).toFixed(1)} ms per 1,000 requests (relay ${cpuPerThousand(mode).toFixed(2)}), capacity ${capacity(mode).toFixed(3)}x; ${missing(mode)} lines missing`,
    ),
    `access_log_rps_off ${rps('off').toFixed(0)} req/s`,
    `access_log_rps_default ${rps('default').toFixed(0)} req/s`,
    `access_log_rps_json ${rps('json').toFixed(0)} req/s`,
    `access_log_rps_ratio_default ${ratio('default').toFixed(3)} x`,
    `access_log_rps_ratio_json ${ratio('json').toFixed(3)} x`,
    `access_log_capacity_ratio_default ${capacity('default').toFixed(3)} x`,
    `access_log_capacity_ratio_json ${capacity('json').toFixed(3)} x`,
    `access_log_relay_cpu_ms_per_1000_requests ${cpuPerThousand('json').toFixed(2)} ms`,
    `access_log_lines_missing ${missing('default') + missing('json')} lines`,
    targetLine('access_log_rps_ratio_default', ratio('default'), TARGET_RATIO),
    targetLine('access_log_rps_ratio_json', ratio('json'), TARGET_RATIO),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

const [mode, arg] = process.argv.slice(2);
const run = mode === '--relay' ? relay(arg ?? '') : mode === '--load' ? load(arg ?? '') : main();
run.catch((error: unknown) => {
  process.stderr.write(`access-log: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
