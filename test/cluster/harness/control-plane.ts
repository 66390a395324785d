// The test cluster's control plane: etcd, kube-apiserver and kube-controller-manager as real,
// detached processes with a generated PKI, all state in one directory:
//
//   <stateDir>/pki/                          certificates and keys (keys 0600)
//   <stateDir>/etcd/                         etcd data
//   <stateDir>/logs/<component>.log          stdout and stderr of each process
//   <stateDir>/processes.json                pids and ports, rewritten as each process starts
//   <stateDir>/kubeconfig                    admin (system:masters), certificates embedded
//   <stateDir>/controller-manager.kubeconfig the controller-manager's own identity
//
// startControlPlane returns once the API server is ready and the controllers are working; the
// processes outlive the caller, so `cluster:up` can return. stop() or, from another run,
// stopRecordedControlPlane(stateDir) ends them.
import * as http from 'node:http';
import * as https from 'node:https';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { MeshctlError, describeError } from '../../../src/errors';
import { generatePki } from './pki';
import type { CertAndKey, Pki } from './pki';
import {
  freePorts,
  isRecordedProcessRunning,
  launchDetached,
  readProcessRecords,
  stopRecordedProcess,
  tailOf,
  writeProcessRecords,
} from './processes';
import type { LaunchedProcess, ProcessRecord } from './processes';

export interface ControlPlaneOptions {
  /** Directory for all state; created if missing. pki/ and etcd/ are recreated on each start. */
  readonly stateDir: string;
  /** Address kube-apiserver binds to and advertises (198.18.N.1, or 127.0.0.1 in tests). */
  readonly bindAddress: string;
  readonly serviceCidr: string;
  /** ClusterIP of default/kubernetes: the first address of serviceCidr. */
  readonly kubernetesServiceIP: string;
  /** The node that will join: its name and the address its kubelet serves on. */
  readonly node?: { readonly name: string; readonly address: string };
  /** Directory holding etcd, kube-apiserver and kube-controller-manager. */
  readonly binDir: string;
  /** Progress lines (what started, how long it took). */
  readonly log?: (line: string) => void;
}

/** Milliseconds from the launch of the first process (etcd) until each milestone. */
export interface StartupTimings {
  /** PKI generation, before any launch. */
  readonly pkiMs: number;
  readonly etcdHealthyMs: number;
  /** kube-apiserver's /readyz answers ok. */
  readonly apiserverReadyMs: number;
  /** kube-controller-manager's /healthz answers ok. */
  readonly controllerManagerHealthyMs: number;
  /** The serviceaccount controller has created default/default: controllers are acting. */
  readonly controllersWorkingMs: number;
}

export interface ControlPlane {
  readonly stateDir: string;
  /** Admin kubeconfig (system:masters) with embedded certificates. */
  readonly kubeconfigPath: string;
  /** https://<bindAddress>:<port> */
  readonly server: string;
  /** The CA that signed the API server's serving certificate. */
  readonly caPath: string;
  /** Every certificate and key of the cluster (the node's identities among them). */
  readonly pki: Pki;
  readonly pids: {
    readonly etcd: number;
    readonly apiserver: number;
    readonly controllerManager: number;
  };
  readonly ports: {
    readonly etcdClient: number;
    readonly etcdPeer: number;
    readonly apiserver: number;
    readonly controllerManager: number;
  };
  readonly timings: StartupTimings;
  /** SIGTERM to each process in reverse start order, SIGKILL after 10 s; removes no files. */
  stop(): Promise<void>;
}

export class ControlPlaneError extends MeshctlError {}

/** The issuer of service-account tokens, also an accepted audience of the API server. */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/**
 * Controllers the test cluster runs: workloads, endpoints, service accounts and their tokens,
 * namespace deletion, garbage collection, and node lifecycle (which lifts a joining node's
 * not-ready taint). No volume, IPAM or cloud controllers: the node's CNI allocates pod addresses
 * and there are no volumes to attach.
 */
export const CONTROLLERS: readonly string[] = [
  'deployment-controller',
  'replicaset-controller',
  'job-controller',
  'cronjob-controller',
  'endpointslice-controller',
  'endpointslice-mirroring-controller',
  'endpoints-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'namespace-controller',
  'garbage-collector-controller',
  'statefulset-controller',
  'daemonset-controller',
  'ttl-after-finished-controller',
  'root-ca-certificate-publisher-controller',
  'disruption-controller',
  'pod-garbage-collector-controller',
  'node-lifecycle-controller',
  // Fills the aggregated admin/edit/view ClusterRoles that RBAC tests bind to.
  'clusterrole-aggregation-controller',
];

const ETCD_TIMEOUT_MS = 20_000;
const APISERVER_TIMEOUT_MS = 60_000;
const CONTROLLER_MANAGER_TIMEOUT_MS = 30_000;
const CONTROLLERS_WORKING_TIMEOUT_MS = 30_000;
const PROBE_TIMEOUT_MS = 2_000;
const POLL_MS = 100;
const STOP_GRACE_MS = 10_000;
const LOG_TAIL_LINES = 30;
const CLUSTER_NAME = 'nginx-meshctl-test';

/** Where a control plane keeps its files; usable without a running control plane. */
export function controlPlaneFiles(stateDir: string): {
  readonly kubeconfig: string;
  readonly controllerManagerKubeconfig: string;
  readonly ca: string;
  readonly pki: string;
  readonly etcdData: string;
  readonly logs: string;
} {
  const dir = resolve(stateDir);
  return {
    kubeconfig: join(dir, 'kubeconfig'),
    controllerManagerKubeconfig: join(dir, 'controller-manager.kubeconfig'),
    ca: join(dir, 'pki', 'ca.crt'),
    pki: join(dir, 'pki'),
    etcdData: join(dir, 'etcd'),
    logs: join(dir, 'logs'),
  };
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager from a fresh PKI and empty etcd data,
 * and resolves once the API server is ready and the controllers act. Refuses to start while
 * processes recorded in stateDir still run. On any failure, whatever it started is stopped
 * before the error propagates.
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  validateOptions(options);
  const stateDir = resolve(options.stateDir);
  const files = controlPlaneFiles(stateDir);
  const log = options.log ?? (() => undefined);
  await refuseIfRunning(stateDir);

  await mkdir(stateDir, { recursive: true });
  await Promise.all([
    rm(files.pki, { recursive: true, force: true }),
    rm(files.etcdData, { recursive: true, force: true }),
  ]);
  await mkdir(files.logs, { recursive: true });
  await mkdir(files.etcdData, { mode: 0o700 });
  await writeProcessRecords(stateDir, []);

  const pkiStart = performance.now();
  const pki = await generatePki({
    dir: files.pki,
    bindAddress: options.bindAddress,
    kubernetesServiceIP: options.kubernetesServiceIP,
    ...(options.node === undefined ? {} : { node: options.node }),
  });
  const pkiMs = performance.now() - pkiStart;
  log(`PKI generated in ${Math.round(pkiMs)} ms`);

  const [etcdClient, etcdPeer, apiserver, controllerManager] = await freePorts([
    '127.0.0.1',
    '127.0.0.1',
    options.bindAddress,
    '127.0.0.1',
  ]);
  const ports: Ports = {
    etcdClient: defined(etcdClient),
    etcdPeer: defined(etcdPeer),
    apiserver: defined(apiserver),
    controllerManager: defined(controllerManager),
  };
  const server = `https://${hostInUrl(options.bindAddress)}:${ports.apiserver}`;
  const clusterCa = await readFile(pki.clusterCa.cert);
  await writeKubeconfig(files.kubeconfig, server, clusterCa, pki.admin, 'admin');
  await writeKubeconfig(
    files.controllerManagerKubeconfig,
    server,
    clusterCa,
    pki.controllerManagerClient,
    'system:kube-controller-manager',
  );

  const context: StartContext = {
    stateDir,
    options,
    pki,
    ports,
    server,
    files,
    launched: [],
    log,
  };
  try {
    return await launchAll(context, pkiMs);
  } catch (error) {
    await stopLaunched(context.launched, stateDir).catch((stopError: unknown) =>
      log(`stopping after a failed start also failed: ${describeError(stopError)}`),
    );
    throw error;
  }
}

/**
 * Stops the processes recorded in <stateDir>/processes.json, in reverse start order. Pids that
 * are gone or now belong to another program are skipped, so a second call, or a call after
 * stop(), does nothing.
 */
export async function stopRecordedControlPlane(stateDir: string): Promise<void> {
  const dir = resolve(stateDir);
  const records = await readProcessRecords(dir);
  for (const record of [...records].reverse()) {
    await stopRecordedProcess(record, dir, STOP_GRACE_MS);
  }
}

interface Ports {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
  readonly controllerManager: number;
}

interface StartContext {
  readonly stateDir: string;
  readonly options: ControlPlaneOptions;
  readonly pki: Pki;
  readonly ports: Ports;
  readonly server: string;
  readonly files: ReturnType<typeof controlPlaneFiles>;
  /** Every process started so far, in start order. */
  readonly launched: LaunchedProcess[];
  readonly log: (line: string) => void;
}

async function launchAll(context: StartContext, pkiMs: number): Promise<ControlPlane> {
  const { options, pki, ports, files, log } = context;
  const binary = (name: string): string => join(resolve(options.binDir), name);
  const tls = await readClientTls(pki.clusterCa.cert, pki.admin);
  const t0 = performance.now();
  const since = (): number => Math.round(performance.now() - t0);

  const etcd = await launch(context, 'etcd', binary('etcd'), etcdArgs(context), {
    client: ports.etcdClient,
    peer: ports.etcdPeer,
  });
  await waitHealthy(etcd, ETCD_TIMEOUT_MS, () =>
    probe(`http://127.0.0.1:${ports.etcdClient}/health`, undefined, (body) =>
      body.includes('"health":"true"'),
    ),
  );
  const etcdHealthyMs = since();
  log(`etcd healthy after ${etcdHealthyMs} ms (pid ${etcd.record.pid})`);

  const apiserver = await launch(
    context,
    'kube-apiserver',
    binary('kube-apiserver'),
    apiserverArgs(context),
    { secure: ports.apiserver },
  );
  await waitHealthy(apiserver, APISERVER_TIMEOUT_MS, () =>
    probe(`${context.server}/readyz?verbose`, tls, () => true),
  );
  const apiserverReadyMs = since();
  log(`kube-apiserver ready at ${context.server} after ${apiserverReadyMs} ms`);

  const controllerManager = await launch(
    context,
    'kube-controller-manager',
    binary('kube-controller-manager'),
    controllerManagerArgs(context),
    { secure: ports.controllerManager },
  );
  await waitHealthy(controllerManager, CONTROLLER_MANAGER_TIMEOUT_MS, () =>
    probe(`https://127.0.0.1:${ports.controllerManager}/healthz`, tls, () => true),
  );
  const controllerManagerHealthyMs = since();
  log(`kube-controller-manager healthy after ${controllerManagerHealthyMs} ms`);

  await waitHealthy(controllerManager, CONTROLLERS_WORKING_TIMEOUT_MS, () =>
    probe(`${context.server}/api/v1/namespaces/default/serviceaccounts/default`, tls, () => true),
  );
  const controllersWorkingMs = since();
  log(`controllers working (default/default ServiceAccount) after ${controllersWorkingMs} ms`);

  let stopping: Promise<void> | undefined;
  const launched = [...context.launched];
  return {
    stateDir: context.stateDir,
    kubeconfigPath: files.kubeconfig,
    server: context.server,
    caPath: pki.clusterCa.cert,
    pki,
    pids: {
      etcd: etcd.record.pid,
      apiserver: apiserver.record.pid,
      controllerManager: controllerManager.record.pid,
    },
    ports,
    timings: {
      pkiMs: Math.round(pkiMs),
      etcdHealthyMs,
      apiserverReadyMs,
      controllerManagerHealthyMs,
      controllersWorkingMs,
    },
    stop: () => (stopping ??= stopLaunched(launched, context.stateDir)),
  };
}

async function launch(
  context: StartContext,
  name: string,
  binary: string,
  args: readonly string[],
  ports: Readonly<Record<string, number>>,
): Promise<LaunchedProcess> {
  const launched = await launchDetached({
    stateDir: context.stateDir,
    name,
    binary,
    args,
    ports,
    logPath: join(context.files.logs, `${name}.log`),
  });
  context.launched.push(launched);
  await writeProcessRecords(
    context.stateDir,
    context.launched.map((started) => started.record),
  );
  return launched;
}

async function stopLaunched(launched: readonly LaunchedProcess[], stateDir: string): Promise<void> {
  for (const started of [...launched].reverse()) {
    await stopRecordedProcess(started.record, stateDir, STOP_GRACE_MS, started.exited);
  }
}

function etcdArgs({ ports, files }: StartContext): string[] {
  const client = `http://127.0.0.1:${ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  return [
    '--name=control-plane',
    `--data-dir=${files.etcdData}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=control-plane=${peer}`,
    '--initial-cluster-state=new',
    // Test data need not survive a power cut; fsync would dominate start-up and every write.
    '--unsafe-no-fsync',
  ];
}

function apiserverArgs({ options, pki, ports }: StartContext): string[] {
  const args = [
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    `--bind-address=${options.bindAddress}`,
    `--advertise-address=${options.bindAddress}`,
    `--secure-port=${ports.apiserver}`,
    `--tls-cert-file=${pki.apiserverServing.cert}`,
    `--tls-private-key-file=${pki.apiserverServing.key}`,
    `--client-ca-file=${pki.clientCa.cert}`,
    '--authorization-mode=Node,RBAC',
    `--service-cluster-ip-range=${options.serviceCidr}`,
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${pki.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
    '--allow-privileged=true',
    // Webhooks, aggregated APIs and the service proxy dial endpoint IPs: there is no kube-proxy
    // on the host for a ClusterIP to work.
    '--enable-aggregator-routing=true',
    `--requestheader-client-ca-file=${pki.frontProxyCa.cert}`,
    '--requestheader-allowed-names=front-proxy-client',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-username-headers=X-Remote-User',
    `--proxy-client-cert-file=${pki.frontProxyClient.cert}`,
    `--proxy-client-key-file=${pki.frontProxyClient.key}`,
    // Logs, exec and port-forward: the kubelet serves on the node's InternalIP (the node name
    // resolves nowhere) with a certificate of the cluster CA.
    '--kubelet-preferred-address-types=InternalIP',
    `--kubelet-certificate-authority=${pki.clusterCa.cert}`,
    `--kubelet-client-certificate=${pki.apiserverKubeletClient.cert}`,
    `--kubelet-client-key=${pki.apiserverKubeletClient.key}`,
  ];
  // The lease reconciler publishes the advertise address as the endpoint of default/kubernetes,
  // and Endpoints reject loopback addresses: only a loopback-bound server goes without it.
  if (isLoopback(options.bindAddress)) args.push('--endpoint-reconciler-type=none');
  return args;
}

function controllerManagerArgs({ options, pki, ports, files }: StartContext): string[] {
  return [
    `--kubeconfig=${files.controllerManagerKubeconfig}`,
    // Delegated authentication and authorization of its own endpoints; with both CA files given
    // it needs no lookups in kube-system, which would otherwise be logged again and again.
    `--authentication-kubeconfig=${files.controllerManagerKubeconfig}`,
    `--authorization-kubeconfig=${files.controllerManagerKubeconfig}`,
    `--client-ca-file=${pki.clientCa.cert}`,
    `--requestheader-client-ca-file=${pki.frontProxyCa.cert}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.controllerManager}`,
    `--tls-cert-file=${pki.controllerManagerServing.cert}`,
    `--tls-private-key-file=${pki.controllerManagerServing.key}`,
    '--leader-elect=false',
    // Each controller acts as its own service account, which the RBAC bootstrap policy grants
    // what it needs; under the shared identity RBAC forbids most of their work.
    '--use-service-account-credentials=true',
    `--controllers=${CONTROLLERS.join(',')}`,
    `--root-ca-file=${pki.clusterCa.cert}`,
    `--service-account-private-key-file=${pki.serviceAccountKey}`,
    `--cluster-signing-cert-file=${pki.clusterCa.cert}`,
    `--cluster-signing-key-file=${pki.clusterCa.key}`,
    `--service-cluster-ip-range=${options.serviceCidr}`,
  ];
}

interface ClientTls {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

async function readClientTls(caPath: string, client: CertAndKey): Promise<ClientTls> {
  const [ca, cert, key] = await Promise.all([
    readFile(caPath),
    readFile(client.cert),
    readFile(client.key),
  ]);
  return { ca, cert, key };
}

interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
}

/** Polls check until it reports ok; fails at once if the process ends, or after timeoutMs. */
async function waitHealthy(
  started: LaunchedProcess,
  timeoutMs: number,
  check: () => Promise<ProbeResult>,
): Promise<void> {
  const { name, log } = started.record;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const status = started.exitStatus();
    if (status !== undefined) {
      throw new ControlPlaneError(
        `${name} ended (${status}) before it became healthy; last lines of ${log}:\n${await tailOf(log, LOG_TAIL_LINES)}`,
        { hint: `the whole log is ${log}` },
      );
    }
    try {
      const result = await check();
      if (result.ok) return;
      last = result.detail;
    } catch (error) {
      last = describeError(error);
    }
    if (Date.now() >= deadline) {
      throw new ControlPlaneError(
        `${name} was not healthy within ${timeoutMs / 1000} s (last answer: ${last}); last lines of ${log}:\n${await tailOf(log, LOG_TAIL_LINES)}`,
        { hint: `the whole log is ${log}` },
      );
    }
    await sleep(POLL_MS);
  }
}

/** GET url; ok when the status is 200 and accept(body). */
function probe(
  url: string,
  tls: ClientTls | undefined,
  accept: (body: string) => boolean,
): Promise<ProbeResult> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  return new Promise((resolvePromise, reject) => {
    const request = transport.get(
      target,
      { timeout: PROBE_TIMEOUT_MS, agent: false, ...(tls ?? {}) },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const ok = response.statusCode === 200 && accept(body);
          resolvePromise({ ok, detail: `HTTP ${response.statusCode ?? '?'}: ${summary(body)}` });
        });
      },
    );
    request.on('timeout', () =>
      request.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
    );
    request.on('error', reject);
  });
}

/** The failing checks of a verbose health answer, or the start of any other body. */
function summary(body: string): string {
  const failed = body.split('\n').filter((line) => line.startsWith('[-]'));
  const text = failed.length > 0 ? failed.join('; ') : body.trim();
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export async function writeKubeconfig(
  path: string,
  server: string,
  clusterCa: Buffer,
  client: CertAndKey,
  userName: string,
): Promise<void> {
  const [cert, key] = await Promise.all([readFile(client.cert), readFile(client.key)]);
  const contextName = `${userName}@${CLUSTER_NAME}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: CLUSTER_NAME,
        cluster: { server, 'certificate-authority-data': clusterCa.toString('base64') },
      },
    ],
    users: [
      {
        name: userName,
        user: {
          'client-certificate-data': cert.toString('base64'),
          'client-key-data': key.toString('base64'),
        },
      },
    ],
    contexts: [{ name: contextName, context: { cluster: CLUSTER_NAME, user: userName } }],
    'current-context': contextName,
    preferences: {},
  };
  const temporary = `${path}.tmp`;
  await writeFile(temporary, stringify(config), { mode: 0o600 });
  await rename(temporary, path);
}

async function refuseIfRunning(stateDir: string): Promise<void> {
  const running: ProcessRecord[] = [];
  for (const record of await readProcessRecords(stateDir)) {
    if (await isRecordedProcessRunning(record, stateDir)) running.push(record);
  }
  if (running.length > 0) {
    const list = running.map((record) => `${record.name} (pid ${record.pid})`).join(', ');
    throw new ControlPlaneError(`a control plane in ${stateDir} is still running: ${list}`, {
      hint: 'stop it first (stopRecordedControlPlane, or the cluster:down command)',
    });
  }
}

function validateOptions(options: ControlPlaneOptions): void {
  const { bindAddress, kubernetesServiceIP, serviceCidr } = options;
  if (isIP(bindAddress) === 0 || bindAddress === '0.0.0.0' || bindAddress === '::') {
    throw new ControlPlaneError(
      `invalid bindAddress "${bindAddress}": expected one IP address of this host`,
    );
  }
  if (isIP(kubernetesServiceIP) === 0) {
    throw new ControlPlaneError(
      `invalid kubernetesServiceIP "${kubernetesServiceIP}": expected an IP address`,
    );
  }
  const [network, bits] = serviceCidr.split('/');
  if (network === undefined || isIP(network) === 0 || !/^\d{1,3}$/.test(bits ?? '')) {
    throw new ControlPlaneError(`invalid serviceCidr "${serviceCidr}": expected a CIDR`);
  }
}

function defined(port: number | undefined): number {
  if (port === undefined) throw new ControlPlaneError('internal error: a port was not allocated');
  return port;
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

function hostInUrl(address: string): string {
  return isIP(address) === 6 ? `[${address}]` : address;
}
