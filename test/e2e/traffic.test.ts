// The mesh's traffic policies under real requests on the test cluster: nginx-meshctl deploys the
// mesh once, the webhook injects the sample apps, and requests leave a client pod's network
// namespace through its sidecar to the servers' sidecars. A TrafficSplit divides requests by
// weight, a RateLimit turns the excess into 503, a CircuitBreaker sends a failing Service's
// traffic to its fallback, strict mTLS refuses plaintext clients while meshed traffic crosses the
// wire as TLS records only, an injected Job completes, both sidecars reload under load without
// losing a request, and remove leaves the apps serving.
import { execa } from 'execa';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeRest } from '../cluster/harness/kube-rest';
import { podLogs } from '../cluster/support/node-access';
import { startWireCapture } from './support/wire-capture';
import type { PodSummary } from '../cluster/support/kube';
import {
  createNamespace,
  deleteNamespace,
  listPods,
  testRest,
  waitFor,
  waitForNoMesh,
} from '../cluster/support/kube';
import {
  createInjectedNamespace,
  applyObjects,
  clusterIPOf,
  ECHO_PORT,
  echoDeployment,
  httpLoadFrom,
  httpService,
  kubectl,
  meshctl as meshctlIn,
  MESHCTL_BINARY,
  sidecarReport,
  netnsOf,
  patchMeshConfig,
  readyPodOf,
  requestBatchFrom,
  removeMesh,
  requestFrom,
  shellDeployment,
  sidecarConnectionsIn,
  sidecarCounterFrom,
  waitForSidecarConfig as waitForSidecarConfigIn,
} from '../cluster/support/mesh-apps';
import { CLIENT_IMAGE, LOCAL_IMAGE_FLAGS } from '../support/images';

const meshNamespace = 'mesh-e2e';
const apps = 'e2e-apps';
/** A namespace without injection: its pods talk to the mesh in plaintext. */
const plain = 'e2e-plain';
/** A namespace without injection whose workload is injected by the CLI instead. */
const offline = 'e2e-offline';
let rest: KubeRest;
/** Reloads under load: how long the load runs, and at most how many new Services it sees. */
const RELOAD_LOAD_MS = 45_000;
const RELOAD_STEPS = 10;
/** Endpoint churn under load: the longest the load may run, which the churn must fit in. */
const CHURN_LOAD_MS = 180_000;

function meshctl(args: readonly string[]) {
  return meshctlIn(meshNamespace, args);
}

const apply = applyObjects;
const readyPod = (namespace: string, app: string): Promise<PodSummary> =>
  readyPodOf(rest, namespace, app);
const clusterIP = (name: string): Promise<string> => clusterIPOf(rest, apps, name);
const waitForSidecarConfig = (
  app: string,
  what: string,
  check: (config: string) => boolean,
): Promise<string> =>
  waitForSidecarConfigIn(rest, { meshNamespace, namespace: apps, app }, what, check);
const patchMtlsMode = (mode: string): Promise<void> =>
  patchMeshConfig(meshNamespace, { mtls: { mode } });

/** Scales a Deployment of apps and waits until that many of its pods are Ready. */
async function scale(name: string, replicas: number): Promise<void> {
  const scaled = await kubectl([
    'scale',
    `deployment/${name}`,
    '-n',
    apps,
    `--replicas=${replicas}`,
  ]);
  if (scaled.exitCode !== 0) throw new Error(scaled.stderr);
  await rolledOut(name);
}

/** Waits until a Deployment of apps has rolled out: all its replicas updated, Ready, and alone. */
async function rolledOut(name: string): Promise<void> {
  const status = await kubectl([
    ...['rollout', 'status', `deployment/${name}`, '-n', apps, '--timeout=120s'],
  ]);
  if (status.exitCode !== 0) throw new Error(`${name} did not roll out: ${status.stderr}`);
}

async function waitForReplicas(name: string, replicas: number): Promise<void> {
  await rolledOut(name);
  const pods = await listPods(rest, apps, `app=${name}`);
  expect(pods.filter((pod) => pod.status?.phase === 'Running').length).toBe(replicas);
}

/** Requests per serving pod whose name starts with prefix. */
function servedBy(pods: Record<string, number>, prefix: string): number {
  return Object.entries(pods)
    .filter(([pod]) => pod.startsWith(prefix))
    .reduce((sum, [, count]) => sum + count, 0);
}

let clientNetns: string;

/** What the containers of the pod with this uid wrote (from the node's log files). */
function jobLog(uid: string): string {
  return Object.entries(podLogs(uid))
    .map(([container, text]) => `${container}: ${text.slice(-2000)}`)
    .join('\n');
}

beforeAll(async () => {
  rest = await testRest();
  // One mesh at a time on the cluster: an earlier file's must be gone.
  await waitForNoMesh(rest);
  const deployed = await meshctl(['deploy', ...LOCAL_IMAGE_FLAGS]);
  if (deployed.exitCode !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
  await createInjectedNamespace(rest, apps);
  await createNamespace(rest, plain);
  await apply([
    echoDeployment(apps, 'web-v1', { labels: { app: 'web-v1', service: 'web' } }),
    echoDeployment(apps, 'web-v2', { labels: { app: 'web-v2', service: 'web' } }),
    // Ready (no probe) but nothing listens on its port: its sidecar answers 502.
    shellDeployment(apps, 'broken', ECHO_PORT),
    shellDeployment(apps, 'client'),
    shellDeployment(plain, 'outsider'),
    httpService(apps, 'web', { service: 'web' }),
    httpService(apps, 'web-v1', { app: 'web-v1' }),
    httpService(apps, 'web-v2', { app: 'web-v2' }),
    httpService(apps, 'broken', { app: 'broken' }),
  ]);
  await waitFor(
    'the injected apps and the outsider Ready',
    async () => {
      for (const app of ['web-v1', 'web-v2', 'broken', 'client']) await readyPod(apps, app);
      await readyPod(plain, 'outsider');
      return true;
    },
    120_000,
    500,
  );
  const client = await readyPod(apps, 'client');
  clientNetns = await netnsOf(client.status?.podIP ?? '');
  // The client's sidecar knows every Service before the tests send traffic.
  await waitForSidecarConfig('client', 'the upstreams of web-v1, web-v2 and broken', (config) =>
    ['web_v1_80', 'web_v2_80', 'broken_80'].every((name) => config.includes(name)),
  );
}, 300_000);

afterAll(async () => {
  await deleteNamespace(rest, apps);
  await deleteNamespace(rest, plain);
  await deleteNamespace(rest, offline);
  await removeMesh(meshNamespace);
  rest.close();
}, 200_000);

describe('traffic through the mesh', () => {
  it('divides requests 90/10 between the backends of a TrafficSplit', async () => {
    await apply([
      {
        apiVersion: 'split.smi-spec.io/v1alpha3',
        kind: 'TrafficSplit',
        metadata: { name: 'web-canary', namespace: apps },
        spec: {
          service: 'web',
          backends: [
            { service: 'web-v1', weight: 90 },
            { service: 'web-v2', weight: 10 },
          ],
        },
      },
    ]);
    await waitForSidecarConfig('client', 'the split', (config) => config.includes('split_clients'));
    const started = Date.now();
    const outcome = await requestBatchFrom(
      clientNetns,
      `http://${await clusterIP('web')}/`,
      2000,
      20,
    );
    const v1 = servedBy(outcome.pods, 'web-v1-');
    const v2 = servedBy(outcome.pods, 'web-v2-');
    process.stderr.write(
      `split: web-v1 ${(v1 / 20).toFixed(2)}%, web-v2 ${(v2 / 20).toFixed(2)}% of 2000 in ${Date.now() - started}ms\n`,
    );
    expect(outcome.statuses).toEqual({ '200': 2000 });
    expect(v1 + v2).toBe(2000);
    expect(v1 / 2000).toBeGreaterThanOrEqual(0.85);
    expect(v1 / 2000).toBeLessThanOrEqual(0.95);
  });

  it('answers a pod that calls a Service whose only endpoint is itself, over mTLS', async () => {
    // The sidecar's connection to its own pod address never meets PREROUTING; without the
    // init rule that sends it inbound, it reached the app in plaintext and the handshake failed.
    const self = await readyPod(apps, 'web-v1');
    const selfNetns = await netnsOf(self.status?.podIP ?? '');
    const outcome = await requestBatchFrom(
      selfNetns,
      `http://${await clusterIP('web-v1')}/`,
      20,
      2,
    );
    expect(outcome.statuses).toEqual({ '200': 20 });
    expect(servedBy(outcome.pods, 'web-v1-')).toBe(20);
  });

  it('routes by an HTTPRoute on the Service, which takes over from its TrafficSplit', async () => {
    await apply([
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'web-paths', namespace: apps },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 80 }],
          rules: [
            {
              matches: [{ path: { type: 'PathPrefix', value: '/v2' } }],
              backendRefs: [{ name: 'web-v2', port: 80 }],
            },
            {
              matches: [{ path: { type: 'PathPrefix', value: '/' } }],
              backendRefs: [
                { name: 'web-v1', port: 80 },
                { name: 'missing', port: 80, weight: 0 },
              ],
            },
          ],
        },
      },
    ]);
    await waitForSidecarConfig('client', 'the route', (config) =>
      config.includes('$mesh_route_match'),
    );
    const status = async (kind: string, name: string): Promise<unknown> => {
      const read = await kubectl(['get', kind, name, '-n', apps, '-o', 'json']);
      return (JSON.parse(read.stdout) as { status?: unknown }).status;
    };
    const conditions = await waitFor('the route status', async () => {
      const parents = (
        (await status('httproute', 'web-paths')) as {
          parents?: {
            controllerName: string;
            conditions: { type: string; status: string; reason: string }[];
          }[];
        }
      )?.parents;
      return parents?.[0]?.conditions;
    });
    expect(conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Accepted', 'True', 'Accepted'],
      ['ResolvedRefs', 'False', 'BackendNotFound'],
    ]);
    const split = await waitFor('the split overridden', async () => {
      const found = (
        (await status('trafficsplit', 'web-canary')) as {
          conditions?: { type: string; status: string; reason: string }[];
        }
      )?.conditions?.find((c) => c.type === 'Accepted');
      return found?.reason === 'OverriddenByHTTPRoute' ? found : undefined;
    });
    expect(split?.status).toBe('False');
    const web = await clusterIP('web');
    const toV2 = await requestBatchFrom(clientNetns, `http://${web}/v2/items`, 200, 10);
    const toV1 = await requestBatchFrom(clientNetns, `http://${web}/items`, 200, 10);
    expect(toV2.statuses).toEqual({ '200': 200 });
    expect(servedBy(toV2.pods, 'web-v2-')).toBe(200);
    expect(toV1.statuses).toEqual({ '200': 200 });
    expect(servedBy(toV1.pods, 'web-v1-')).toBe(200);
    // Without the route, the TrafficSplit routes the Service again.
    const deleted = await kubectl(['delete', 'httproute', 'web-paths', '-n', apps]);
    expect(deleted.exitCode).toBe(0);
    await waitForSidecarConfig(
      'client',
      'the split back',
      (config) => config.includes('split_clients') && !config.includes('$mesh_route_match'),
    );
  });

  it('lets clients in through a Gateway over HTTP and HTTPS, to meshed backends, strict mTLS included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'e2e-gateway-'));
    const [certFile, keyFile] = [join(dir, 'tls.crt'), join(dir, 'tls.key')];
    await execa('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=gw.e2e.test'],
      ...['-addext', 'subjectAltName=DNS:gw.e2e.test'],
    ]);
    const base64 = (file: string): string => readFileSync(file).toString('base64');
    await apply([
      {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/tls',
        metadata: { name: 'edge-cert', namespace: apps },
        data: { 'tls.crt': base64(certFile), 'tls.key': base64(keyFile) },
      },
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'edge', namespace: apps },
        spec: {
          gatewayClassName: 'nginx-mesh',
          listeners: [
            { name: 'http', port: 80, protocol: 'HTTP' },
            {
              name: 'https',
              port: 443,
              protocol: 'HTTPS',
              hostname: 'gw.e2e.test',
              tls: { certificateRefs: [{ name: 'edge-cert' }] },
            },
          ],
        },
      },
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'edge-routes', namespace: apps },
        spec: {
          parentRefs: [{ name: 'edge' }],
          rules: [
            {
              matches: [{ path: { type: 'PathPrefix', value: '/v2' } }],
              backendRefs: [{ name: 'web-v2', port: 80 }],
            },
            { backendRefs: [{ name: 'web-v1', port: 80 }] },
          ],
        },
      },
    ]);
    interface Condition {
      type: string;
      status: string;
      reason: string;
    }
    const gatewayStatus = async (): Promise<{
      addresses?: { value: string }[];
      conditions?: Condition[];
      listeners?: { name: string; attachedRoutes: number; conditions: Condition[] }[];
    }> => {
      const read = await kubectl(['get', 'gateway', 'edge', '-n', apps, '-o', 'json']);
      return (JSON.parse(read.stdout) as { status?: object }).status ?? {};
    };
    const address = await waitFor(
      'the Gateway Programmed, with an address',
      async () => {
        const status = await gatewayStatus();
        const programmed = status.conditions?.find((c) => c.type === 'Programmed');
        return programmed?.status === 'True' ? status.addresses?.[0]?.value : undefined;
      },
      240_000,
      1_000,
    );
    const status = await gatewayStatus();
    expect(status.conditions?.map((c) => [c.type, c.status])).toEqual([
      ['Accepted', 'True'],
      ['Programmed', 'True'],
    ]);
    expect(status.listeners?.map((l) => [l.name, l.attachedRoutes])).toEqual([
      ['http', 1],
      ['https', 1],
    ]);
    // From outside the cluster (this machine routes to cluster addresses through the node).
    const batch = async (url: string, count: number): Promise<Record<string, number>> => {
      const served: Record<string, number> = {};
      for (let index = 0; index < count; index += 1) {
        const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
        await response.arrayBuffer();
        const key = `${response.status} ${(response.headers.get('x-served-by') ?? '').replace(/-[^-]+-[^-]+$/, '')}`;
        served[key] = (served[key] ?? 0) + 1;
      }
      return served;
    };
    const https = async (path: string): Promise<string> => {
      const result = await execa(
        'curl',
        [
          ...[
            '-sS',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code} %header{x-served-by}',
            '--max-time',
            '5',
          ],
          ...['--cacert', certFile, '--resolve', `gw.e2e.test:443:${address}`],
          `https://gw.e2e.test${path}`,
        ],
        { reject: false },
      );
      return `${result.stdout.replace(/-[^-]+-[^-]+$/, '')}${result.stderr}`;
    };
    expect(await batch(`http://${address}/v2/items`, 40)).toEqual({ '200 web-v2': 40 });
    // The node's port of the gateway's Service, as a load balancer outside the cluster would call.
    const jsonpath = async (args: string[], path: string): Promise<string> =>
      (await kubectl([...args, '-o', `jsonpath=${path}`])).stdout.trim();
    const nodePort = await jsonpath(
      ['get', 'service', 'edge-nginx-mesh', '-n', apps],
      '{.spec.ports[?(@.port==80)].nodePort}',
    );
    const nodeIP = await jsonpath(
      ['get', 'nodes'],
      '{.items[0].status.addresses[?(@.type=="InternalIP")].address}',
    );
    expect(await batch(`http://${nodeIP}:${nodePort}/v2/items`, 10)).toEqual({ '200 web-v2': 10 });
    expect(await batch(`http://${address}/items`, 40)).toEqual({ '200 web-v1': 40 });
    expect(await https('/v2/items')).toBe('200 web-v2');

    // Under strict mTLS the backends take only mTLS: the gateway holds the mesh identity.
    await patchMtlsMode('strict');
    const outsider = await netnsOf((await readyPod(plain, 'outsider')).status?.podIP ?? '');
    const direct = `http://${(await readyPod(apps, 'web-v2')).status?.podIP ?? ''}:${ECHO_PORT}/`;
    await waitFor(
      'plaintext refused by web-v2',
      async () => ((await requestFrom(outsider, direct)) === '200' ? undefined : true),
      60_000,
      500,
    );
    expect(await batch(`http://${address}/v2/items`, 20)).toEqual({ '200 web-v2': 20 });
    expect(await https('/items')).toBe('200 web-v1');
    await patchMtlsMode('permissive');
    await waitFor('plaintext admitted again', async () =>
      (await requestFrom(outsider, direct)) === '200' ? true : undefined,
    );

    // The controller may write Secrets anywhere as far as RBAC goes; admission confines it to
    // its gateways' own objects.
    const planted = await kubectl([
      ...['create', 'secret', 'generic', 'planted', '-n', apps, '--from-literal=a=b'],
      `--as=system:serviceaccount:${meshNamespace}:nginx-mesh-controller`,
    ]);
    expect(planted.exitCode).not.toBe(0);
    expect(planted.stderr).toContain("may write only a gateway's objects");

    // The Gateway owns what serves it: deleting it removes the gateway's Deployment.
    expect((await kubectl(['delete', 'gateway', 'edge', '-n', apps])).exitCode).toBe(0);
    await waitFor(
      "the gateway's Deployment gone",
      async () => {
        const found = await kubectl(['get', 'deployment', 'edge-nginx-mesh', '-n', apps]);
        return found.exitCode !== 0 ? true : undefined;
      },
      120_000,
      1_000,
    );
    await kubectl(['delete', 'httproute', 'edge-routes', '-n', apps]);

    // One that stays until remove, which takes what the mesh made for it.
    await apply([
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'kept', namespace: apps },
        spec: {
          gatewayClassName: 'nginx-mesh',
          listeners: [{ name: 'http', port: 8080, protocol: 'HTTP' }],
        },
      },
    ]);
    await waitFor(
      "the kept Gateway's Deployment",
      async () =>
        (await kubectl(['get', 'deployment', 'kept-nginx-mesh', '-n', apps])).exitCode === 0
          ? true
          : undefined,
      60_000,
      1_000,
    );
  });

  it('answers 503 to requests over a RateLimit, and 200 again after a pause', async () => {
    const limit = {
      apiVersion: 'specs.smi.nginx.com/v1alpha2',
      kind: 'RateLimit',
      metadata: { name: 'web-v2-limit', namespace: apps },
      spec: {
        destination: { kind: 'Deployment', name: 'web-v2', namespace: apps },
        name: 'web-v2-limit',
        rate: '5r/s',
        burst: 0,
      },
    };
    await apply([limit]);
    await waitForSidecarConfig('web-v2', 'the rate limit', (config) =>
      config.includes('rate=5r/s'),
    );
    const url = `http://${await clusterIP('web-v2')}/`;
    const outcome = await requestBatchFrom(clientNetns, url, 50, 50);
    process.stderr.write(`rate limit: ${JSON.stringify(outcome.statuses)} of 50 at once\n`);
    const ok = outcome.statuses['200'] ?? 0;
    const limited = outcome.statuses['503'] ?? 0;
    expect(ok + limited).toBe(50);
    expect(ok).toBeGreaterThanOrEqual(1);
    expect(ok).toBeLessThanOrEqual(5);
    expect(limited).toBeGreaterThanOrEqual(45);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await requestFrom(clientNetns, url)).toBe('200');
    const deleted = await kubectl(['delete', 'ratelimit', 'web-v2-limit', '-n', apps]);
    expect(deleted.exitCode).toBe(0);
  });

  it('sends the traffic of a failing Service to the fallback of its CircuitBreaker', async () => {
    const url = `http://${await clusterIP('broken')}/`;
    // Without the breaker the failure reaches the client.
    expect(await requestFrom(clientNetns, url)).toBe('502');
    await apply([
      {
        apiVersion: 'specs.smi.nginx.com/v1alpha1',
        kind: 'CircuitBreaker',
        metadata: { name: 'broken-breaker', namespace: apps },
        spec: {
          destination: { kind: 'Service', name: 'broken', namespace: apps },
          errors: 2,
          timeoutSeconds: 30,
          fallback: { service: `${apps}/web-v1`, port: 80 },
        },
      },
    ]);
    await waitForSidecarConfig('client', 'the fallback server', (config) =>
      config.includes(' backup down;'),
    );
    const outcome = await requestBatchFrom(clientNetns, url, 20, 5);
    process.stderr.write(`circuit breaker: ${JSON.stringify(outcome)}\n`);
    expect(outcome.statuses).toEqual({ '200': 20 });
    expect(servedBy(outcome.pods, 'web-v1-')).toBe(20);
  });

  it('runs an injected Job that talks to the web Service to completion', async () => {
    const script = [
      'set -ex',
      'exec 3<>/dev/tcp/$WEB_SERVICE_HOST/$WEB_SERVICE_PORT',
      'printf "GET /from-a-job HTTP/1.0\\r\\n\\r\\n" >&3',
      'answer=$(cat <&3)',
      'echo "$answer"',
      'echo "$answer" | grep -q "^HTTP/1.[01] 200"',
      'echo "$answer" | grep -q "\\"path\\":\\"/from-a-job\\""',
    ].join('\n');
    await apply([
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'caller', namespace: apps },
        spec: {
          backoffLimit: 0,
          template: {
            spec: {
              restartPolicy: 'Never',
              terminationGracePeriodSeconds: 2,
              containers: [
                { name: 'caller', image: CLIENT_IMAGE, command: ['bash', '-c', script] },
              ],
            },
          },
        },
      },
    ]);
    const outcome = await waitFor(
      'the injected Job to finish',
      async () => {
        const job = await rest.request<{
          status?: { conditions?: { type: string; status: string }[] };
        }>('GET', `/apis/batch/v1/namespaces/${apps}/jobs/caller`);
        return job.status?.conditions?.find(
          (c) => c.status === 'True' && ['Complete', 'Failed'].includes(c.type),
        )?.type;
      },
      90_000,
      500,
    );
    const [pod] = await listPods(rest, apps, 'job-name=caller');
    if (outcome !== 'Complete') process.stderr.write(`job: ${jobLog(pod?.metadata.uid ?? '')}\n`);
    expect(outcome).toBe('Complete');
    expect(
      (pod as { metadata: { annotations?: Record<string, string> } } | undefined)?.metadata
        .annotations?.['injector.nsm.nginx.com/status'],
    ).toBe('injected');
  });

  it('meshes a workload injected offline by nginx-meshctl inject: it finds the mesh and its peers by DNS name', async () => {
    await createNamespace(rest, offline);
    // The manifest a user writes, injected without the cluster at hand (no kubeconfig) and with
    // no flag that names an address: only the mesh's namespace, as for any mesh not in the
    // default one.
    const manifest = JSON.stringify(shellDeployment(offline, 'caller'));
    const injected = await execa(MESHCTL_BINARY, ['inject', '-n', meshNamespace], {
      input: manifest,
      reject: false,
      env: { KUBECONFIG: join(tmpdir(), 'no-such-kubeconfig') },
    });
    expect(injected.stderr).not.toContain('rror');
    expect(injected.exitCode).toBe(0);
    expect(injected.stdout).not.toMatch(/--nats-url|--registrar-url/);
    const applied = await kubectl(['apply', '-f', '-'], injected.stdout);
    expect(applied.exitCode).toBe(0);
    const caller = await waitFor(
      'the offline-injected caller to be Ready',
      () => readyPod(offline, 'caller').catch(() => undefined),
      120_000,
      500,
    );
    // Ready means configured: its agent reached the registrar and NATS by their Service names.
    const report = await sidecarReport(rest, meshNamespace);
    expect(report.sidecars.map((sidecar) => sidecar.pod)).toContain(
      `${offline}/${caller.metadata.name}`,
    );
    const call = await kubectl([
      ...['exec', '-n', offline, caller.metadata.name, '-c', 'sh', '--'],
      ...['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5'],
      `http://web-v1.${apps}.svc.cluster.local/`,
    ]);
    expect(call.stdout).toBe('200');
  });

  it('refuses plaintext clients under strict mTLS and carries only TLS between sidecars', async () => {
    const server = await readyPod(apps, 'web-v1');
    const serverIp = server.status?.podIP ?? '';
    const outsider = await netnsOf((await readyPod(plain, 'outsider')).status?.podIP ?? '');
    const direct = `http://${serverIp}:${ECHO_PORT}/`;
    const meshed = `http://${await clusterIP('web-v1')}/`;
    // Permissive (the default) admits the plaintext client.
    expect(await requestFrom(outsider, direct)).toBe('200');

    await patchMtlsMode('strict');
    const refused = await waitFor(
      'the outsider refused',
      async () => {
        const status = await requestFrom(outsider, direct);
        return status === '200' ? undefined : status;
      },
      60_000,
      500,
    );
    process.stderr.write(`strict mTLS: the plaintext client got "${refused}"\n`);
    expect(await requestFrom(clientNetns, meshed)).toBe('200');
    // Rewritten HTTP probes reach the apps through the sidecar's probe port, not over mTLS: with
    // a 1 s period and three failures allowed, 4 s of strict would have made a pod NotReady.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    for (const app of ['web-v1', 'web-v2', 'client']) await readyPod(apps, app);

    // The wire between the sidecars, seen on the client pod's interface.
    const capture = await startWireCapture(clientNetns, serverIp);
    const outcome = await requestBatchFrom(clientNetns, meshed, 40, 4);
    const { counts: wire, raw } = await capture.stop();
    process.stderr.write(`wire: ${raw}; requests ${JSON.stringify(outcome.statuses)}\n`);
    expect(outcome.statuses).toEqual({ '200': 40 });
    expect(wire.segments).toBeGreaterThan(0);
    expect(wire.tlsRecords).toBeGreaterThan(0);
    expect(wire.plaintextHttp).toBe(0);

    await patchMtlsMode('permissive');
    await waitFor('the outsider admitted again', async () =>
      (await requestFrom(outsider, direct)) === '200' ? true : undefined,
    );
  });

  it('loses no request while both sidecars reload again and again under load', async () => {
    // Each new Service is in every sidecar's configuration, so each one reloads both the
    // client's and web-v1's nginx; the load runs on keep-alive connections all along.
    const url = `http://${await clusterIP('web-v1')}/`;
    const started = Date.now();
    const load = httpLoadFrom(clientNetns, url, RELOAD_LOAD_MS, 8);
    const configs = { client: new Set<string>(), 'web-v1': new Set<string>() };
    let reloads = 0;
    for (
      let step = 1;
      step <= RELOAD_STEPS && Date.now() - started < RELOAD_LOAD_MS - 3_000;
      step += 1
    ) {
      const name = `reload-${step}`;
      await apply([httpService(apps, name, { app: 'web-v1' })]);
      for (const app of ['client', 'web-v1'] as const)
        configs[app].add(
          await waitForSidecarConfig(app, `the upstream of ${name}`, (config) =>
            config.includes(`reload_${step}_80`),
          ),
        );
      reloads = step;
    }
    const outcome = await load;
    await kubectl([
      ...['delete', 'service', '-n', apps, '--wait=false'],
      ...Array.from({ length: reloads }, (_, index) => `reload-${index + 1}`),
    ]);
    process.stderr.write(
      `reloads under load: ${reloads} new configurations in each sidecar, ${outcome.requests} requests in ${outcome.ms} ms: ${JSON.stringify(outcome.statuses)}\n`,
    );
    expect(reloads).toBeGreaterThanOrEqual(5);
    expect(configs.client.size).toBe(reloads);
    expect(configs['web-v1'].size).toBe(reloads);
    expect(outcome.statuses).toEqual({ '200': outcome.requests });
    expect(outcome.requests).toBeGreaterThan(1_000);
  }, 120_000);

  it('changes endpoints under load without reloading nginx or losing a request', async () => {
    // Two replicas get 4 slots; scaling to 3 and a rolling restart (one surge pod at a time)
    // never need more, so every endpoint change is a members update.
    await apply([
      echoDeployment(apps, 'churn', { labels: { app: 'churn' }, replicas: 2 }),
      httpService(apps, 'churn', { app: 'churn' }),
    ]);
    await waitForReplicas('churn', 2);
    await waitForSidecarConfig('client', 'the upstream of churn', (config) =>
      config.includes('mesh_e2e_apps__churn_80'),
    );
    const url = `http://${await clusterIP('churn')}/`;
    const counters = async () => ({
      reloads: await sidecarCounterFrom(clientNetns, 'nginx_mesh_reloads_total'),
      updates: await sidecarCounterFrom(clientNetns, 'nginx_mesh_endpoint_updates_total'),
    });
    const before = await counters();
    const started = Date.now();
    const churn = (async () => {
      await scale('churn', 3);
      const restarted = await kubectl(['rollout', 'restart', 'deployment/churn', '-n', apps]);
      if (restarted.exitCode !== 0) throw new Error(restarted.stderr);
      await rolledOut('churn');
      await scale('churn', 2);
    })();
    // The load runs until the churn is over.
    const load = httpLoadFrom(clientNetns, url, CHURN_LOAD_MS, 8, churn);
    // Meanwhile the client's keep-alive connections go from the redirect server to the HTTP
    // server inside nginx's worker: no loopback connection between them.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const connections = await sidecarConnectionsIn(clientNetns);
    await churn;
    const churnMs = Date.now() - started;
    const outcome = await load;
    const after = await counters();
    const reloads = after.reloads - before.reloads;
    const updates = after.updates - before.updates;
    await kubectl(['delete', 'deployment,service', 'churn', '-n', apps, '--wait=false']);
    process.stderr.write(
      `endpoint churn under load: ${updates} member updates and ${reloads} reloads in the client sidecar in ${churnMs} ms (reloads_per_1000_endpoint_changes ${updates === 0 ? 'n/a' : Math.round((reloads * 1000) / updates)}); ${outcome.requests} requests: ${JSON.stringify(outcome.statuses)}, served by ${Object.keys(outcome.pods).length} pods\n`,
    );
    expect(outcome.ms).toBeLessThan(CHURN_LOAD_MS);
    expect(connections.redirected).toBeGreaterThanOrEqual(8);
    expect(connections.loopbackHops).toBe(0);
    expect(reloads).toBe(0);
    // scale up, three surges and three retirements, scale down: each a change of members
    expect(updates).toBeGreaterThanOrEqual(5);
    expect(outcome.statuses).toEqual({ '200': outcome.requests });
    // the pods the restart started served too: their endpoints reached nginx
    expect(Object.keys(outcome.pods).length).toBeGreaterThanOrEqual(5);
  }, 300_000);

  it('leaves the apps serving after remove', async () => {
    const removed = await meshctl(['remove', '-y', '-t', '120s']);
    expect(removed.exitCode).toBe(0);
    expect(await requestFrom(clientNetns, `http://${await clusterIP('web')}/`)).toBe('200');
    // What the mesh ran for a Gateway is gone with it.
    for (const kind of ['deployment', 'service', 'secret', 'serviceaccount'])
      expect((await kubectl(['get', kind, 'kept-nginx-mesh', '-n', apps])).exitCode).not.toBe(0);
  });
});
