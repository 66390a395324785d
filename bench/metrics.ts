// Cost of the sidecar's request metrics: requests per second through a real sidecar nginx on
// loopback (outbound HTTP server → an upstream nginx serves itself), counting into its shared
// memory while the agent's pipeline takes the counts every second (ON), against the same
// configuration without counting (OFF, the baseline), alternated over rounds in the same run. The
// pipeline runs in a process of its own, as the agent does; its CPU time per 1,000 requests and
// nginx's own CPU are what counting costs the pod.
// Target: counting keeps at least 0.95x the requests per second.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  SIDECAR_STATS_HTTP_ZONE,
  SIDECAR_STATS_PATH,
  SIDECAR_STATS_TCP_ZONE,
} from '../src/manifests/constants';
import type { MeshSnapshot } from '../src/manifests/snapshot/types';
import { buildSidecarModel, renderSidecarConfig } from '../src/render/sidecar';
import { membersPath } from '../src/render/sidecar/upstream-slots';
import {
  prepareStatsSocket,
  startSidecarMetrics,
} from '../src/runtime/agent/metrics/sidecar-metrics';
import { startChildServer } from './support/child-server';
import type { Target } from './support/targets.mjs';
import { targetLine } from './support/targets.mjs';
import { httpPort, service, shopContext, withMesh } from '../test/support/sidecar-snapshots';
import { buildMeshModule, listensSoon, prepareSidecarDir } from '../test/support/sidecar-dir';

const TARGET_RATIO: Target = { how: '>=', limit: 0.95 };
const REQUESTS = 20_000;
const MAX_MS_PER_RUN = 20_000;
const CONNECTIONS = 8;
const ROUNDS = 5;
const APP_PORT = 18_080;

/** How often the pipeline takes nginx's counts during a run (the agent: every 5 s and per scrape). */
const TAKE_INTERVAL_MS = 1_000;

/** Tells the pipeline's process where nginx's stats socket is (it inherits the environment). */
const STATS_SOCKET_ENV = 'BENCH_STATS_SOCKET';

/** The pipeline's process: takes nginx's counts; GET / answers its counts and CPU time. */
function serveReceiver(): void {
  const metrics = startSidecarMetrics({
    socketPath: process.env[STATS_SOCKET_ENV] ?? '',
    path: SIDECAR_STATS_PATH,
    httpZone: SIDECAR_STATS_HTTP_ZONE,
    tcpZone: SIDECAR_STATS_TCP_ZONE,
    takeIntervalMs: TAKE_INTERVAL_MS,
  });
  const server = createServer((_req, res) => {
    void metrics.exposition().then((text) => {
      const cpu = process.cpuUsage();
      const counted = [...text.matchAll(/^nginx_mesh_requests_total\{.*\} (\d+)$/gm)].reduce(
        (sum, match) => sum + Number(match[1]),
        0,
      );
      const lost = Number(/^nginx_mesh_stats_lost_total (\d+)$/m.exec(text)?.[1] ?? 0);
      res.end(JSON.stringify({ cpuMicros: cpu.user + cpu.system, counted, lost }));
    });
  });
  server.listen(0, '127.0.0.1', () => console.log((server.address() as AddressInfo).port));
}

function snapshot(): MeshSnapshot {
  return withMesh(
    { mtlsMode: 'off' },
    {
      services: service(
        'shop/api',
        '10.96.0.11',
        [httpPort(8080)],
        [
          {
            address: '127.0.0.1',
            ports: { http: APP_PORT },
            pod: 'shop/api-1',
            owner: 'deployment/api',
          },
        ],
      ),
    },
  );
}

async function getJson(port: number): Promise<{ cpuMicros: number; counted: number }> {
  const response = await fetch(`http://127.0.0.1:${port}/`);
  return (await response.json()) as { cpuMicros: number; counted: number };
}

async function waitForPort(port: number): Promise<void> {
  if (!(await listensSoon(port))) throw new Error(`nginx did not listen on ${port}`);
}

async function startNginx(dir: string, text: string): Promise<ChildProcess> {
  const config = join(dir, 'nginx.conf');
  writeFileSync(config, text);
  const child = spawn('nginx', ['-e', 'stderr', '-p', dir, '-c', config, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(8889);
  await waitForPort(APP_PORT);
  return child;
}

async function stopNginx(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGQUIT');
  await exited;
}

/** Sends up to REQUESTS over CONNECTIONS keep-alive connections; requests per second. */
async function load(loopback: string): Promise<{ rps: number; sent: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const started = performance.now();
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: loopback, port: 8889, path: '/', agent, headers: { Host: 'api' } },
        (res) => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode ?? 0}`));
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end();
    });
  const worker = async (): Promise<void> => {
    while (sent < REQUESTS && performance.now() - started < MAX_MS_PER_RUN) {
      sent += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { rps: sent / seconds, sent };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const meshModule = buildMeshModule();
  const dir = prepareSidecarDir('bench-metrics-');
  const context = shopContext({ containerPorts: [] });
  const { text: rendered, members } = renderSidecarConfig(snapshot(), context);
  const loopback = buildSidecarModel(snapshot(), context).model.outboundHttp[0]?.loopback ?? '';
  // The upstream is a server of the same nginx, so the app costs the same in both runs.
  const base = rendered
    .replace('/usr/lib/nginx/modules/ngx_mesh_module.so', meshModule)
    .replaceAll('/etc/nginx-mesh', dir)
    .replace(
      /\n}\n$/,
      `\n    server {\n        listen 127.0.0.1:${APP_PORT};\n        return 200 "ok\\n";\n    }\n}\n`,
    );
  const off = base.replace(/\n *mesh_stats [^;]*;/g, '');
  // The file the configuration names (the run directory made this one): without it the Service's
  // upstream has no live server.
  writeFileSync(membersPath(dir), members);
  process.env[STATS_SOCKET_ENV] = prepareStatsSocket(dir);
  const receiver = await startChildServer('receiver', 10_000);
  const on = base;
  const offRps: number[] = [];
  const onRps: number[] = [];
  const cpuPerThousand: number[] = [];
  let lost = 0;
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      let nginx = await startNginx(dir, off);
      offRps.push((await load(loopback)).rps);
      await stopNginx(nginx);
      nginx = await startNginx(dir, on);
      const before = await getJson(receiver.port);
      const { rps, sent } = await load(loopback);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const after = await getJson(receiver.port);
      await stopNginx(nginx);
      onRps.push(rps);
      cpuPerThousand.push((after.cpuMicros - before.cpuMicros) / 1000 / (sent / 1000));
      lost += sent - (after.counted - before.counted);
    }
  } finally {
    receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const ratio = median(onRps) / median(offRps);
  console.log(
    `sidecar metrics: up to ${REQUESTS} requests per run over ${CONNECTIONS} keep-alive connections, median of ${ROUNDS} rounds, Node ${process.versions.node}`,
  );
  console.log(`  counting off  ${median(offRps).toFixed(0)} req/s`);
  console.log(`  counting on   ${median(onRps).toFixed(0)} req/s  ${ratio.toFixed(3)}x`);
  console.log(
    `  agent CPU     ${median(cpuPerThousand).toFixed(2)} ms per 1,000 requests (takes every ${TAKE_INTERVAL_MS} ms); ${lost} not counted`,
  );
  console.log(`metrics_rps_off ${median(offRps).toFixed(0)} req/s`);
  console.log(`metrics_rps_on ${median(onRps).toFixed(0)} req/s`);
  console.log(`metrics_rps_ratio ${ratio.toFixed(3)} x`);
  console.log(`metrics_agent_cpu_ms_per_1000_requests ${median(cpuPerThousand).toFixed(2)} ms`);
  console.log(`metrics_requests_not_counted ${lost} requests`);
  console.log(targetLine('metrics_rps_ratio', ratio, TARGET_RATIO));
}

if (process.argv.includes('--serve')) {
  serveReceiver();
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
