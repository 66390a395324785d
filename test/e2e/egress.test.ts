// Egress control on the test cluster: under strict mTLS a meshed pod reaches an address the mesh
// does not know (a pod outside the mesh that no Service selects) only when its annotation
// config.nsm.nginx.com/default-egress-allowed says so. Without it, HTTP is answered 403 with a
// body that names the annotation, and a TCP connection is closed before anything is echoed;
// with it, both reach the outsider directly, counted in the sidecar's metrics under the bounded
// destination dst_service="egress". In permissive mode every meshed pod reaches it.
import type { KubeRest } from '../cluster/harness/kube-rest';
import type { PodSummary } from '../cluster/support/kube';
import {
  createNamespace,
  deleteNamespace,
  testRest,
  waitFor,
  waitForNoMesh,
} from '../cluster/support/kube';
import {
  applyObjects,
  createInjectedNamespace,
  ECHO_PORT,
  echoDeployment,
  meshctl as meshctlIn,
  netnsOf,
  patchMeshConfig,
  readyPodOf,
  removeMesh,
  shellDeployment,
  waitForSidecarsCurrent,
} from '../cluster/support/mesh-apps';
import { ECHO_TCP_PORT } from '../cluster/apps/echo-ports';
import { LOCAL_IMAGE_FLAGS } from '../support/images';
import {
  DEFAULT_EGRESS_ALLOWED_ANNOTATION,
  SIDECAR_REQUESTS_METRIC,
  SIDECAR_TCP_CONNECTIONS_METRIC,
} from '../../src/manifests/constants';
import type { HttpOutcome, ProtocolClients, TcpOutcome } from './support/protocol-clients';
import { bundleClients, reportLatency } from './support/protocol-clients';
import { seriesText, sidecarMetrics, sumOf } from './support/sidecar-metrics';

const meshNamespace = 'mesh-e2e-egress';
const apps = 'e2e-egress';
/** Not injected, and no Service selects its pods: an address outside what the mesh knows. */
const outside = 'e2e-egress-outside';
/** The bounded dst_service of traffic to addresses the mesh does not know. */
const EGRESS_SERVICE = 'egress';

let rest: KubeRest;
let clients: ProtocolClients;
/** Meshed, without the annotation. */
let confinedNetns: string;
/** Meshed, annotated default-egress-allowed: "true". */
let allowed: PodSummary;
let allowedNetns: string;
let outsiderPod: string;
let outsiderHttp: string;
let outsiderTcp: string;

const readyPod = (namespace: string, app: string): Promise<PodSummary> =>
  readyPodOf(rest, namespace, app);

function http(netns: string, url: string): Promise<HttpOutcome> {
  return clients.run<HttpOutcome>(netns, 'http-client', [url, 'once']);
}

function tcpEcho(netns: string, text: string): Promise<TcpOutcome> {
  return clients.run<TcpOutcome>(netns, 'tcp-client', [outsiderTcp, 'echo', text]);
}

/** What the allowed client's sidecar counted toward dst_service="egress" so far. */
async function egressCounts(): Promise<{ requests: number; connections: number; series: string }> {
  const samples = await sidecarMetrics(allowed.status?.podIP ?? '');
  const labels = { direction: 'outbound', dst_service: EGRESS_SERVICE };
  return {
    requests: sumOf(samples, SIDECAR_REQUESTS_METRIC, { ...labels, code: '2xx' }),
    connections: sumOf(samples, SIDECAR_TCP_CONNECTIONS_METRIC, { ...labels, code: '2xx' }),
    series: [SIDECAR_REQUESTS_METRIC, SIDECAR_TCP_CONNECTIONS_METRIC]
      .map((name) => `${name}:\n${seriesText(samples, name, { direction: 'outbound' })}`)
      .join('\n'),
  };
}

beforeAll(async () => {
  rest = await testRest();
  await waitForNoMesh(rest);
  const [deployed, bundled] = await Promise.all([
    meshctlIn(meshNamespace, ['deploy', ...LOCAL_IMAGE_FLAGS, '--mtls-mode', 'strict']),
    bundleClients(['http-client', 'tcp-client']),
  ]);
  clients = bundled;
  if (deployed.exitCode !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
  await createInjectedNamespace(rest, apps);
  await createNamespace(rest, outside);
  await applyObjects([
    shellDeployment(apps, 'confined'),
    shellDeployment(apps, 'allowed', undefined, {
      annotations: { [DEFAULT_EGRESS_ALLOWED_ANNOTATION]: 'true' },
    }),
    echoDeployment(outside, 'outsider', { labels: { app: 'outsider' } }),
    shellDeployment(outside, 'direct-client'),
  ]);
  await waitFor(
    'the clients and the outsider Ready',
    async () => {
      for (const app of ['confined', 'allowed']) await readyPod(apps, app);
      for (const app of ['outsider', 'direct-client']) await readyPod(outside, app);
      return true;
    },
    120_000,
    500,
  );
  await waitForSidecarsCurrent(rest, meshNamespace);
  confinedNetns = await netnsOf((await readyPod(apps, 'confined')).status?.podIP ?? '');
  allowed = await readyPod(apps, 'allowed');
  allowedNetns = await netnsOf(allowed.status?.podIP ?? '');
  const outsider = await readyPod(outside, 'outsider');
  outsiderPod = outsider.metadata.name;
  outsiderHttp = `http://${outsider.status?.podIP ?? ''}:${ECHO_PORT}/`;
  outsiderTcp = `${outsider.status?.podIP ?? ''}:${ECHO_TCP_PORT}`;
}, 300_000);

afterAll(async () => {
  clients?.remove();
  await deleteNamespace(rest, apps);
  await deleteNamespace(rest, outside);
  await removeMesh(meshNamespace);
  rest.close();
}, 200_000);

describe('egress to an address the mesh does not know, under strict mTLS', () => {
  it('answers HTTP from a pod without the annotation with 403, naming the annotation', async () => {
    const outcome = await http(confinedNetns, outsiderHttp);
    expect(outcome.status).toBe(403);
    expect(outcome.body).toContain('default-egress-allowed');
    expect(outcome.servedBy).toBeNull();
  });

  it('closes TCP from a pod without the annotation before anything is echoed', async () => {
    const outcome = await tcpEcho(confinedNetns, 'is anyone there');
    expect(outcome.received).toBe('');
    expect(outcome.closedByServer === true || outcome.error !== undefined).toBe(true);
  });

  it('lets a pod annotated default-egress-allowed reach the outsider directly, counted as egress', async () => {
    const before = await egressCounts();
    const reached = await http(allowedNetns, outsiderHttp);
    expect(reached).toMatchObject({ status: 200, servedBy: outsiderPod });
    const echoed = await tcpEcho(allowedNetns, 'egress echo');
    expect(echoed.received).toBe('egress echo');
    // What leaves is not parsed: the HTTP request and the TCP echo are two connections.
    const after = await waitFor(
      'the egress connections counted',
      async () => {
        const now = await egressCounts();
        return now.connections >= before.connections + 2 ? now : undefined;
      },
      15_000,
      500,
    ).catch(() => egressCounts());
    process.stderr.write(`allowed client's sidecar, outbound:\n${after.series}\n`);
    expect(after.connections - before.connections).toBe(2);
    expect(after.requests - before.requests).toBe(0);
  });

  it('measures 200 sequential HTTP requests to the outsider through the sidecar and without it', async () => {
    const meshed = await clients.run<HttpOutcome>(allowedNetns, 'http-client', [
      outsiderHttp,
      'timed',
      '200',
    ]);
    const direct = await clients.run<HttpOutcome>(
      await netnsOf((await readyPod(outside, 'direct-client')).status?.podIP ?? ''),
      'http-client',
      [outsiderHttp, 'timed', '200'],
    );
    reportLatency('HTTP GET to an outside pod (200 sequential requests)', meshed, direct);
    expect(meshed.statuses).toEqual({ '200': 200 });
    expect(direct.statuses).toEqual({ '200': 200 });
  });

  it('lets every meshed pod out once the mesh is permissive', async () => {
    await patchMeshConfig(meshNamespace, { mtls: { mode: 'permissive' } });
    await waitForSidecarsCurrent(rest, meshNamespace);
    const reached = await waitFor(
      'the confined client reaching the outsider',
      async () => {
        const outcome = await http(confinedNetns, outsiderHttp);
        return outcome.status === 200 ? outcome : undefined;
      },
      60_000,
      1_000,
    );
    expect(reached.servedBy).toBe(outsiderPod);
    expect((await tcpEcho(confinedNetns, 'now permissive')).received).toBe('now permissive');
  });
});
