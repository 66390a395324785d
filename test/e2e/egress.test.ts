// Egress control on the test cluster: under strict mTLS a meshed pod reaches an address the mesh
// does not know (a pod outside the mesh that no Service selects) only when its annotation
// config.nsm.nginx.com/default-egress-allowed says so. Without it, HTTP is answered 403 with a
// body that names the annotation, and a TCP connection is closed before anything is echoed;
// with it, both reach the outsider directly, counted in the sidecar's metrics under the bounded
// destination dst_service="egress". In permissive mode every meshed pod reaches it.
import type { KubeRest } from '../cluster/harness/kube-rest';
import type { PodSummary } from '../cluster/support/kube';
import { waitFor } from '../cluster/support/kube';
import {
  ECHO_PORT,
  patchMeshConfig,
  readyPodOf,
  shellDeployment,
  waitForSidecarsCurrent,
} from '../cluster/support/mesh-apps';
import { ECHO_TCP_PORT } from '../cluster/apps/echo-ports';
import {
  DEFAULT_EGRESS_ALLOWED_ANNOTATION,
  EGRESS_SERVICE,
  SIDECAR_REQUESTS_METRIC,
  SIDECAR_TCP_CONNECTIONS_METRIC,
} from '../../src/manifests/constants';
import type { HttpOutcome, ProtocolClients, TcpOutcome } from './support/protocol-clients';
import type { ProtocolMesh } from './support/protocol-mesh';
import {
  compareHttpLatency,
  directPair,
  netnsOfPod,
  setUpProtocolMesh,
  tearDownProtocolMesh,
} from './support/protocol-mesh';
import { seriesText, sidecarMetrics, sumOf } from './support/sidecar-metrics';

const meshNamespace = 'mesh-e2e-egress';
const apps = 'e2e-egress';
/**
 * Not injected, and no Service selects its pods: its direct server (the outsider) is an address
 * outside what the mesh knows.
 */
const outside = 'e2e-egress-outside';

let mesh: ProtocolMesh | undefined;
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
  mesh = await setUpProtocolMesh({
    meshNamespace,
    apps,
    plain: outside,
    deployFlags: ['--mtls-mode', 'strict'],
    clients: ['http-client', 'tcp-client'],
    objects: [
      shellDeployment(apps, 'confined'),
      shellDeployment(apps, 'allowed', undefined, {
        annotations: { [DEFAULT_EGRESS_ALLOWED_ANNOTATION]: 'true' },
      }),
    ],
    ready: { [apps]: ['confined', 'allowed'] },
  });
  ({ rest, clients } = mesh);
  await waitForSidecarsCurrent(rest, meshNamespace);
  confinedNetns = await netnsOfPod(await readyPod(apps, 'confined'));
  allowed = await readyPod(apps, 'allowed');
  allowedNetns = await netnsOfPod(allowed);
  const outsider = (await directPair(mesh)).server;
  outsiderPod = outsider.metadata.name;
  outsiderHttp = `http://${outsider.status?.podIP ?? ''}:${ECHO_PORT}/`;
  outsiderTcp = `${outsider.status?.podIP ?? ''}:${ECHO_TCP_PORT}`;
}, 300_000);

afterAll(() => tearDownProtocolMesh(mesh), 200_000);

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
    await compareHttpLatency(
      mesh as ProtocolMesh,
      'HTTP GET to an outside pod',
      allowedNetns,
      outsiderHttp,
    );
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
