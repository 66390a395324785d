// The sidecar's tracing pipeline on the host, with its real parts: Debian's nginx with the
// ngx_mesh module recording spans (a client hop chained to a server hop, as two sidecars are),
// the agent's tracing (src/runtime/agent/tracing/agent-tracing.ts) taking them from nginx's stats
// socket and exporting them, and a real Jaeger reading them back through its query API. The
// exporter moves between OTLP/gRPC and OTLP/HTTP, goes down and comes back, and is turned off,
// all while requests flow.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { MeshSnapshot, SnapshotTelemetry } from '../../src/manifests/snapshot/types';
import { podResource, startAgentTracing } from '../../src/runtime/agent/tracing/agent-tracing';
import type { AgentTracing } from '../../src/runtime/agent/tracing/agent-tracing';
import type { Logger } from '../../src/runtime/role/log';
import { buildJaeger, startJaeger } from '../support/jaeger';
import type { JaegerSpan, RunningJaeger } from '../support/jaeger';
import { freePort } from '../support/prometheus';
import { stopChild } from '../support/processes';
import {
  buildMeshModule,
  moduleConfigPreamble,
  prepareSidecarDir,
  waitForPort,
} from '../support/sidecar-dir';

const HOST = '127.0.0.1';
const ROOT = join(__dirname, '..', '..');
const CLIENT = 15_301;
const SERVER = 15_302;
const APP = 15_303;

let dir: string;
let jaegerDir: string;
let nginx: ChildProcess | undefined;
let app: Server;
let jaeger: RunningJaeger;
let tracing: AgentTracing | undefined;
const logged: string[] = [];

const logger = {
  info: (message: string) => logged.push(message),
  warn: (message: string) => logged.push(message),
  error: (message: string) => logged.push(message),
  debug: () => undefined,
} as unknown as Logger;

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

function config(meshModule: string): string {
  return `${moduleConfigPreamble(dir, meshModule)}
    mesh_trace_zone mesh_trace 1m;
    mesh_trace_ratio 1;
    server {
        listen ${HOST}:${CLIENT};
        mesh_trace_span mesh_trace client '{"service":"shop/api","upstream":"$upstream_addr"}';
        location / {
            proxy_set_header traceparent $mesh_traceparent;
            proxy_pass http://${HOST}:${SERVER};
        }
    }
    server {
        listen ${HOST}:${SERVER};
        mesh_trace_span mesh_trace server '{"peer":"$remote_addr","peer_id":""}';
        location / {
            proxy_set_header traceparent $mesh_traceparent;
            proxy_pass http://${HOST}:${APP};
        }
    }
    server {
        listen unix:${dir}/stats/nginx.sock;
        location = /traces { mesh_trace_dump mesh_trace; }
    }
}
`;
}

/** A request through both hops in trace traceId; its status. */
function call(traceId: string, path = '/orders'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: HOST,
        port: CLIENT,
        path,
        agent: false,
        headers: { traceparent: `00-${traceId}-${hex(8)}-01` },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const snapshot = (telemetry: SnapshotTelemetry | undefined): MeshSnapshot =>
  ({ mesh: telemetry === undefined ? {} : { telemetry } }) as unknown as MeshSnapshot;

const telemetry = (port: number, protocol: 'grpc' | 'http'): SnapshotTelemetry => ({
  host: HOST,
  port,
  protocol,
  samplerRatio: 1,
});

async function spansOf(traceId: string, n: number, timeoutMs = 15_000): Promise<JaegerSpan[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = await jaeger.getTrace(traceId);
    if (spans.length >= n) return spans;
    if (Date.now() > deadline) throw new Error(`trace ${traceId}: ${spans.length} of ${n} spans`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function counter(name: string, labels = ''): number {
  const line = (tracing?.exposition() ?? '')
    .split('\n')
    .find((each) => each.startsWith(`${name}${labels} `));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

beforeAll(async () => {
  const meshModule = buildMeshModule();
  const binary = await buildJaeger(ROOT);
  dir = prepareSidecarDir('agent-tracing-');
  mkdirSync(join(dir, 'stats'), { recursive: true, mode: 0o700 });
  jaegerDir = mkdtempSync(join(tmpdir(), 'agent-tracing-jaeger-'));
  jaeger = await startJaeger(binary, {
    dir: jaegerDir,
    host: HOST,
    otlpGrpcPort: await freePort(),
    otlpHttpPort: await freePort(),
    queryPort: await freePort(),
  });
  app = createServer((req, res) => res.end(`app ${String(req.headers.traceparent)}\n`));
  await new Promise<void>((resolve) => app.listen(APP, HOST, resolve));
  writeFileSync(join(dir, 'nginx.conf'), config(meshModule));
  nginx = spawn(
    'nginx',
    ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitForPort(CLIENT);
  await waitForPort(SERVER);
  tracing = startAgentTracing({
    socketPath: join(dir, 'stats', 'nginx.sock'),
    resource: podResource({ namespace: 'shop', name: 'web-5d9c-x7k2p', owner: 'deployment/web' }),
    version: '9.9.9',
    logger,
  });
}, 45 * 60_000);

afterAll(async () => {
  await tracing?.close();
  await stopChild(nginx);
  await jaeger.stop();
  await new Promise((resolve) => app.close(resolve));
  rmSync(dir, { recursive: true, force: true });
  rmSync(jaegerDir, { recursive: true, force: true });
}, 60_000);

it('exports both hops of a request as one trace over OTLP/gRPC, with the pod as the resource', async () => {
  tracing?.applySnapshot(snapshot(telemetry(jaeger.otlpGrpc.port, 'grpc')));
  const traceId = hex(16);
  expect(await call(traceId)).toBe(200);
  const spans = await spansOf(traceId, 2);
  const client = spans.find((span) => span.kind === 'client');
  const server = spans.find((span) => span.kind === 'server');
  expect(server?.parentSpanId).toBe(client?.spanId);
  expect(client?.serviceName).toBe('web');
  expect(client?.operationName).toBe('GET');
  expect(client?.tags).toMatchObject({
    'http.request.method': 'GET',
    'url.path': '/orders',
    'http.response.status_code': 200,
    'server.address': 'api.shop.svc',
    'network.peer.address': HOST,
    'network.peer.port': SERVER,
  });
  expect(server?.tags).toMatchObject({ 'client.address': HOST });
  expect(await jaeger.services()).toContain('web');
  expect(counter('nginx_mesh_spans_exported_total')).toBeGreaterThanOrEqual(2);
  expect(logged).toContain('span export');
});

it('moves to OTLP/HTTP without a restart', async () => {
  tracing?.applySnapshot(snapshot(telemetry(jaeger.otlpHttp.port, 'http')));
  const traceId = hex(16);
  expect(await call(traceId)).toBe(200);
  expect(await spansOf(traceId, 2)).toHaveLength(2);
});

it('keeps answering while the exporter is down, counts the failure, and exports again after', async () => {
  const closed = await freePort();
  tracing?.applySnapshot(snapshot(telemetry(closed, 'grpc')));
  const before = counter('nginx_mesh_span_export_failures_total');
  const lost = hex(16);
  const started = Date.now();
  for (let i = 0; i < 20; i += 1) expect(await call(lost)).toBe(200);
  // 20 requests through both hops, unaffected by the exporter's retries
  expect(Date.now() - started).toBeLessThan(2_000);
  // the batch is given up on after its attempts (0.5 + 1 + 2 + 4 s of backoff)
  const deadline = Date.now() + 20_000;
  while (counter('nginx_mesh_span_export_failures_total') <= before && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  expect(counter('nginx_mesh_span_export_failures_total')).toBe(before + 1);
  expect(counter('nginx_mesh_spans_dropped_total', '{stage="agent"}')).toBeGreaterThanOrEqual(40);
  tracing?.applySnapshot(snapshot(telemetry(jaeger.otlpGrpc.port, 'grpc')));
  const back = hex(16);
  expect(await call(back)).toBe(200);
  expect(await spansOf(back, 2)).toHaveLength(2);
  expect(await jaeger.getTrace(lost)).toEqual([]);
}, 60_000);

it('stops exporting when the snapshot has no exporter', async () => {
  tracing?.applySnapshot(snapshot(undefined));
  const exported = counter('nginx_mesh_spans_exported_total');
  const traceId = hex(16);
  expect(await call(traceId)).toBe(200);
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  expect(await jaeger.getTrace(traceId)).toEqual([]);
  expect(counter('nginx_mesh_spans_exported_total')).toBe(exported);
});
