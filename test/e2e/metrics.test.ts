// The mesh's metrics end to end: requests between two injected pods are counted by their sidecars,
// scraped by a real Prometheus, and read back by `nginx-meshctl top` through the Traffic Metrics
// API behind the real API server. After N requests `top deploy/<name>` reports N (within what one scrape interval
// of a 30 s window allows), and the success rate is the share the app does not fail on purpose.
// An ingress gateway's requests to the same app are counted the same way, under its Deployment.
import { execa } from 'execa';
import type { KubeRest } from '../cluster/harness/kube-rest';
import type { PodSummary } from '../cluster/support/kube';
import {
  deleteNamespace,
  testKubeconfig,
  testRest,
  waitFor,
  waitForNoMesh,
} from '../cluster/support/kube';
import {
  createInjectedNamespace,
  applyObjects,
  clusterIPOf,
  echoDeployment,
  httpService,
  meshctl as meshctlIn,
  netnsOf,
  readyPodOf,
  removeMesh,
  requestBatchFrom,
  shellDeployment,
  waitForSidecarsCurrent,
} from '../cluster/support/mesh-apps';
import { LOCAL_IMAGE_FLAGS } from '../support/images';
import { freePort, startPrometheus } from '../support/prometheus';
import type { TestPrometheus } from '../support/prometheus';
import type { TrafficMetricsList } from '../../src/manifests/traffic-metrics/types';
import { SIDECAR_METRICS_PORT } from '../../src/manifests/constants';

const meshNamespace = 'mesh-e2e-metrics';
const apps = 'e2e-metrics';
const FAIL_PERCENT = 10;
/** Requests in the measured batch. */
const N = 600;
/** Requests in the measured batch through the gateway (sent one at a time from this machine). */
const GATEWAY_N = 200;
const GATEWAY_DEPLOYMENT = 'edge-nginx-mesh';
/** Prometheus scrapes every second; top's window is 30 s. */
const SCRAPE_INTERVAL_S = 1;
const WINDOW_S = 30;
let rest: KubeRest;
let prometheus: TestPrometheus | undefined;
let clientNetns: string;
let webUrl: string;
let gatewayUrl: string;

const readyPod = (app: string): Promise<PodSummary> => readyPodOf(rest, apps, app);

/** What `top deploy/<name> -o json` prints: the deployment's edges as TrafficMetrics. */
async function topEdges(name: string): Promise<TrafficMetricsList> {
  const result = await execa(
    'dist/nginx-meshctl',
    ['--kubeconfig', testKubeconfig(), 'top', `deploy/${name}`, '-n', apps, '-o', 'json'],
    { reject: false, timeout: 60_000 },
  );
  if (result.exitCode !== 0) throw new Error(`top deploy/${name} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as TrafficMetricsList;
}

/** Success and failure counts of the edge to or from the deployment named peer. */
function edgeCounts(
  list: TrafficMetricsList,
  direction: 'from' | 'to',
  peer: string,
): { success: number; failure: number } | undefined {
  const item = list.items.find(
    (entry) => entry.edge.direction === direction && entry.edge.resource.name === peer,
  );
  if (item === undefined) return undefined;
  const value = (metric: string) =>
    Number(item.metrics.find((entry) => entry.name === metric)?.value ?? NaN);
  return { success: value('success_count'), failure: value('failure_count') };
}

/** The gateway's edge to the app, counted by the gateway as its outbound requests. */
function expectGatewayEdge(
  counts: { success: number; failure: number } | undefined,
  sent: Record<string, number>,
): void {
  expect(counts).toBeDefined();
  const total = (counts?.success ?? 0) + (counts?.failure ?? 0);
  expect(total).toBeGreaterThanOrEqual(GATEWAY_N);
  expect(total).toBeLessThanOrEqual(GATEWAY_N * (1 + (2 * SCRAPE_INTERVAL_S) / WINDOW_S));
  // Failures within the share one scrape interval may add.
  expect(Math.abs((counts?.failure ?? 0) / total - (sent['500'] ?? 0) / GATEWAY_N)).toBeLessThan(
    0.02,
  );
}

/** GETs through the gateway from this machine, one at a time: a count per status. */
async function gatewayBatch(count: number): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  for (let index = 0; index < count; index += 1) {
    const response = await fetch(gatewayUrl, { signal: AbortSignal.timeout(5_000) });
    await response.arrayBuffer();
    statuses[String(response.status)] = (statuses[String(response.status)] ?? 0) + 1;
  }
  return statuses;
}

/** Prometheus's current value of the web pod's inbound request counter, summed over codes. */
async function scrapedInbound(): Promise<number | undefined> {
  if (prometheus === undefined) return undefined;
  const query = encodeURIComponent(
    `sum(nginx_mesh_requests_total{direction="inbound",namespace="${apps}",deployment="web"})`,
  );
  const response = await fetch(`${prometheus.url}/api/v1/query?query=${query}`);
  const body = (await response.json()) as { data: { result: { value: [number, string] }[] } };
  const [first] = body.data.result;
  return first === undefined ? undefined : Number(first.value[1]);
}

beforeAll(async () => {
  rest = await testRest();
  await waitForNoMesh(rest);
  const host = new URL(rest.server).hostname;
  const port = await freePort(host);
  const deployed = await meshctlIn(meshNamespace, [
    'deploy',
    ...LOCAL_IMAGE_FLAGS,
    '--prometheus-address',
    `http://${host}:${port}`,
  ]);
  if (deployed.exitCode !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
  await createInjectedNamespace(rest, apps);
  await applyObjects([
    echoDeployment(apps, 'web', {
      labels: { app: 'web' },
      env: { FAIL_PERCENT: String(FAIL_PERCENT) },
    }),
    shellDeployment(apps, 'client'),
    httpService(apps, 'web', { app: 'web' }),
  ]);
  const [web, client] = await waitFor(
    'web and client Ready',
    async () => [await readyPod('web'), await readyPod('client')] as const,
    120_000,
    500,
  );
  await applyObjects([
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'edge', namespace: apps },
      spec: {
        gatewayClassName: 'nginx-mesh',
        listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }],
      },
    },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'edge-web', namespace: apps },
      spec: {
        parentRefs: [{ name: 'edge' }],
        rules: [{ backendRefs: [{ name: 'web', port: 80 }] }],
      },
    },
  ]);
  const gateway = await waitFor(
    'the gateway Ready',
    async () => readyPodOf(rest, apps, 'edge', 'gateway.networking.k8s.io/gateway-name'),
    180_000,
    1_000,
  );
  gatewayUrl = `http://${await clusterIPOf(rest, apps, GATEWAY_DEPLOYMENT)}/`;
  await waitForSidecarsCurrent(rest, meshNamespace);
  clientNetns = await netnsOf(client.status?.podIP ?? '');
  webUrl = `http://${await clusterIPOf(rest, apps, 'web')}/`;
  prometheus = await startPrometheus(
    [web, client, gateway].map((pod) => ({
      address: `${pod.status?.podIP ?? ''}:${SIDECAR_METRICS_PORT}`,
      metricsPath: '/metrics',
      labels: {
        namespace: apps,
        pod: pod.metadata.name,
        deployment:
          pod.metadata.labels?.app ?? pod.metadata.labels?.['nsm.nginx.com/deployment'] ?? '',
      },
    })),
    { host, port, intervalS: SCRAPE_INTERVAL_S },
  );
}, 300_000);

afterAll(async () => {
  await prometheus?.stop();
  await deleteNamespace(rest, apps);
  await removeMesh(meshNamespace);
  rest.close();
}, 200_000);

it('reports N requests after N requests, with the injected failure share', async () => {
  // The series exist (and are scraped) before the measured batch, so that the whole window sees
  // them: increase() counts from a series' first sample, not from zero. Twenty requests include
  // failures too, so both status classes have their series.
  const warm = await requestBatchFrom(clientNetns, webUrl, 20, 1);
  expect(Object.keys(warm.statuses).sort()).toEqual(['200', '500']);
  const warmThroughGateway = await gatewayBatch(20);
  expect(Object.keys(warmThroughGateway).sort()).toEqual(['200', '500']);
  const before = await waitFor(
    'the first requests scraped',
    async () => {
      const value = await scrapedInbound();
      return value !== undefined && value >= 20 ? value : undefined;
    },
    30_000,
    500,
  );
  await new Promise((resolve) => setTimeout(resolve, (WINDOW_S + 2) * 1000));

  const outcome = await requestBatchFrom(clientNetns, webUrl, N, 20);
  const sent = (outcome.statuses['200'] ?? 0) + (outcome.statuses['500'] ?? 0);
  expect(sent).toBe(N);
  const throughGateway = await gatewayBatch(GATEWAY_N);
  expect((throughGateway['200'] ?? 0) + (throughGateway['500'] ?? 0)).toBe(GATEWAY_N);
  await waitFor(
    'the batch scraped',
    async () => (((await scrapedInbound()) ?? 0) >= before + N + GATEWAY_N ? true : undefined),
    30_000,
    500,
  );
  // The server's edge from the client, and the client's edge to the server: both sidecars count.
  const inbound = edgeCounts(await topEdges('web'), 'from', 'client');
  const outbound = edgeCounts(await topEdges('client'), 'to', 'web');
  const fromGateway = edgeCounts(await topEdges(GATEWAY_DEPLOYMENT), 'to', 'web');
  process.stderr.write(
    `sent ${N} (${JSON.stringify(outcome.statuses)}); top: web inbound ${JSON.stringify(inbound)}, client outbound ${JSON.stringify(outbound)}; gateway ${JSON.stringify(throughGateway)}, top ${JSON.stringify(fromGateway)}\n`,
  );
  // increase() scales what the samples show to the whole window: at most one scrape interval's
  // share of the window over, and the samples never miss a request once scraped.
  const tolerance = N * ((2 * SCRAPE_INTERVAL_S) / WINDOW_S);
  for (const counts of [inbound, outbound]) {
    expect(counts).toBeDefined();
    const total = (counts?.success ?? 0) + (counts?.failure ?? 0);
    expect(total).toBeGreaterThanOrEqual(N);
    expect(total).toBeLessThanOrEqual(N + tolerance);
    // The app fails every tenth request it sees (its probes count too): 10% within a point.
    const failed = outcome.statuses['500'] ?? 0;
    expect(Math.abs((counts?.failure ?? 0) / total - failed / N)).toBeLessThan(0.01);
    expect(failed / N).toBeGreaterThan(FAIL_PERCENT / 100 - 0.02);
    expect(failed / N).toBeLessThan(FAIL_PERCENT / 100 + 0.02);
  }
  expectGatewayEdge(fromGateway, throughGateway);
}, 150_000);
