// The metrics role's Traffic Metrics API against a real Prometheus that scrapes simulated
// sidecars (a fixture serving our metric contract at fixed rates), called over mutual TLS as the
// API server's aggregator calls it.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessReviewer } from '../../src/runtime/metrics/access-review';
import { createPrometheusClient } from '../../src/runtime/metrics/prometheus-client';
import { startMetricsApi } from '../../src/runtime/metrics/start-metrics';
import type { MetricsServer } from '../../src/runtime/metrics/metrics-server';
import { createServingCertificate } from '../../src/runtime/pki/serving-certificate';
import type { ServingCertificate } from '../../src/runtime/pki/serving-certificate';
import { createJsonLogger } from '../../src/runtime/role/log';
import { generatePki } from '../cluster/harness/pki';
import type { Pki } from '../cluster/harness/pki';
import { freePort, startFixtureServer, startPrometheus } from '../support/prometheus';
import type { FixtureServer, FixtureSeries, TestPrometheus } from '../support/prometheus';

const base = '/apis/metrics.smi-spec.io/v1alpha1';
const serviceName = 'nginx-mesh-metrics-svc.nginx-mesh.svc';

const ingress = { src_namespace: 'edge', src_daemonset: 'ingress', src_pod: 'ingress-x' };
const db = { dst_namespace: 'shop', dst_statefulset: 'db', dst_pod: 'db-0', dst_service: 'db' };
const pods: Record<string, FixtureSeries[]> = {
  'web-1': [
    { labels: { direction: 'inbound', code: '2xx', ...ingress }, perSecond: 9 },
    { labels: { direction: 'inbound', code: '5xx', ...ingress }, perSecond: 1 },
    { labels: { direction: 'outbound', code: '2xx', ...db }, perSecond: 4 },
  ],
  'db-0': [
    {
      labels: {
        direction: 'inbound',
        code: '2xx',
        src_namespace: 'shop',
        src_deployment: 'web',
        src_pod: 'web-1',
      },
      perSecond: 4,
    },
  ],
};

let dir: string;
let pki: Pki;
let fixture: FixtureServer;
let prometheus: TestPrometheus;
let serving: ServingCertificate;
const servers: MetricsServer[] = [];
const logLines: string[] = [];
const logger = createJsonLogger({
  level: 'debug',
  out: { write: (text) => void logLines.push(text) },
  now: () => new Date(),
});

/** Alice may read everything; anyone else nothing. */
const reviews: { user: string; verb: string; resource: string; subresource?: string }[] = [];
const reviewer: AccessReviewer = {
  review: (user, attributes) => {
    reviews.push({
      user: user.user,
      verb: attributes.verb,
      resource: attributes.resource,
      subresource: attributes.subresource,
    });
    return Promise.resolve({ allowed: user.user === 'alice', reason: '' });
  },
};

async function startApi(prometheusUrl: string | undefined): Promise<number> {
  const server = await startMetricsApi({
    host: '127.0.0.1',
    port: 0,
    certificate: serving,
    requestHeader: {
      clientCaPem: readFileSync(pki.frontProxyCa.cert, 'utf8'),
      allowedNames: ['front-proxy-client'],
      usernameHeaders: ['X-Remote-User'],
      groupHeaders: ['X-Remote-Group'],
      extraHeaderPrefixes: ['X-Remote-Extra-'],
    },
    reviewer,
    prometheus:
      prometheusUrl === undefined ? undefined : createPrometheusClient(prometheusUrl, 5_000),
    logger,
  });
  servers.push(server);
  return server.port;
}

interface MetricsItem {
  metrics?: { name: string; value: string }[];
  edge?: { direction: string; resource: unknown };
}
/** The JSON under test: a TrafficMetrics, a TrafficMetricsList, a Status or a discovery document. */
interface Body extends MetricsItem {
  kind?: string;
  message?: string;
  reason?: string;
  resource?: unknown;
  items?: MetricsItem[];
}
interface Answer {
  status: number;
  body: Body;
}

function get(
  port: number,
  path: string,
  options: { client?: 'front-proxy' | 'other-ca' | 'none'; user?: string } = {},
): Promise<Answer> {
  const client = options.client ?? 'front-proxy';
  const pair =
    client === 'front-proxy' ? pki.frontProxyClient : client === 'other-ca' ? pki.admin : undefined;
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.user !== undefined) {
    headers['X-Remote-User'] = options.user;
    headers['X-Remote-Group'] = 'system:authenticated';
  }
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: serviceName,
        ca: serving.caPem,
        cert: pair === undefined ? undefined : readFileSync(pair.cert),
        key: pair === undefined ? undefined : readFileSync(pair.key),
        headers,
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

function values(item: MetricsItem | undefined): Record<string, string> {
  return Object.fromEntries((item?.metrics ?? []).map((metric) => [metric.name, metric.value]));
}

/** Asks until the answer holds the expected counts (Prometheus needs a window of samples first). */
async function settled(
  port: number,
  path: string,
  expected: (answer: Answer) => boolean,
): Promise<Answer> {
  const deadline = Date.now() + 30_000;
  let last: Answer | undefined;
  while (Date.now() < deadline) {
    last = await get(port, path, { user: 'alice' });
    if (expected(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`no settled answer for ${path}: ${JSON.stringify(last?.body)}`);
}

let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nmk-metrics-api-'));
  [pki, serving, fixture] = await Promise.all([
    generatePki({ dir, bindAddress: '127.0.0.1', kubernetesServiceIP: '198.19.240.1' }),
    createServingCertificate('nginx-mesh-metrics-svc', [serviceName], new Date(), 1),
    startFixtureServer(pods),
  ]);
  prometheus = await startPrometheus([
    {
      address: `127.0.0.1:${fixture.port}`,
      metricsPath: '/pods/web-1/metrics',
      labels: { namespace: 'shop', pod: 'web-1', deployment: 'web' },
    },
    {
      address: `127.0.0.1:${fixture.port}`,
      metricsPath: '/pods/db-0/metrics',
      labels: { namespace: 'shop', pod: 'db-0', statefulset: 'db' },
    },
  ]);
  port = await startApi(prometheus.url);
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
  await prometheus?.stop();
  await fixture?.close();
  await rm(dir, { recursive: true, force: true });
});

const latencies = {
  p99_response_latency: '19500m',
  p90_response_latency: '15',
  p50_response_latency: '6250m',
};

describe('the Traffic Metrics API over a real Prometheus', () => {
  it('lists deployments with both directions, counts over the window and latency quantiles', async () => {
    const answer = await settled(
      port,
      `${base}/namespaces/shop/deployments?t=5s`,
      (a) => a.body.items?.length === 2 && values(a.body.items?.[0]).success_count === '45',
    );
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      kind: 'TrafficMetricsList',
      apiVersion: 'metrics.smi-spec.io/v1alpha1',
      metadata: { selfLink: `${base}/namespaces/shop/deployments` },
      resource: { kind: 'Deployment', namespace: 'shop' },
    });
    const [from, to] = answer.body.items ?? [];
    expect(from).toMatchObject({
      kind: 'TrafficMetrics',
      metadata: { name: 'web', namespace: 'shop' },
      window: '5s',
      resource: { kind: 'Deployment', namespace: 'shop', name: 'web' },
      edge: { direction: 'from', resource: {} },
    });
    expect(from?.metrics?.map((metric) => metric.name)).toEqual([
      'p99_response_latency',
      'p90_response_latency',
      'p50_response_latency',
      'success_count',
      'failure_count',
    ]);
    expect(values(from)).toEqual({ ...latencies, success_count: '45', failure_count: '5' });
    expect(to?.edge).toEqual({ direction: 'to', resource: {} });
    expect(values(to)).toEqual({ ...latencies, success_count: '20', failure_count: '0' });
    expect(reviews).toContainEqual({
      user: 'alice',
      verb: 'list',
      resource: 'deployments',
      subresource: undefined,
    });
  });

  it('names the peers of a deployment as edges', async () => {
    const answer = await settled(
      port,
      `${base}/namespaces/shop/deployments/web/edges?t=5s`,
      (a) => a.body.items?.length === 2 && values(a.body.items?.[1]).success_count === '20',
    );
    expect(answer.body.resource).toEqual({ kind: 'Deployment', namespace: 'shop', name: 'web' });
    expect(answer.body.items?.map((item) => item.edge)).toEqual([
      { direction: 'from', resource: { kind: 'DaemonSet', namespace: 'edge', name: 'ingress' } },
      { direction: 'to', resource: { kind: 'StatefulSet', namespace: 'shop', name: 'db' } },
    ]);
    expect(values(answer.body.items?.[0])).toEqual({
      ...latencies,
      success_count: '45',
      failure_count: '5',
    });
  });

  it('answers one resource with its inbound traffic, and pods and namespaces too', async () => {
    const db = await settled(
      port,
      `${base}/namespaces/shop/statefulsets/db?t=5s`,
      (a) => a.status === 200 && values(a.body).success_count === '20',
    );
    expect(db.body).toMatchObject({
      kind: 'TrafficMetrics',
      metadata: {
        name: 'db',
        namespace: 'shop',
        selfLink: `${base}/namespaces/shop/statefulsets/db`,
      },
      edge: { direction: 'from', resource: {} },
    });
    const podEdges = await settled(
      port,
      `${base}/namespaces/shop/pods/web-1/edges?t=5s`,
      (a) => a.body.items?.length === 2,
    );
    expect(podEdges.body.items?.[0]?.edge?.resource).toEqual({
      kind: 'Pod',
      namespace: 'edge',
      name: 'ingress-x',
    });
    const namespaces = await settled(
      port,
      `${base}/namespaces?t=5s`,
      (a) => a.body.items?.length === 2 && values(a.body.items?.[0]).success_count === '65',
    );
    expect(namespaces.body.items?.[0]).toMatchObject({
      metadata: { name: 'shop', selfLink: `${base}/namespaces/shop` },
      resource: { kind: 'Namespace', name: 'shop' },
    });
    expect(values(namespaces.body.items?.[0]).failure_count).toBe('5');
  });

  it('answers a resource without traffic 404, naming it and the window', async () => {
    const answer = await get(port, `${base}/namespaces/shop/deployments/idle?t=5s`, {
      user: 'alice',
    });
    expect(answer).toEqual({
      status: 404,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'no traffic to deployments "idle" in namespace "shop" in the last 5s',
        reason: 'NotFound',
        code: 404,
      },
    });
  });

  it('refuses a window over an hour with 400 naming t', async () => {
    const answer = await get(port, `${base}/namespaces/shop/deployments?t=720h`, {
      user: 'alice',
    });
    expect(answer).toEqual({
      status: 400,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message:
          'invalid window t="720h": expected a duration from 1s to 1h0m0s, such as 30s or 5m',
        reason: 'BadRequest',
        code: 400,
      },
    });
  });

  it('serves discovery to the front-proxy even without a user', async () => {
    const answer = await get(port, `${base}`);
    expect(answer.status).toBe(200);
    expect(answer.body.kind).toBe('APIResourceList');
  });

  it('refuses clients without the front-proxy certificate, and requests naming no user', async () => {
    for (const client of ['none', 'other-ca'] as const) {
      const answer = await get(port, `${base}/namespaces/shop/pods`, { client, user: 'alice' });
      expect(answer.status).toBe(401);
      expect(answer.body.message).toMatch(
        /^Unauthorized: requests must come through the Kubernetes API server/,
      );
    }
    const anonymous = await get(port, `${base}/namespaces/shop/pods`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.message).toBe('Unauthorized: the request names no user');
  });

  it('answers 403 with the API server wording when the access review denies', async () => {
    const answer = await get(port, `${base}/namespaces/shop/deployments/web/edges`, {
      user: 'bob',
    });
    expect(answer.status).toBe(403);
    expect(answer.body.message).toBe(
      'deployments.metrics.smi-spec.io "web" is forbidden: User "bob" cannot get resource "deployments/edges" in API group "metrics.smi-spec.io" in the namespace "shop"',
    );
  });

  it('answers 503 naming the address when Prometheus is unreachable or not configured', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const down = await get(await startApi(closed), `${base}/namespaces/shop/pods`, {
      user: 'alice',
    });
    expect(down.status).toBe(503);
    expect(down.body.reason).toBe('ServiceUnavailable');
    expect(down.body.message).toMatch(
      new RegExp(`^unable to reach Prometheus at ${closed}: .*ECONNREFUSED`),
    );
    const unset = await get(await startApi(undefined), `${base}/namespaces/shop/pods`, {
      user: 'alice',
    });
    expect(unset.status).toBe(503);
    expect(unset.body.message).toBe(
      'Prometheus is not configured: start the metrics role with --prometheus-address <service-name>.<namespace>:<port> or an http(s) URL',
    );
  });
});
