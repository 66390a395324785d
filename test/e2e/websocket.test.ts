// WebSockets through the mesh on the test cluster: a meshed client upgrades GET /ws on the echo
// server's Service (port http) through its own sidecar and the server's. The upgrade reaches the
// app and its 101 reaches the client, every message comes back exactly (text as text, binary as
// binary), an idle connection outlives nginx's default 60 s proxy read timeout, and the client's
// sidecar counts the upgraded request once, as 1xx.
import type { KubeRest } from '../cluster/harness/kube-rest';
import type { PodSummary } from '../cluster/support/kube';
import { waitFor } from '../cluster/support/kube';
import {
  clusterIPOf,
  echoDeployment,
  httpService,
  readyPodOf,
  shellDeployment,
  waitForSidecarConfig,
} from '../cluster/support/mesh-apps';
import { SIDECAR_REQUESTS_METRIC } from '../../src/manifests/constants';
import type { ProtocolClients, WebSocketOutcome } from './support/protocol-clients';
import type { ProtocolMesh } from './support/protocol-mesh';
import {
  compareHttpLatency,
  netnsOfPod,
  setUpProtocolMesh,
  tearDownProtocolMesh,
} from './support/protocol-mesh';
import { seriesText, sidecarMetrics, sumOf } from './support/sidecar-metrics';

const meshNamespace = 'mesh-e2e-websocket';
const apps = 'e2e-websocket';
/** Without injection: the same server and client, to compare latencies without the mesh. */
const plain = 'e2e-websocket-plain';
/** Longer than nginx's default proxy_read_timeout (60 s). */
const HOLD_SECONDS = 70;

let mesh: ProtocolMesh | undefined;
let rest: KubeRest;
let clients: ProtocolClients;
let client: PodSummary;
let clientNetns: string;
let serverPod: string;
let wsUrl: string;
/** The connection held idle since the setup; checked by the last test. */
let held: Promise<WebSocketOutcome>;

const readyPod = (namespace: string, app: string): Promise<PodSummary> =>
  readyPodOf(rest, namespace, app);

function ws(url: string, ...args: string[]): Promise<WebSocketOutcome> {
  return clients.run<WebSocketOutcome>(clientNetns, 'ws-client', [url, ...args], 120_000);
}

/** The client sidecar's outbound requests to the Service ws, per status class. */
async function outboundRequests(): Promise<{ byClass: Record<string, number>; series: string }> {
  const samples = await sidecarMetrics(client.status?.podIP ?? '');
  const labels = { direction: 'outbound', dst_service: 'ws', dst_namespace: apps };
  const byClass: Record<string, number> = {};
  for (const code of ['1xx', '2xx', '3xx', '4xx', '5xx'])
    byClass[code] = sumOf(samples, SIDECAR_REQUESTS_METRIC, { ...labels, code });
  return { byClass, series: seriesText(samples, SIDECAR_REQUESTS_METRIC, labels) };
}

beforeAll(async () => {
  mesh = await setUpProtocolMesh({
    meshNamespace,
    apps,
    plain,
    clients: ['ws-client', 'http-client'],
    objects: [
      echoDeployment(apps, 'ws-server', { labels: { app: 'ws-server' } }),
      shellDeployment(apps, 'client'),
      httpService(apps, 'ws', { app: 'ws-server' }),
    ],
    ready: { [apps]: ['ws-server', 'client'] },
  });
  ({ rest, clients } = mesh);
  client = await readyPod(apps, 'client');
  clientNetns = await netnsOfPod(client);
  serverPod = (await readyPod(apps, 'ws-server')).metadata.name;
  wsUrl = `ws://${await clusterIPOf(rest, apps, 'ws')}/ws`;
  await waitForSidecarConfig(
    rest,
    { meshNamespace, namespace: apps, app: 'client' },
    'the upstream of ws',
    (config) => config.includes('ws_80'),
  );
  // Settled with a rejection handler at once: it is awaited only by the last test.
  held = ws(wsUrl, 'hold', String(HOLD_SECONDS)).catch((error: unknown): WebSocketOutcome => ({
    error: String(error),
  }));
}, 300_000);

afterAll(() => tearDownProtocolMesh(mesh), 200_000);

describe('WebSockets through both sidecars', () => {
  it('upgrades, greets with the server pod, and echoes 100 text and 100 binary messages exactly', async () => {
    const outcome = await ws(wsUrl, 'echo', '100');
    // When the upgrade fails, the body is the app's answer to a plain GET: the headers it got.
    process.stderr.write(`WebSocket echo: ${JSON.stringify(outcome)}\n`);
    expect(outcome).toMatchObject({
      status: 101,
      hello: `hello ${serverPod}`,
      text: { sent: 100, matched: 100 },
      binary: { sent: 100, matched: 100 },
    });
    expect(outcome.error).toBeUndefined();
  });

  it('counts one upgraded connection once in the client sidecar, as 1xx', async () => {
    const before = await outboundRequests();
    const outcome = await ws(wsUrl, 'echo', '3');
    expect(outcome.status).toBe(101);
    // A request is counted when it completes: here, when the closed WebSocket is torn down.
    const after = await waitFor(
      'the closed WebSocket counted',
      async () => {
        const now = await outboundRequests();
        return now.byClass['1xx'] !== before.byClass['1xx'] ? now : undefined;
      },
      15_000,
      500,
    ).catch(() => outboundRequests());
    process.stderr.write(`client sidecar, outbound requests to ws:\n${after.series}\n`);
    const added = Object.fromEntries(
      Object.entries(after.byClass).map(([code, count]) => [
        code,
        count - (before.byClass[code] ?? 0),
      ]),
    );
    expect(added).toEqual({ '1xx': 1, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 });
  });

  it('measures 200 sequential HTTP requests through the mesh and without it', async () => {
    await compareHttpLatency(
      mesh as ProtocolMesh,
      'HTTP GET',
      clientNetns,
      `http://${await clusterIPOf(rest, apps, 'ws')}/`,
    );
  });

  it(`keeps a connection idle for ${HOLD_SECONDS} s open, and it still echoes`, async () => {
    const outcome = await held;
    expect(outcome).toMatchObject({
      status: 101,
      hello: `hello ${serverPod}`,
      text: { sent: 1, matched: 1 },
      binary: { sent: 1, matched: 1 },
    });
    expect(outcome.heldMs).toBeGreaterThanOrEqual(HOLD_SECONDS * 1000);
    expect(outcome.closeCode).toBeUndefined();
    expect(outcome.error).toBeUndefined();
  }, 150_000);
});
