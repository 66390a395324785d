// Helpers for tests that run meshed workloads on the test cluster: manifests for the sample
// apps (echo-server Deployments, shell clients, Services), the rendered sidecar configuration
// read from the node's volumes, and requests sent from inside a pod's network namespace, so
// they leave through the pod's iptables redirect and its sidecar as an app's would.
import { execa } from 'execa';
import { join } from 'node:path';
import type { KubeRest } from '../harness/kube-rest';
import type { PodSummary } from './kube';
import { createNamespace, isReady, listPods, testKubeconfig, testKubectl, waitFor } from './kube';
import { inNetns, sidecarConfig } from './node-access';
import { CLIENT_IMAGE, ECHO_SERVER_IMAGE } from '../../support/images';
import {
  SIDECAR_METRICS_PORT,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
  SIDECAR_RESERVED_PORT_FIRST,
  SIDECAR_RESERVED_PORT_LAST,
} from '../../../src/manifests/constants';

/** The built executable the tests deploy and remove the mesh with. */
export const MESHCTL_BINARY = join(__dirname, '..', '..', '..', 'dist', 'nginx-meshctl');

/** The echo server's HTTP container port. */
export const ECHO_PORT = 8080;

/** Runs nginx-meshctl against the test cluster for the mesh in meshNamespace; never rejects. */
export function meshctl(meshNamespace: string, args: readonly string[]) {
  return execa(MESHCTL_BINARY, [...args, '-n', meshNamespace], {
    env: { KUBECONFIG: testKubeconfig() },
    reject: false,
    timeout: 240_000,
  });
}

/** Runs the test cluster's kubectl, with input on stdin when given; never rejects. */
export function kubectl(args: readonly string[], input?: string) {
  return execa(testKubectl(), ['--kubeconfig', testKubeconfig(), ...args], {
    reject: false,
    ...(input === undefined ? {} : { input }),
  });
}

/** Options for an echo-server Deployment. */
export interface EchoDeploymentOptions {
  /** Pod labels, also the Deployment's selector. */
  readonly labels: Record<string, string>;
  /** Extra environment for the echo server (FAIL_PERCENT, for example). */
  readonly env?: Record<string, string>;
  /** Replicas (1 unless given). */
  readonly replicas?: number;
}

/** The pod spec of an echo server with the extra environment; Ready once it answers HTTP. */
function echoPodSpec(extraEnv: Record<string, string> = {}): object {
  const env = Object.entries(extraEnv).map(([key, value]) => ({ name: key, value }));
  return {
    terminationGracePeriodSeconds: 2,
    containers: [
      {
        name: 'echo',
        image: ECHO_SERVER_IMAGE,
        env: [
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ...env,
        ],
        ports: [{ name: 'http', containerPort: ECHO_PORT }],
        readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
      },
    ],
  };
}

/** An echo-server Deployment of one replica; its answers name the pod (POD_NAME). */
export function echoDeployment(
  namespace: string,
  name: string,
  options: EchoDeploymentOptions,
): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: options.replicas ?? 1,
      selector: { matchLabels: options.labels },
      template: { metadata: { labels: options.labels }, spec: echoPodSpec(options.env) },
    },
  };
}

/**
 * An echo-server StatefulSet whose pods <name>-0, <name>-1, … have stable DNS names under the
 * headless Service serviceName; its pods are labelled app=<name>.
 */
export function echoStatefulSet(
  namespace: string,
  name: string,
  options: { readonly replicas: number; readonly serviceName: string },
): object {
  const labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace },
    spec: {
      replicas: options.replicas,
      serviceName: options.serviceName,
      // Pods start side by side: none waits for the one before it to be Ready.
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: echoPodSpec() },
    },
  };
}

/** What a shell pod runs as besides its defaults: pod annotations, a ServiceAccount. */
export interface ShellPodOptions {
  readonly annotations?: Record<string, string>;
  readonly serviceAccountName?: string;
}

/**
 * A shell Deployment that only sleeps: a client whose network namespace tests send requests
 * from, or (with a port) a Ready backend that declares a port nothing listens on.
 */
export function shellDeployment(
  namespace: string,
  name: string,
  port?: number,
  pod: ShellPodOptions = {},
): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: {
          labels: { app: name },
          ...(pod.annotations === undefined ? {} : { annotations: pod.annotations }),
        },
        spec: {
          terminationGracePeriodSeconds: 1,
          ...(pod.serviceAccountName === undefined
            ? {}
            : { serviceAccountName: pod.serviceAccountName }),
          containers: [
            {
              name: 'sh',
              image: CLIENT_IMAGE,
              command: ['/bin/sh', '-c', 'sleep 3600'],
              ...(port === undefined ? {} : { ports: [{ name: 'http', containerPort: port }] }),
            },
          ],
        },
      },
    },
  };
}

/** A ServiceAccount: an identity that TrafficTargets name. */
export function serviceAccount(namespace: string, name: string): object {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } };
}

/** A Service port: name, port, target port (default: port), protocol, appProtocol. */
export interface ServicePort {
  readonly name: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: 'TCP' | 'UDP';
  readonly appProtocol?: string;
}

/** A Service with these ports to the selected pods; headless (clusterIP None) when asked. */
export function portsService(
  namespace: string,
  name: string,
  selector: Record<string, string>,
  ports: readonly ServicePort[],
  options: { readonly headless?: boolean } = {},
): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: {
      selector,
      ...(options.headless === true ? { clusterIP: 'None' } : {}),
      ports: ports.map((port) => ({
        protocol: 'TCP',
        targetPort: port.port,
        ...port,
      })),
    },
  };
}

/** A Service on port 80 to the selected pods' port named http. */
export function httpService(
  namespace: string,
  name: string,
  selector: Record<string, string>,
): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  };
}

export { netnsOf, podFiles, sidecarConfig } from './node-access';

/**
 * The status of one request sent from inside the pod's network namespace as an app would send it
 * (its traffic is redirected to the sidecar), or the error code when it fails.
 */
export async function requestFrom(netns: string, url: string, method = 'GET'): Promise<string> {
  const script = `fetch(${JSON.stringify(url)}, { method: ${JSON.stringify(method)}, signal: AbortSignal.timeout(5000) }).then((r) => console.log(r.status), (e) => console.log('error ' + (e.cause?.code ?? e.name)))`;
  const [file, args] = inNetns(netns, [process.execPath, '-e', script]);
  const result = await execa(file, args, { reject: false, timeout: 15_000 });
  return result.stdout.trim();
}

/** What a batch of requests got: a count per outcome ("200", "503", "error ECONNRESET", …). */
export interface BatchOutcome {
  /** Requests per status (or error code). */
  readonly statuses: Record<string, number>;
  /** Successful answers per serving pod (the echo server's X-Served-By header). */
  readonly pods: Record<string, number>;
}

/**
 * Sends `count` GETs to url from one Node process inside the pod's network namespace, at most
 * `concurrency` at a time, and counts the outcomes; bounded by timeoutMs overall.
 */
export async function requestBatchFrom(
  netns: string,
  url: string,
  count: number,
  concurrency: number,
  timeoutMs = 60_000,
): Promise<BatchOutcome> {
  const script = `
const url = ${JSON.stringify(url)};
let next = 0;
const statuses = {};
const pods = {};
const bump = (table, key) => { table[key] = (table[key] ?? 0) + 1; };
async function worker() {
  while (next < ${count}) {
    next += 1;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await response.arrayBuffer();
      bump(statuses, String(response.status));
      if (response.status === 200) bump(pods, response.headers.get('x-served-by') ?? '');
    } catch (error) {
      bump(statuses, 'error ' + (error.cause?.code ?? error.name));
    }
  }
}
Promise.all(Array.from({ length: ${concurrency} }, worker)).then(() =>
  console.log(JSON.stringify({ statuses, pods })),
);`;
  const [file, args] = inNetns(netns, [process.execPath, '-e', script]);
  const result = await execa(file, args, { reject: false, timeout: timeoutMs });
  if (result.exitCode !== 0)
    throw new Error(`batch of ${count} requests to ${url} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as BatchOutcome;
}

/** What a timed HTTP load got: a count per status (or error code), and how long it ran. */
export interface LoadOutcome {
  readonly statuses: Record<string, number>;
  /** Successful answers per serving pod (the echo server's X-Served-By header). */
  readonly pods: Record<string, number>;
  readonly requests: number;
  readonly ms: number;
}

/**
 * GETs url from inside the pod's network namespace for durationMs, concurrency at a time, or
 * until `until` settles, when given (the requests in flight then are finished and counted).
 */
export async function httpLoadFrom(
  netns: string,
  url: string,
  durationMs: number,
  concurrency: number,
  until?: Promise<unknown>,
): Promise<LoadOutcome> {
  const script = `
const url = ${JSON.stringify(url)};
const started = Date.now();
const statuses = {};
const pods = {};
let requests = 0;
let stopped = false;
process.on('SIGINT', () => { stopped = true; });
const bump = (table, key) => { table[key] = (table[key] ?? 0) + 1; };
async function worker() {
  while (!stopped && Date.now() - started < ${durationMs}) {
    requests += 1;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await response.arrayBuffer();
      bump(statuses, String(response.status));
      if (response.status === 200) bump(pods, response.headers.get('x-served-by') ?? '');
    } catch (error) {
      bump(statuses, 'error ' + (error.cause?.code ?? error.name));
    }
  }
}
Promise.all(Array.from({ length: ${concurrency} }, worker)).then(() =>
  console.log(JSON.stringify({ statuses, pods, requests, ms: Date.now() - started })),
);`;
  const [file, args] = inNetns(netns, [process.execPath, '-e', script]);
  // nsenter execs node in place: a signal to the child reaches the script.
  const child = execa(file, args, { reject: false, timeout: durationMs + 30_000 });
  const stop = (): void => void child.kill('SIGINT');
  void until?.then(stop, stop);
  const result = await child;
  if (result.exitCode !== 0) throw new Error(`load on ${url} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as LoadOutcome;
}

/** What the controller's GET /sidecars answers, read through the API server's service proxy. */
export interface SidecarReport {
  readonly generation?: number;
  readonly sidecars: readonly { pod: string; generation?: number; error?: string }[];
  readonly behind: readonly string[];
}

/** The controller's GET /sidecars, with the token of its Secret as remove sends it. */
export async function sidecarReport(rest: KubeRest, meshNamespace: string): Promise<SidecarReport> {
  const secret = await rest.request<{ data?: Record<string, string> }>(
    'GET',
    `/api/v1/namespaces/${meshNamespace}/secrets/nginx-mesh-controller-report`,
  );
  const token = Buffer.from(secret.data?.token ?? '', 'base64').toString('utf8');
  return rest.request(
    'GET',
    `/api/v1/namespaces/${meshNamespace}/services/nginx-mesh-controller:8082/proxy/sidecars`,
    undefined,
    undefined,
    { 'x-nginx-mesh-report-token': token },
  );
}

/** Removes the mesh after a file's tests; a failure is printed, not thrown (cleanup goes on). */
export async function removeMesh(meshNamespace: string): Promise<void> {
  // A teardown: sidecars of app pods deleted just before cannot confirm pass-through.
  const removed = await meshctl(meshNamespace, ['remove', '-y', '--force', '-t', '120s']);
  if (removed.exitCode !== 0 && !removed.stderr.includes('not found')) {
    process.stderr.write(`remove after the tests failed:\n${removed.stderr}\n`);
  }
}

/** Applies the objects as one List with kubectl; throws with kubectl's error. */
export async function applyObjects(objects: readonly object[]): Promise<void> {
  const applied = await kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  );
  if (applied.exitCode !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
}

/** Merges spec into MeshConfig nginx-mesh-config of the mesh, as an operator would. */
export async function patchMeshConfig(meshNamespace: string, spec: object): Promise<void> {
  const patched = await kubectl([
    'patch',
    'meshconfig',
    'nginx-mesh-config',
    '-n',
    meshNamespace,
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec }),
  ]);
  if (patched.exitCode !== 0) throw new Error(`patching MeshConfig failed: ${patched.stderr}`);
}

/** The one Ready pod labelled app=<app> in namespace; throws unless there is exactly one. */
export async function readyPodOf(
  rest: KubeRest,
  namespace: string,
  app: string,
  label = 'app',
): Promise<PodSummary> {
  const pods = (await listPods(rest, namespace, `${label}=${app}`)).filter(isReady);
  const [pod] = pods;
  if (pod === undefined || pods.length !== 1)
    throw new Error(`expected one Ready pod ${label}=${app} in ${namespace}, found ${pods.length}`);
  return pod;
}

/** The ClusterIP of Service namespace/name. */
export async function clusterIPOf(
  rest: KubeRest,
  namespace: string,
  name: string,
): Promise<string> {
  const service = await rest.request<{ spec: { clusterIP: string } }>(
    'GET',
    `/api/v1/namespaces/${namespace}/services/${name}`,
  );
  return service.spec.clusterIP;
}

/**
 * Until every sidecar runs the generation in force (each has reloaded nginx for it), as the
 * controller reports on GET /sidecars. A sidecar reloading nginx while a request reaches it may
 * reset that connection, so measurements start on a settled mesh.
 */
export async function waitForSidecarsCurrent(rest: KubeRest, meshNamespace: string): Promise<void> {
  await waitFor(
    'every sidecar on the generation in force',
    async () => {
      const report = await sidecarReport(rest, meshNamespace);
      return report.generation !== undefined && report.behind.length === 0 ? true : undefined;
    },
    60_000,
    250,
  );
}

/**
 * Waits until the sidecar of the pod app=<app> in namespace runs a configuration that satisfies
 * check, then until the whole mesh is settled; resolves with that configuration.
 */
export async function waitForSidecarConfig(
  rest: KubeRest,
  where: { readonly meshNamespace: string; readonly namespace: string; readonly app: string },
  what: string,
  check: (config: string) => boolean,
): Promise<string> {
  const pod = await readyPodOf(rest, where.namespace, where.app);
  const config = await waitFor(
    `${what} in the ${where.app} sidecar`,
    () => {
      const text = sidecarConfig(pod.metadata.uid) ?? '';
      return Promise.resolve(check(text) ? text : undefined);
    },
    60_000,
    250,
  );
  await waitForSidecarsCurrent(rest, where.meshNamespace);
  return config;
}

/** Creates the namespace labelled for automatic injection, as an operator would. */
export async function createInjectedNamespace(rest: KubeRest, name: string): Promise<void> {
  await createNamespace(rest, name);
  const labelled = await kubectl([
    'label',
    'namespace',
    name,
    'injector.nsm.nginx.com/auto-inject=enabled',
  ]);
  if (labelled.exitCode !== 0) throw new Error(labelled.stderr);
}

/**
 * The pod's established TCP connections, from inside its network namespace: those nginx made to
 * one of its own servers over loopback (a hop: to 127.0.0.0/8, ports 8886–8909), and those the
 * outbound redirect server (8900) accepted.
 */
export async function sidecarConnectionsIn(
  netns: string,
): Promise<{ readonly loopbackHops: number; readonly redirected: number }> {
  const [file, args] = inNetns(netns, ['cat', '/proc/net/tcp']);
  const result = await execa(file, args, { reject: false, timeout: 15_000 });
  if (result.exitCode !== 0) throw new Error(`/proc/net/tcp in ${netns}: ${result.stderr}`);
  let loopbackHops = 0;
  let redirected = 0;
  for (const line of result.stdout.split('\n').slice(1)) {
    // sl local_address rem_address st ...: addresses are hex, the IPv4 address little-endian.
    const [, local, remote, state] = line.trim().split(/\s+/);
    if (state !== '01' || local === undefined || remote === undefined) continue;
    const [remoteAddress = '', remotePort = ''] = remote.split(':');
    const port = Number.parseInt(remotePort, 16);
    if (
      remoteAddress.endsWith('7F') &&
      port >= SIDECAR_RESERVED_PORT_FIRST &&
      port <= SIDECAR_RESERVED_PORT_LAST
    )
      loopbackHops += 1;
    if (Number.parseInt(local.split(':')[1] ?? '', 16) === SIDECAR_OUTBOUND_REDIRECT_PORT)
      redirected += 1;
  }
  return { loopbackHops, redirected };
}

/**
 * The value of a counter (without labels) on the sidecar's metrics port, read from inside the
 * pod's network namespace.
 */
export async function sidecarCounterFrom(netns: string, name: string): Promise<number> {
  const script = `fetch('http://127.0.0.1:${SIDECAR_METRICS_PORT}/metrics', { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((text) => console.log(text))`;
  const [file, args] = inNetns(netns, [process.execPath, '-e', script]);
  const result = await execa(file, args, { reject: false, timeout: 15_000 });
  const line = result.stdout.split('\n').find((entry) => entry.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} on the sidecar's metrics: ${result.stderr}`);
  return Number(line.slice(name.length + 1));
}
