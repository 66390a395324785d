// Raw TCP through the mesh and certificate rotation under load, on the test cluster: the mesh is
// deployed once with a registrar that issues SVIDs living a few seconds, and the sample apps are
// injected after it. A TCP echo crosses both sidecars; under deny mode a TrafficTarget with a
// TCPRoute admits one client identity and the other's connections are closed unanswered; and a
// minute of HTTP load between two meshed pods loses no request while every sidecar's SVID is
// replaced many times.
import { execa } from 'execa';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { REGISTRAR_NAME, SVID_FILE_NAME } from '../../src/manifests/constants';
import type { KubeRest } from '../cluster/harness/kube-rest';
import { inNetns } from '../cluster/support/node-access';
import { startWireCapture } from './support/wire-capture';
import { LOCAL_IMAGE_FLAGS } from '../support/images';
import type { PodSummary } from '../cluster/support/kube';
import { deleteNamespace, testRest, waitFor, waitForNoMesh } from '../cluster/support/kube';
import {
  createInjectedNamespace,
  applyObjects,
  clusterIPOf,
  echoDeployment,
  httpLoadFrom,
  kubectl,
  meshctl as meshctlIn,
  netnsOf,
  patchMeshConfig,
  podFiles,
  readyPodOf,
  removeMesh,
  requestFrom,
  shellDeployment,
  sidecarConfig,
  waitForSidecarConfig as waitForSidecarConfigIn,
  waitForSidecarsCurrent as waitForSidecarsCurrentIn,
} from '../cluster/support/mesh-apps';

const meshNamespace = 'mesh-tcp';
const apps = 'tcp-apps';
/** The echo server's TCP port (its TCP_PORT default). */
const TCP_ECHO_PORT = 9000;
/** The Service port in front of it; its name makes it a 'tcp' port of the snapshot. */
const TCP_SERVICE_PORT = 7000;
/** Lifetime of every SVID issued after the registrar is patched. */
const SVID_TTL_SECONDS = 8;
/** Bytes one TCP echo exchange sends: this text, repeated. */
const ECHO_BYTES = 16_384;
const ECHO_TEXT = 'mesh tcp echo ';
const LOAD_MS = 60_000;
const LOAD_CONCURRENCY = 10;
let rest: KubeRest;

function meshctl(args: readonly string[]) {
  return meshctlIn(meshNamespace, args);
}

const apply = applyObjects;
const readyPod = (app: string): Promise<PodSummary> => readyPodOf(rest, apps, app);
const clusterIP = (name: string): Promise<string> => clusterIPOf(rest, apps, name);
const waitForSidecarsCurrent = (): Promise<void> => waitForSidecarsCurrentIn(rest, meshNamespace);
const waitForSidecarConfig = (
  app: string,
  what: string,
  check: (config: string) => boolean,
): Promise<string> =>
  waitForSidecarConfigIn(rest, { meshNamespace, namespace: apps, app }, what, check);

/**
 * Has the registrar issue SVIDs that live SVID_TTL_SECONDS, by replacing its --svid-ttl argument,
 * and waits for the rollout. deploy's --mtls-svid-ttl takes hours or minutes only.
 */
async function shortenSvidTtl(): Promise<void> {
  const deployment = await rest.request<{
    spec: { template: { spec: { containers: { args?: string[] }[] } } };
  }>('GET', `/apis/apps/v1/namespaces/${meshNamespace}/deployments/${REGISTRAR_NAME}`);
  const containers = deployment.spec.template.spec.containers;
  const container = containers.findIndex((c) => c.args?.includes('--role=registrar') === true);
  const arg = containers[container]?.args?.findIndex((a) => a.startsWith('--svid-ttl=')) ?? -1;
  if (container < 0 || arg < 0) throw new Error(`no --svid-ttl argument in ${REGISTRAR_NAME}`);
  const patched = await kubectl([
    'patch',
    'deployment',
    REGISTRAR_NAME,
    '-n',
    meshNamespace,
    '--type',
    'json',
    '-p',
    JSON.stringify([
      {
        op: 'replace',
        path: `/spec/template/spec/containers/${container}/args/${arg}`,
        value: `--svid-ttl=${SVID_TTL_SECONDS}s`,
      },
    ]),
  ]);
  if (patched.exitCode !== 0) throw new Error(`patching the registrar failed: ${patched.stderr}`);
  const rolled = await kubectl([
    'rollout',
    'status',
    `deployment/${REGISTRAR_NAME}`,
    '-n',
    meshNamespace,
    '--timeout=120s',
  ]);
  if (rolled.exitCode !== 0) throw new Error(`registrar rollout failed: ${rolled.stderr}`);
}

/** An echo server that also declares its TCP echo port, running as serviceAccount. */
function echoServer(name: string, serviceAccount: string): object {
  const deployment = echoDeployment(apps, name, { labels: { app: name } }) as {
    spec: {
      template: {
        spec: { serviceAccountName?: string; containers: { ports: object[] }[] };
      };
    };
  };
  deployment.spec.template.spec.serviceAccountName = serviceAccount;
  for (const container of deployment.spec.template.spec.containers)
    container.ports.push({ name: 'tcp-echo', containerPort: TCP_ECHO_PORT });
  return deployment;
}

/** A shell client Deployment running as serviceAccount. */
function client(name: string, serviceAccount: string): object {
  const deployment = shellDeployment(apps, name) as {
    spec: { template: { spec: { serviceAccountName?: string } } };
  };
  deployment.spec.template.spec.serviceAccountName = serviceAccount;
  return deployment;
}

function serviceAccount(name: string): object {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: apps } };
}

/** What one TCP echo exchange from a pod got. */
interface EchoOutcome {
  /** The connection was established (to the client's own sidecar, when redirected). */
  readonly connected: boolean;
  /** Bytes that came back. */
  readonly echoed: number;
  /** They were exactly the bytes sent. */
  readonly intact: boolean;
  /** How the connection ended: "eof", "timeout" or "error <code>". */
  readonly ended: string;
  readonly ms: number;
}

/** How a client ends its side: at once after sending (half-close), or once all came back. */
type Closing = 'half-close' | 'after-echo';

/**
 * Opens a TCP connection from inside the pod's network namespace, sends ECHO_BYTES bytes, and reads
 * until the peer closes or timeoutMs passes.
 */
async function tcpEchoFrom(
  netns: string,
  host: string,
  port: number,
  closing: Closing = 'half-close',
  timeoutMs = 5_000,
): Promise<EchoOutcome> {
  const script = `
const net = require('node:net');
const payload = Buffer.alloc(${ECHO_BYTES}, ${JSON.stringify(ECHO_TEXT)});
const started = Date.now();
const chunks = [];
let connected = false;
let done = false;
const finish = (ended) => {
  if (done) return;
  done = true;
  const echoed = Buffer.concat(chunks);
  console.log(JSON.stringify({ connected, echoed: echoed.length, intact: echoed.equals(payload), ended, ms: Date.now() - started }));
  socket.destroy();
};
const halfClose = ${JSON.stringify(closing === 'half-close')};
let received = 0;
const socket = net.connect({ host: ${JSON.stringify(host)}, port: ${port} }, () => {
  connected = true;
  if (halfClose) socket.end(payload);
  else socket.write(payload);
});
socket.on('data', (chunk) => {
  chunks.push(chunk);
  received += chunk.length;
  if (!halfClose && received >= payload.length) socket.end();
});
socket.on('end', () => finish('eof'));
socket.on('close', () => finish('eof'));
socket.on('error', (error) => finish('error ' + (error.code ?? error.name)));
setTimeout(() => finish('timeout'), ${timeoutMs}).unref();`;
  const [file, args] = inNetns(netns, [process.execPath, '-e', script]);
  const result = await execa(file, args, { reject: false, timeout: timeoutMs + 10_000 });
  if (result.exitCode !== 0) throw new Error(`tcp echo from ${netns} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as EchoOutcome;
}

/** Serial numbers of the SVIDs in the volumes of the pod with this uid right now. */
function svidSerials(uid: string): string[] {
  const serials: string[] = [];
  for (const file of podFiles(uid, SVID_FILE_NAME)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const pem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(text)?.[0];
    if (pem !== undefined) serials.push(new X509Certificate(pem).serialNumber);
  }
  return serials;
}

/** How many times the sidecar of the pod with this uid logged a new SVID so far. */
let admittedNetns: string;
let otherNetns: string;

beforeAll(async () => {
  rest = await testRest();
  // One mesh at a time on the cluster: an earlier file's must be gone.
  await waitForNoMesh(rest);
  const deployed = await meshctl(['deploy', ...LOCAL_IMAGE_FLAGS]);
  if (deployed.exitCode !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
  // Before any app exists, so every sidecar gets short-lived SVIDs from its first one.
  await shortenSvidTtl();
  await createInjectedNamespace(rest, apps);
  await apply([
    serviceAccount('echo'),
    serviceAccount('admitted'),
    serviceAccount('other'),
    echoServer('echo', 'echo'),
    client('admitted', 'admitted'),
    client('other', 'other'),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace: apps },
      spec: {
        selector: { app: 'echo' },
        ports: [
          { name: 'http', port: 80, targetPort: 'http' },
          { name: 'tcp-echo', port: TCP_SERVICE_PORT, targetPort: 'tcp-echo' },
        ],
      },
    },
  ]);
  await waitFor(
    'the injected apps Ready',
    async () => {
      for (const app of ['echo', 'admitted', 'other']) await readyPod(app);
      return true;
    },
    120_000,
    500,
  );
  admittedNetns = await netnsOf((await readyPod('admitted')).status?.podIP ?? '');
  otherNetns = await netnsOf((await readyPod('other')).status?.podIP ?? '');
  await waitForSidecarConfig('admitted', 'the upstreams of echo', (config) =>
    [`echo_80`, `echo_${TCP_SERVICE_PORT}`].every((name) => config.includes(name)),
  );
}, 300_000);

afterAll(async () => {
  await deleteNamespace(rest, apps);
  await removeMesh(meshNamespace);
  rest.close();
}, 200_000);

describe('raw TCP and certificate rotation through the mesh', () => {
  it('echoes raw TCP from a meshed client through both sidecars, half-closed or not', async () => {
    const server = await readyPod('echo');
    const serverIp = server.status?.podIP ?? '';
    const host = await clusterIP('echo');
    // The client sidecar sends the Service port to its mTLS client server (8906); the server
    // sidecar terminates it (8904) and hands it to the app's TCP port.
    const clientConfig = sidecarConfig((await readyPod('admitted')).metadata.uid) ?? '';
    expect(clientConfig).toMatch(new RegExp(`${host}:${TCP_SERVICE_PORT} 127(\\.\\d+){3}:8906;`));
    const serverConfig = sidecarConfig(server.metadata.uid) ?? '';
    expect(serverConfig).toMatch(new RegExp(`\\n\\s+${TCP_ECHO_PORT} 127\\.1\\.\\d+\\.\\d+:8904;`));

    // The wire between the sidecars, seen on the client pod's interface.
    const capture = await startWireCapture(admittedNetns, serverIp, ECHO_TEXT);
    const echoes: EchoOutcome[] = [];
    for (const closing of ['after-echo', 'half-close'] as const)
      for (let index = 0; index < 3; index += 1)
        echoes.push(await tcpEchoFrom(admittedNetns, host, TCP_SERVICE_PORT, closing));
    const { counts: wire, raw } = await capture.stop();
    process.stderr.write(`tcp echo: ${JSON.stringify(echoes)}; wire: ${raw}\n`);
    for (const echo of echoes) expect(echo).toMatchObject({ echoed: ECHO_BYTES, intact: true });
    // Every byte went there and back, as TLS records, never as the plaintext sent.
    expect(wire.bytes).toBeGreaterThan(echoes.length * 2 * ECHO_BYTES);
    expect(wire.tlsRecords).toBeGreaterThan(0);
    expect(wire.needle).toBe(0);
  });

  it('closes TCP connections under deny mode unless a TrafficTarget with a TCPRoute admits the client', async () => {
    const host = await clusterIP('echo');
    await patchMeshConfig(meshNamespace, { accessControlMode: 'deny' });
    await apply([
      {
        apiVersion: 'specs.smi-spec.io/v1alpha3',
        kind: 'TCPRoute',
        metadata: { name: 'echo-tcp', namespace: apps },
        spec: {},
      },
      {
        apiVersion: 'access.smi-spec.io/v1alpha2',
        kind: 'TrafficTarget',
        metadata: { name: 'admitted-echo', namespace: apps },
        spec: {
          destination: { kind: 'ServiceAccount', name: 'echo', namespace: apps },
          sources: [{ kind: 'ServiceAccount', name: 'admitted', namespace: apps }],
          rules: [{ kind: 'TCPRoute', name: 'echo-tcp' }],
        },
      },
    ]);
    // The ServiceAccount's name appears only in the admitted SPIFFE ID (escaped in a regex).
    await waitForSidecarConfig('echo', 'deny mode with the admitted identity', (config) =>
      config.includes('admitted'),
    );
    const admitted = await tcpEchoFrom(admittedNetns, host, TCP_SERVICE_PORT);
    const denied: EchoOutcome[] = [];
    for (let index = 0; index < 3; index += 1)
      denied.push(await tcpEchoFrom(otherNetns, host, TCP_SERVICE_PORT));
    const deniedHttp = await requestFrom(otherNetns, `http://${host}/`);
    process.stderr.write(
      `deny mode: admitted ${JSON.stringify(admitted)}; other ${JSON.stringify(denied)}; other's HTTP ${deniedHttp}\n`,
    );
    expect(admitted).toMatchObject({ echoed: ECHO_BYTES, intact: true });
    for (const outcome of denied) {
      expect(outcome.echoed).toBe(0);
      expect(outcome.ended).not.toBe('timeout');
      expect(outcome.ms).toBeLessThan(5_000);
    }
    // A TCPRoute admits the whole destination, HTTP included; the other identity gets 403.
    expect(await requestFrom(admittedNetns, `http://${host}/`)).toBe('200');
    expect(deniedHttp).toBe('403');

    await patchMeshConfig(meshNamespace, { accessControlMode: 'allow' });
    await waitFor('the other client admitted again', async () =>
      (await requestFrom(otherNetns, `http://${host}/`)) === '200' ? true : undefined,
    );
    await waitForSidecarsCurrent();
  });

  it('loses no request in a minute of load while SVIDs are rotated every few seconds', async () => {
    const server = await readyPod('echo');
    const clientPod = await readyPod('admitted');
    const url = `http://${await clusterIP('echo')}/`;
    const load = httpLoadFrom(admittedNetns, url, LOAD_MS, LOAD_CONCURRENCY);
    const serverSerials = new Set<string>();
    const clientSerials = new Set<string>();
    const deadline = Date.now() + LOAD_MS;
    for (let sample = 0; sample < 120 && Date.now() < deadline; sample += 1) {
      for (const serial of svidSerials(server.metadata.uid)) serverSerials.add(serial);
      for (const serial of svidSerials(clientPod.metadata.uid)) clientSerials.add(serial);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    const outcome = await load;
    // Renewals are counted by the serials seen, sampled every second (a renewal every few
    // seconds), not by the agent's log lines: under this load the access log has the container's
    // log file rotated several times a minute, and its older lines leave the file read.
    const renewals = serverSerials.size - 1;
    const clientRenewals = clientSerials.size - 1;
    const rps = (outcome.requests / outcome.ms) * 1_000;
    process.stderr.write(
      `rotation under load: ${outcome.requests} requests in ${outcome.ms}ms (${rps.toFixed(0)} rps), ` +
        `${JSON.stringify(outcome.statuses)}; server SVIDs seen ${serverSerials.size}, renewals ${renewals}; ` +
        `client SVIDs seen ${clientSerials.size}, renewals ${clientRenewals}\n`,
    );
    expect(outcome.statuses).toEqual({ '200': outcome.requests });
    expect(outcome.requests).toBeGreaterThan(LOAD_CONCURRENCY * 60);
    expect(serverSerials.size).toBeGreaterThanOrEqual(5);
    expect(clientSerials.size).toBeGreaterThanOrEqual(5);
    // Renewal at about half of an 8 s life: neither stalled nor spinning.
    const expected = LOAD_MS / ((SVID_TTL_SECONDS * 1_000) / 2);
    for (const count of [renewals, clientRenewals]) {
      expect(count).toBeGreaterThanOrEqual(expected / 2);
      expect(count).toBeLessThanOrEqual(expected * 2);
    }
  });
});
