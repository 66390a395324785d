// Tracing end to end on the test cluster: a real Jaeger on the host, the mesh deployed with
// `--telemetry-exporters` pointing at it, and a meshed client calling frontend, which calls
// backend passing the trace context on as an instrumented app does. Every sidecar records its
// span (client span out, server span in), joined by W3C traceparent into one trace that is read
// back through Jaeger's query API; gRPC calls too. MeshConfig's telemetry applies without a
// restart; an exporter that is down costs the app nothing. The sidecars' JSON access log lines
// carry the trace id.
import { SIDECAR_CONTAINER_NAME } from '../../src/manifests/constants';
import { ECHO_GRPC_PORT } from '../cluster/apps/echo-ports';
import type { KubeRest } from '../cluster/harness/kube-rest';
import type { PodSummary } from '../cluster/support/kube';
import { waitFor } from '../cluster/support/kube';
import {
  clusterIPOf,
  echoDeployment,
  ECHO_PORT,
  kubectl,
  patchMeshConfig,
  portsService,
  readyPodOf,
  shellDeployment,
  waitForSidecarConfig,
} from '../cluster/support/mesh-apps';
import { buildJaeger, startJaeger } from '../support/jaeger';
import type { JaegerSpan, RunningJaeger } from '../support/jaeger';
import { freePort } from '../support/prometheus';
import type { GrpcOutcome, HttpOutcome, ProtocolClients } from './support/protocol-clients';
import type { ProtocolMesh } from './support/protocol-mesh';
import { netnsOfPod, setUpProtocolMesh, tearDownProtocolMesh } from './support/protocol-mesh';
import { sidecarMetrics, sumOf } from './support/sidecar-metrics';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const meshNamespace = 'mesh-e2e-tracing';
const apps = 'e2e-tracing';
const plain = 'e2e-tracing-plain';
const ROOT = join(__dirname, '..', '..');

let mesh: ProtocolMesh | undefined;
let jaeger: RunningJaeger | undefined;
let jaegerDir: string;
let host: string;
let rest: KubeRest;
let clients: ProtocolClients;
let client: PodSummary;
let clientNetns: string;
let frontendIP: string;

const backendUrl = `http://backend.${apps}.svc.cluster.local/items/7`;

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** The exporter as MeshConfig holds it: this file's Jaeger, gRPC, unless told otherwise. */
const exporter = (port: number, protocol: 'grpc' | 'http' = 'grpc') => ({
  exporters: { otlp: { host, port, protocol } },
});

/** client → frontend → backend, from the meshed client's netns; the outcome and backend's view. */
async function chain(
  headers: readonly string[] = [],
): Promise<{ outcome: HttpOutcome; traceparent: string }> {
  const outcome = await clients.run<HttpOutcome>(clientNetns, 'http-client', [
    `http://${frontendIP}/forward?to=${encodeURIComponent(backendUrl)}`,
    'once',
    ...headers,
  ]);
  expect(outcome.status).toBe(200);
  const forwarded = JSON.parse(outcome.body ?? '{}') as { body?: string };
  const backend = JSON.parse(forwarded.body ?? '{}') as { headers?: Record<string, string> };
  return { outcome, traceparent: backend.headers?.traceparent ?? '' };
}

const traceIdOf = (traceparent: string): string => traceparent.split('-')[1] ?? '';

/** The trace's spans once it has n of them (the agents export once a second). */
async function trace(traceId: string, n: number): Promise<JaegerSpan[]> {
  const running = jaeger;
  if (running === undefined) throw new Error('no Jaeger');
  return waitFor(
    `${n} spans of trace ${traceId} in Jaeger`,
    async () => {
      const spans = await running.getTrace(traceId);
      return spans.length >= n ? spans : undefined;
    },
    30_000,
    500,
  );
}

/** Orders a chain's spans root first, each followed by its child; throws on a fork or a gap. */
function chainOrder(spans: readonly JaegerSpan[]): JaegerSpan[] {
  const ids = new Set(spans.map((span) => span.spanId));
  const roots = spans.filter(
    (span) => span.parentSpanId === undefined || !ids.has(span.parentSpanId),
  );
  if (roots.length !== 1) throw new Error(`expected one root, got ${JSON.stringify(spans)}`);
  const ordered = [...roots];
  for (;;) {
    const last = ordered.at(-1);
    const children = spans.filter((span) => span.parentSpanId === last?.spanId);
    if (children.length === 0) break;
    if (children.length > 1) throw new Error(`a fork after ${last?.spanId}`);
    ordered.push(...children);
  }
  if (ordered.length !== spans.length) throw new Error(`a gap: ${JSON.stringify(spans)}`);
  return ordered;
}

beforeAll(async () => {
  jaegerDir = mkdtempSync(join(tmpdir(), 'nginx-mesh-e2e-jaeger-'));
  const binary = await buildJaeger(ROOT);
  // Jaeger listens on the host's end of the node link, where the pods reach it.
  const { testRest } = await import('../cluster/support/kube');
  const probe = await testRest();
  host = new URL(probe.server).hostname;
  probe.close();
  jaeger = await startJaeger(binary, {
    dir: jaegerDir,
    host,
    otlpGrpcPort: await freePort(host),
    otlpHttpPort: await freePort(host),
    queryPort: await freePort(host),
  });
  const grpcPort = { name: 'grpc', port: ECHO_GRPC_PORT, appProtocol: 'grpc' };
  const httpPort = { name: 'http', port: 80, targetPort: ECHO_PORT };
  mesh = await setUpProtocolMesh({
    meshNamespace,
    apps,
    plain,
    deployFlags: [
      '--mtls-mode',
      'strict',
      '--telemetry-exporters',
      `type=otlp,host=${host},port=${jaeger.otlpGrpc.port}`,
      '--telemetry-sampler-ratio',
      '1',
      '--nginx-log-format',
      'json',
    ],
    clients: ['http-client', 'grpc-client'],
    objects: [
      echoDeployment(apps, 'frontend', { labels: { app: 'frontend' } }),
      echoDeployment(apps, 'backend', { labels: { app: 'backend' } }),
      shellDeployment(apps, 'client'),
      portsService(apps, 'frontend', { app: 'frontend' }, [httpPort, grpcPort]),
      portsService(apps, 'backend', { app: 'backend' }, [httpPort]),
    ],
    ready: { [apps]: ['frontend', 'backend', 'client'] },
    noDirectPair: true,
  });
  ({ rest, clients } = mesh);
  client = await readyPodOf(rest, apps, 'client');
  clientNetns = await netnsOfPod(client);
  frontendIP = await clusterIPOf(rest, apps, 'frontend');
  for (const app of ['client', 'frontend', 'backend']) {
    await waitForSidecarConfig(
      rest,
      { meshNamespace, namespace: apps, app },
      'tracing at ratio 1',
      (config) => config.includes('mesh_trace_ratio 1;'),
    );
  }
}, 600_000);

afterAll(async () => {
  await tearDownProtocolMesh(mesh);
  await jaeger?.stop();
  rmSync(jaegerDir, { recursive: true, force: true });
}, 200_000);

describe('one trace per request, across every hop', () => {
  it('joins the caller trace: four spans, each the child of the one before', async () => {
    const traceId = hex(16);
    const parent = hex(8);
    const { traceparent } = await chain([`traceparent:00-${traceId}-${parent}-01`]);
    // backend's app got the trace, with its own sidecar's span as the parent
    expect(traceIdOf(traceparent)).toBe(traceId);
    const spans = chainOrder(await trace(traceId, 4));
    expect(spans.map((span) => [span.serviceName, span.kind])).toEqual([
      ['client', 'client'],
      ['frontend', 'server'],
      ['frontend', 'client'],
      ['backend', 'server'],
    ]);
    expect(spans[0]?.parentSpanId).toBe(parent);
    expect(traceparent.split('-')[2]).toBe(spans[3]?.spanId);
    expect(spans.map((span) => span.operationName)).toEqual(['GET', 'GET', 'GET', 'GET']);
    expect(spans[0]?.tags).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/forward',
      'http.response.status_code': 200,
      'server.address': `frontend.${apps}.svc`,
    });
    expect(spans[2]?.tags).toMatchObject({
      'url.path': '/items/7',
      'server.address': `backend.${apps}.svc`,
    });
    expect(spans[3]?.tags['nsm.peer.spiffe_id']).toMatch(
      new RegExp(`^spiffe://.*/ns/${apps}/sa/default$`),
    );
    // each span starts within its parent's and ends with it. A span ends when its nginx runs the
    // log phase, after the response's last byte is written; the parent's nginx can read that byte
    // and log first while the child's worker waits for a core, so the end gets a scheduling margin.
    for (let index = 1; index < spans.length; index += 1) {
      const [outer, inner] = [spans[index - 1], spans[index]];
      if (outer === undefined || inner === undefined) throw new Error('missing span');
      const outerEnd = outer.startTimeUs + outer.durationUs;
      expect(inner.startTimeUs).toBeGreaterThanOrEqual(outer.startTimeUs - 1_000);
      expect(inner.startTimeUs).toBeLessThanOrEqual(outerEnd);
      expect(inner.startTimeUs + inner.durationUs).toBeLessThanOrEqual(outerEnd + 50_000);
    }
  });

  it('starts the trace at the first sidecar when the request carries none', async () => {
    const { traceparent } = await chain();
    const traceId = traceIdOf(traceparent);
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const spans = chainOrder(await trace(traceId, 4));
    expect(spans[0]?.parentSpanId).toBeUndefined();
    expect(spans[0]?.serviceName).toBe('client');
  });

  it('traces a gRPC call: two spans named after the method, failures marked', async () => {
    const target = `${frontendIP}:${ECHO_GRPC_PORT}`;
    const ok = await clients.run<GrpcOutcome>(clientNetns, 'grpc-client', [target, 'unary', '64']);
    expect(ok.code).toBe(0);
    const okSpans = chainOrder(await trace(traceIdOf(ok.initial['x-traceparent'] ?? ''), 2));
    expect(okSpans.map((span) => [span.serviceName, span.kind, span.operationName])).toEqual([
      ['client', 'client', 'mesh.test.Echo/Unary'],
      ['frontend', 'server', 'mesh.test.Echo/Unary'],
    ]);
    expect(okSpans[0]?.tags).toMatchObject({ 'rpc.system': 'grpc', 'rpc.grpc.status_code': 0 });
    const failed = await clients.run<GrpcOutcome>(clientNetns, 'grpc-client', [
      target,
      'unary-status',
      '14',
    ]);
    expect(failed.code).toBe(14);
    const failedSpans = chainOrder(
      await trace(traceIdOf(failed.initial['x-traceparent'] ?? ''), 2),
    );
    expect(failedSpans.map((span) => span.tags['rpc.grpc.status_code'])).toEqual([14, 14]);
    expect(failedSpans.map((span) => span.tags.error)).toEqual([true, true]);
  });

  it("writes the trace id into the sidecars' JSON access log lines", async () => {
    const traceId = hex(16);
    await chain([`traceparent:00-${traceId}-${hex(8)}-01`]);
    const backend = await readyPodOf(rest, apps, 'backend');
    const line = await waitFor(
      'the access log line of the traced request',
      async () => {
        const logs = await kubectl([
          'logs',
          '-n',
          apps,
          backend.metadata.name,
          '-c',
          SIDECAR_CONTAINER_NAME,
          '--tail',
          '200',
        ]);
        return logs.stdout.split('\n').find((each) => each.includes(traceId));
      },
      30_000,
      500,
    );
    const entry = JSON.parse(line) as Record<string, unknown>;
    expect(entry).toMatchObject({ trace_id: traceId, method: 'GET', status: 200 });
  });
});

describe('the settings apply while the mesh runs', () => {
  it('samples new traces at the MeshConfig ratio and always honours the incoming flag', async () => {
    await patchMeshConfig(meshNamespace, {
      telemetry: { ...exporter(jaeger?.otlpGrpc.port ?? 0), samplerRatio: 0 },
    });
    await waitForSidecarConfig(
      rest,
      { meshNamespace, namespace: apps, app: 'client' },
      'the ratio 0',
      (config) => config.includes('mesh_trace_ratio 0;'),
    );
    const unsampled = await chain();
    // the trace context still travels, marked not sampled
    expect(unsampled.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    const traceId = hex(16);
    const sampled = await chain([`traceparent:00-${traceId}-${hex(8)}-01`]);
    expect(sampled.traceparent.endsWith('-01')).toBe(true);
    await trace(traceId, 4);
    // recorded after the unsampled one by the same sidecars: had it been sampled, it would be there
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await jaeger?.getTrace(traceIdOf(unsampled.traceparent))).toEqual([]);
  });

  it('keeps the app answering while the exporter is down, and exports again once it is back', async () => {
    const closed = await freePort(host);
    await patchMeshConfig(meshNamespace, { telemetry: { ...exporter(closed), samplerRatio: 1 } });
    await waitForSidecarConfig(
      rest,
      { meshNamespace, namespace: apps, app: 'client' },
      'the ratio 1',
      (config) => config.includes('mesh_trace_ratio 1;'),
    );
    const batch = await clients.run<HttpOutcome>(clientNetns, 'http-client', [
      `http://${frontendIP}/`,
      'timed',
      '50',
    ]);
    expect(batch.statuses).toEqual({ 200: 50 });
    const failures = await waitFor(
      'export failures counted by the client sidecar',
      async () => {
        const samples = await sidecarMetrics(client.status?.podIP ?? '');
        const count = sumOf(samples, 'nginx_mesh_span_export_failures_total', {});
        return count > 0 ? count : undefined;
      },
      30_000,
      500,
    );
    expect(failures).toBeGreaterThan(0);
    // back to the running Jaeger, over OTLP/HTTP this time
    await patchMeshConfig(meshNamespace, {
      telemetry: { ...exporter(jaeger?.otlpHttp.port ?? 0, 'http'), samplerRatio: 1 },
    });
    const traceId = hex(16);
    await waitFor(
      'a trace exported over OTLP/HTTP',
      async () => {
        await chain([`traceparent:00-${traceId}-${hex(8)}-01`]);
        const spans = (await jaeger?.getTrace(traceId)) ?? [];
        return spans.length >= 4 ? spans : undefined;
      },
      60_000,
      2_000,
    );
  });
});
