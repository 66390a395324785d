// A StatefulSet behind a headless Service on the test cluster, under strict mTLS: its pods have
// stable DNS names (db-0.db.<namespace>.svc.cluster.local, from the cluster's CoreDNS), and a
// meshed client that addresses one pod by its own address reaches exactly that pod, over HTTP and
// over TCP (the echo, and a banner that names the pod), through both sidecars. Under deny, a
// TrafficTarget that names the client's ServiceAccount admits it and refuses a client with
// another ServiceAccount.
import type { KubeRest } from '../cluster/harness/kube-rest';
import type { PodSummary } from '../cluster/support/kube';
import { isReady, listPods, waitFor } from '../cluster/support/kube';
import {
  applyObjects,
  ECHO_PORT,
  echoStatefulSet,
  patchMeshConfig,
  portsService,
  readyPodOf,
  serviceAccount,
  shellDeployment,
  waitForSidecarsCurrent,
} from '../cluster/support/mesh-apps';
import { ECHO_BANNER_PORT, ECHO_TCP_PORT } from '../cluster/apps/echo-ports';
import type {
  DnsOutcome,
  HttpOutcome,
  ProtocolClients,
  TcpOutcome,
} from './support/protocol-clients';
import type { ProtocolMesh } from './support/protocol-mesh';
import {
  compareHttpLatency,
  netnsOfPod,
  setUpProtocolMesh,
  tearDownProtocolMesh,
} from './support/protocol-mesh';

const meshNamespace = 'mesh-e2e-headless';
const apps = 'e2e-headless';
/** Without injection: a server and client pair, to compare latencies without the mesh. */
const plain = 'e2e-headless-plain';
const REPLICAS = 2;
const podNames = Array.from({ length: REPLICAS }, (_, index) => `db-${index}`);

let mesh: ProtocolMesh | undefined;
let rest: KubeRest;
let clients: ProtocolClients;
let clientNetns: string;
let otherNetns: string;
/** The address of each db pod, as the cluster's DNS answers for its name. */
const resolved = new Map<string, string>();

const readyPod = (namespace: string, app: string): Promise<PodSummary> =>
  readyPodOf(rest, namespace, app);

function http(netns: string, url: string, ...args: string[]): Promise<HttpOutcome> {
  return clients.run<HttpOutcome>(netns, 'http-client', [
    url,
    ...(args.length > 0 ? args : ['once']),
  ]);
}

function tcpEcho(netns: string, address: string, text: string): Promise<TcpOutcome> {
  return clients.run<TcpOutcome>(netns, 'tcp-client', [
    `${address}:${ECHO_TCP_PORT}`,
    'echo',
    text,
  ]);
}

/** The address DNS gave for the pod, or a failure naming it. */
function addressOf(pod: string): string {
  const address = resolved.get(pod);
  if (address === undefined) throw new Error(`${pod} was not resolved by the DNS test`);
  return address;
}

beforeAll(async () => {
  mesh = await setUpProtocolMesh({
    meshNamespace,
    apps,
    plain,
    deployFlags: ['--mtls-mode', 'strict'],
    clients: ['http-client', 'tcp-client', 'dns-client'],
    objects: [
      serviceAccount(apps, 'client'),
      serviceAccount(apps, 'other'),
      echoStatefulSet(apps, 'db', { replicas: REPLICAS, serviceName: 'db' }),
      portsService(
        apps,
        'db',
        { app: 'db' },
        [
          { name: 'http', port: ECHO_PORT },
          { name: 'tcp-echo', port: ECHO_TCP_PORT },
          // TCP whose first bytes name the serving pod.
          { name: 'smtp', port: ECHO_BANNER_PORT },
        ],
        { headless: true },
      ),
      shellDeployment(apps, 'client', undefined, { serviceAccountName: 'client' }),
      shellDeployment(apps, 'other', undefined, { serviceAccountName: 'other' }),
    ],
    ready: { [apps]: ['client', 'other'] },
    readyToo: async (kube) =>
      (await listPods(kube, apps, 'app=db')).filter(isReady).length === REPLICAS,
  });
  ({ rest, clients } = mesh);
  await waitForSidecarsCurrent(rest, meshNamespace);
  clientNetns = await netnsOfPod(await readyPod(apps, 'client'));
  otherNetns = await netnsOfPod(await readyPod(apps, 'other'));
}, 300_000);

afterAll(() => tearDownProtocolMesh(mesh), 200_000);

describe('a headless Service of a StatefulSet under strict mTLS', () => {
  it("resolves each pod's stable name through the cluster DNS to that pod", async () => {
    const dns = await rest.request<{ spec: { clusterIP: string } }>(
      'GET',
      '/api/v1/namespaces/kube-system/services/kube-dns',
    );
    const pods = await listPods(rest, apps, 'app=db');
    for (const pod of podNames) {
      const name = `${pod}.db.${apps}.svc.cluster.local`;
      // From the meshed client's network namespace, to the DNS Service as the pod's resolver asks.
      const outcome = await clients.run<DnsOutcome>(clientNetns, 'dns-client', [
        dns.spec.clusterIP,
        name,
      ]);
      const ip = pods.find((found) => found.metadata.name === pod)?.status?.podIP;
      expect(outcome).toEqual({ name, addresses: [ip] });
      resolved.set(pod, ip ?? '');
    }
  });

  it.each(podNames)('answers 20 HTTP requests to %s from that pod alone', async (pod) => {
    const outcome = await http(
      clientNetns,
      `http://${addressOf(pod)}:${ECHO_PORT}/`,
      'timed',
      '20',
    );
    expect(outcome.statuses).toEqual({ '200': 20 });
    expect(outcome.pods).toEqual({ [pod]: 20 });
  });

  it.each(podNames)('echoes TCP addressed to %s exactly, from that pod alone', async (pod) => {
    const outcome = await tcpEcho(clientNetns, addressOf(pod), `to ${pod}`);
    expect(outcome.received).toBe(`to ${pod}`);
    expect(outcome.error).toBeUndefined();
    const banners = new Set<string | undefined>();
    for (let index = 0; index < 10; index += 1) {
      const greeted = await clients.run<TcpOutcome>(clientNetns, 'tcp-client', [
        `${addressOf(pod)}:${ECHO_BANNER_PORT}`,
        'banner',
      ]);
      banners.add(greeted.banner);
    }
    expect([...banners]).toEqual([`220 ${pod} ready\r\n`]);
  });

  it('measures 200 sequential HTTP requests to db-0 through the mesh and without it', async () => {
    await compareHttpLatency(
      mesh as ProtocolMesh,
      'HTTP GET to a StatefulSet pod',
      clientNetns,
      `http://${addressOf('db-0')}:${ECHO_PORT}/`,
    );
  });

  it("under deny, admits the TrafficTarget's ServiceAccount and refuses another", async () => {
    await applyObjects([
      {
        apiVersion: 'specs.smi-spec.io/v1alpha3',
        kind: 'HTTPRouteGroup',
        metadata: { name: 'db-any', namespace: apps },
        spec: { matches: [{ name: 'any', pathRegex: '/.*' }] },
      },
      {
        apiVersion: 'specs.smi-spec.io/v1alpha3',
        kind: 'TCPRoute',
        metadata: { name: 'db-tcp', namespace: apps },
        spec: {},
      },
      {
        apiVersion: 'access.smi-spec.io/v1alpha2',
        kind: 'TrafficTarget',
        metadata: { name: 'db-from-client', namespace: apps },
        spec: {
          destination: { kind: 'ServiceAccount', name: 'default', namespace: apps },
          sources: [{ kind: 'ServiceAccount', name: 'client', namespace: apps }],
          rules: [
            { kind: 'HTTPRouteGroup', name: 'db-any', matches: ['any'] },
            { kind: 'TCPRoute', name: 'db-tcp' },
          ],
        },
      },
    ]);
    await patchMeshConfig(meshNamespace, { accessControlMode: 'deny' });
    await waitForSidecarsCurrent(rest, meshNamespace);
    const url = (pod: string): string => `http://${addressOf(pod)}:${ECHO_PORT}/`;
    const refused = await waitFor(
      'the other ServiceAccount refused',
      async () => {
        const outcome = await http(otherNetns, url('db-0'));
        return outcome.status === 200 ? undefined : outcome;
      },
      60_000,
      1_000,
    );
    process.stderr.write(`deny: the other client got ${JSON.stringify(refused)}\n`);
    expect(refused.status).toBe(403);
    for (const pod of podNames) {
      expect(await http(clientNetns, url(pod))).toMatchObject({ status: 200, servedBy: pod });
      expect((await tcpEcho(clientNetns, addressOf(pod), 'admitted')).received).toBe('admitted');
      expect((await http(otherNetns, url(pod))).status).toBe(403);
      const closed = await tcpEcho(otherNetns, addressOf(pod), 'refused');
      expect(closed.received).toBe('');
      expect(closed.closedByServer === true || closed.error !== undefined).toBe(true);
    }
  });
});
