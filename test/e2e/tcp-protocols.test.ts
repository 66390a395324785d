// Several protocols on one Service on the test cluster, under strict mTLS: HTTP (port http),
// TCP echo (tcp-echo), a server-first protocol whose server speaks before the client (smtp) and
// UDP (udp). Through both sidecars HTTP and TCP reach the same pods; the banner arrives before
// the client sends a byte; idle TCP connections outlive nginx's default timeouts; and UDP, which
// the mesh does not proxy, passes beside the sidecars: it is answered, and neither of the
// sidecar's counters moves.
import type { KubeRest } from '../cluster/harness/kube-rest';
import type { PodSummary } from '../cluster/support/kube';
import {
  clusterIPOf,
  ECHO_PORT,
  echoDeployment,
  portsService,
  readyPodOf,
  shellDeployment,
  waitForSidecarConfig,
} from '../cluster/support/mesh-apps';
import { ECHO_BANNER_PORT, ECHO_TCP_PORT, ECHO_UDP_PORT } from '../cluster/apps/echo-ports';
import {
  SIDECAR_REQUESTS_METRIC,
  SIDECAR_TCP_CONNECTIONS_METRIC,
} from '../../src/manifests/constants';
import type {
  HttpOutcome,
  ProtocolClients,
  TcpOutcome,
  UdpOutcome,
} from './support/protocol-clients';
import type { ProtocolMesh } from './support/protocol-mesh';
import {
  compareHttpLatency,
  directPair,
  netnsOfPod,
  setUpProtocolMesh,
  tearDownProtocolMesh,
} from './support/protocol-mesh';
import { sidecarMetrics, sumOf } from './support/sidecar-metrics';

const meshNamespace = 'mesh-e2e-tcp';
const apps = 'e2e-tcp';
/** Without injection: the same server and client, to compare latencies without the mesh. */
const plain = 'e2e-tcp-plain';
/** Past a minute: longer than nginx's default proxy_read_timeout (60 s), its shortest idle limit. */
const HOLD_SECONDS = 70;

let mesh: ProtocolMesh | undefined;
let rest: KubeRest;
let clients: ProtocolClients;
let client: PodSummary;
let clientNetns: string;
let serverPod: string;
let serviceIP: string;
/** Connections held idle since the setup, to the TCP echo and the banner; checked last. */
let heldEcho: Promise<TcpOutcome>;
let heldBanner: Promise<TcpOutcome>;

const readyPod = (namespace: string, app: string): Promise<PodSummary> =>
  readyPodOf(rest, namespace, app);

function tcp(port: number, ...args: string[]): Promise<TcpOutcome> {
  return clients.run<TcpOutcome>(
    clientNetns,
    'tcp-client',
    [`${serviceIP}:${port}`, ...args],
    120_000,
  );
}

/** Everything the client's sidecar has counted: HTTP requests and TCP connections, all series. */
async function sidecarTotals(): Promise<{ requests: number; connections: number }> {
  const samples = await sidecarMetrics(client.status?.podIP ?? '');
  return {
    requests: sumOf(samples, SIDECAR_REQUESTS_METRIC, {}),
    connections: sumOf(samples, SIDECAR_TCP_CONNECTIONS_METRIC, {}),
  };
}

beforeAll(async () => {
  mesh = await setUpProtocolMesh({
    meshNamespace,
    apps,
    plain,
    deployFlags: ['--mtls-mode', 'strict'],
    clients: ['tcp-client', 'udp-client', 'http-client'],
    objects: [
      echoDeployment(apps, 'multi', { labels: { app: 'multi' } }),
      shellDeployment(apps, 'client'),
      portsService(apps, 'multi', { app: 'multi' }, [
        { name: 'http', port: 80, targetPort: ECHO_PORT },
        { name: 'tcp-echo', port: ECHO_TCP_PORT },
        { name: 'smtp', port: ECHO_BANNER_PORT },
        { name: 'udp', port: ECHO_UDP_PORT, protocol: 'UDP' },
      ]),
    ],
    ready: { [apps]: ['multi', 'client'] },
  });
  ({ rest, clients } = mesh);
  client = await readyPod(apps, 'client');
  clientNetns = await netnsOfPod(client);
  serverPod = (await readyPod(apps, 'multi')).metadata.name;
  serviceIP = await clusterIPOf(rest, apps, 'multi');
  await waitForSidecarConfig(
    rest,
    { meshNamespace, namespace: apps, app: 'client' },
    'the upstreams of multi',
    (config) => ['multi_80', 'multi_9000', 'multi_2525'].every((name) => config.includes(name)),
  );
  // Settled with a rejection handler at once: they are awaited only by the last test.
  const failed = (error: unknown): TcpOutcome => ({ error: String(error) });
  heldEcho = tcp(ECHO_TCP_PORT, 'hold', String(HOLD_SECONDS), 'echo').catch(failed);
  heldBanner = tcp(ECHO_BANNER_PORT, 'hold', String(HOLD_SECONDS), 'banner').catch(failed);
}, 300_000);

afterAll(() => tearDownProtocolMesh(mesh), 200_000);

describe('several protocols on one Service under strict mTLS', () => {
  it('answers HTTP and echoes TCP on the same Service, from the same pod', async () => {
    const answered = await clients.run<HttpOutcome>(clientNetns, 'http-client', [
      `http://${serviceIP}/`,
      'once',
    ]);
    expect(answered).toMatchObject({ status: 200, servedBy: serverPod });
    const echoed = await tcp(ECHO_TCP_PORT, 'echo', 'bytes across the mesh, and back');
    expect(echoed.received).toBe('bytes across the mesh, and back');
    expect(echoed.error).toBeUndefined();
  });

  it("delivers a server-first protocol's banner before the client sends anything", async () => {
    const outcome = await tcp(ECHO_BANNER_PORT, 'banner');
    const pair = await directPair(mesh as ProtocolMesh);
    const direct = await clients.run<TcpOutcome>(pair.clientNetns, 'tcp-client', [
      `${pair.server.status?.podIP ?? ''}:${ECHO_BANNER_PORT}`,
      'banner',
    ]);
    process.stderr.write(
      `banner: the server's close after QUIT reached the client ${String(outcome.closedAfterMs)}ms after connecting through the mesh, ${String(direct.closedAfterMs)}ms without it\n`,
    );
    expect(outcome.banner).toBe(`220 ${serverPod} ready\r\n`);
    expect(outcome.received).toBe(
      '250 HELO mesh\r\n250 MAIL FROM:<client@mesh>\r\n250 NOOP\r\n221 bye\r\n',
    );
    expect(outcome.closedByServer).toBe(true);
    expect(outcome.error).toBeUndefined();
  });

  it('answers UDP beside the sidecars: the datagram is answered and no counter moves', async () => {
    const before = await sidecarTotals();
    for (let index = 0; index < 5; index += 1) {
      const outcome = await clients.run<UdpOutcome>(clientNetns, 'udp-client', [
        `${serviceIP}:${ECHO_UDP_PORT}`,
        `datagram ${index}`,
      ]);
      expect(outcome).toMatchObject({ reply: `${serverPod} datagram ${index}`, timeout: false });
    }
    expect(await sidecarTotals()).toEqual(before);
  });

  it('measures 200 sequential HTTP requests through the mesh and without it', async () => {
    await compareHttpLatency(mesh as ProtocolMesh, 'HTTP GET', clientNetns, `http://${serviceIP}/`);
  });

  it(`keeps TCP connections idle for ${HOLD_SECONDS} s open: they still answer`, async () => {
    const [echo, banner] = await Promise.all([heldEcho, heldBanner]);
    expect(echo).toMatchObject({ closedDuringHold: false, received: 'after the hold\r\n' });
    expect(echo.heldMs).toBeGreaterThanOrEqual(HOLD_SECONDS * 1000);
    expect(banner).toMatchObject({
      banner: `220 ${serverPod} ready\r\n`,
      closedDuringHold: false,
      received: '250 after the hold\r\n',
    });
    expect(echo.error).toBeUndefined();
    expect(banner.error).toBeUndefined();
  }, 150_000);
});
