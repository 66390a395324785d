// A real Prometheus (Debian's binary) for tests, on loopback or a given address, with a bounded
// lifetime, and the sidecar metric fixture it scrapes.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SIDECAR_DURATION_BUCKETS_MS,
  SIDECAR_DURATION_METRIC,
  SIDECAR_REQUESTS_METRIC,
} from '../../src/manifests/constants';
import { STATS_LOST_METRIC } from '../../src/runtime/agent/metrics/sidecar-metrics';

const PROMETHEUS = '/usr/bin/prometheus';
/** Prometheus is killed after this long whatever happens to the test process. */
const MAX_LIFETIME_S = 240;

/** A series of the sidecar contract that grows at a fixed rate (requests per second). */
export interface FixtureSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly perSecond: number;
}

/**
 * The share of requests at or under each bucket bound: 40% ≤ 5 ms, 80% ≤ 10 ms, all ≤ 20 ms.
 * histogram_quantile then gives p50 6.25 ms, p90 15 ms and p99 19.5 ms.
 */
function bucketShare(bound: number): number {
  if (bound < 5) return 0;
  if (bound < 10) return 0.4;
  if (bound < 20) return 0.8;
  return 1;
}

function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([name, value]) => `${name}="${value}"`)
    .join(',');
}

/**
 * The exposition of one simulated sidecar after `seconds` of steady traffic; like the agent's, it
 * always ends with the counter of requests nginx could not count (growing at droppedPerSecond).
 */
export function renderFixtureExposition(
  series: readonly FixtureSeries[],
  seconds: number,
  droppedPerSecond = 0,
): string {
  const lines = [
    `# TYPE ${SIDECAR_REQUESTS_METRIC} counter`,
    ...series.map(
      (s) => `${SIDECAR_REQUESTS_METRIC}{${labelText(s.labels)}} ${s.perSecond * seconds}`,
    ),
    `# TYPE ${SIDECAR_DURATION_METRIC} histogram`,
  ];
  for (const s of series) {
    const count = s.perSecond * seconds;
    for (const bound of SIDECAR_DURATION_BUCKETS_MS) {
      const labels = labelText({ ...s.labels, le: String(bound) });
      lines.push(`${SIDECAR_DURATION_METRIC}_bucket{${labels}} ${count * bucketShare(bound)}`);
    }
    lines.push(
      `${SIDECAR_DURATION_METRIC}_bucket{${labelText({ ...s.labels, le: '+Inf' })}} ${count}`,
    );
    lines.push(`${SIDECAR_DURATION_METRIC}_sum{${labelText(s.labels)}} ${count * 8}`);
    lines.push(`${SIDECAR_DURATION_METRIC}_count{${labelText(s.labels)}} ${count}`);
  }
  lines.push(
    `# TYPE ${STATS_LOST_METRIC} counter`,
    `${STATS_LOST_METRIC} ${droppedPerSecond * seconds}`,
  );
  return `${lines.join('\n')}\n`;
}

export interface FixtureServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves /pods/<name>/metrics for each simulated pod; counters grow with the time since start.
 * droppedPerSecond gives a pod's rate of requests its nginx could not count (default 0).
 */
export async function startFixtureServer(
  pods: Readonly<Record<string, readonly FixtureSeries[]>>,
  host = '127.0.0.1',
  droppedPerSecond: Readonly<Record<string, number>> = {},
): Promise<FixtureServer> {
  const started = Date.now();
  const server = http.createServer((req, res) => {
    const pod = /^\/pods\/([^/]+)\/metrics$/.exec(req.url ?? '')?.[1];
    const series = pod === undefined ? undefined : pods[pod];
    if (series === undefined) {
      res.writeHead(404).end();
      return;
    }
    const seconds = (Date.now() - started) / 1000;
    const body = renderFixtureExposition(series, seconds, droppedPerSecond[pod ?? ''] ?? 0);
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }).end(body);
  });
  server.keepAliveTimeout = 500;
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface PrometheusTarget {
  readonly address: string;
  readonly metricsPath: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface TestPrometheus {
  readonly url: string;
  stop(): Promise<void>;
}

function configText(targets: readonly PrometheusTarget[], intervalS: number): string {
  const statics = targets.map((target) => ({
    targets: [target.address],
    labels: { __metrics_path__: target.metricsPath, ...target.labels },
  }));
  return JSON.stringify({
    global: { scrape_interval: `${intervalS}s`, evaluation_interval: `${intervalS}s` },
    scrape_configs: [{ job_name: 'nginx-mesh-sidecars', static_configs: statics }],
  });
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      http
        .get(`${url}/-/ready`, { timeout: 1_000 }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`prometheus not ready within 30s: ${output()}`);
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Starts Prometheus scraping the targets every intervalS seconds; resolves once it is ready. */
export async function startPrometheus(
  targets: readonly PrometheusTarget[],
  options: { host?: string; port?: number; intervalS?: number } = {},
): Promise<TestPrometheus> {
  const host = options.host ?? '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'nmk-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  await writeFile(config, configText(targets, options.intervalS ?? 1));
  const port = options.port ?? (await freePort(host));
  const child = spawn(
    'timeout',
    [
      '--signal=KILL',
      String(MAX_LIFETIME_S),
      PROMETHEUS,
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${host}:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    // Its own process group, so that a kill reaches prometheus and not only `timeout`.
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://${host}:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      signalGroup(child, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null) signalGroup(child, 'SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(url, child, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}
