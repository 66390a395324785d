// The test cluster's node: a real kubelet on containerd + runc with the CNI bridge plugin, and
// kube-proxy in iptables mode, all inside the node's network namespace and a mount namespace of
// their own (node-holder.sh), plus kube-scheduler beside the API server. State in one directory:
//
//   <dir>/processes.json        the recorded processes (scheduler, holder, containerd, kubelet,
//                               kube-proxy), so a later run stops them even after a SIGKILL
//   <dir>/logs/<component>.log  their output; container logs are under <dir>/pod-logs
//   <dir>/containerd, kubelet   the runtime's and the kubelet's state
//
// Pods live in the cgroup <topology.cgroupRoot> of every cgroup v1 hierarchy; stopNode kills
// whatever runs there, so a pod cannot outlive its node. Images are never pulled: startNode
// imports the archives it is given into containerd before the kubelet starts.
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { describeError } from '../../../src/errors';
import { runCommand } from './exec';
import { createKubeRest, KubeRestError } from './kube-rest';
import type { KubeRest } from './kube-rest';
import type { CertAndKey, Pki } from './pki';
import { writeKubeconfig } from './control-plane';
import {
  freePorts,
  launchDetached,
  readProcessRecords,
  stopRecordedProcess,
  tailOf,
  writeProcessRecords,
} from './processes';
import type { LaunchedProcess } from './processes';
import type { Topology } from './topology';

/** An image archive (docker-archive tar) and the reference it carries. */
export interface ImageArchive {
  readonly ref: string;
  readonly path: string;
}

export interface NodeOptions {
  /** The node's own state directory. */
  readonly stateDir: string;
  /** Repository root (the holder script lives there). */
  readonly root: string;
  readonly topology: Topology;
  readonly nodeName: string;
  /** kubelet, kube-proxy and kube-scheduler. */
  readonly binDir: string;
  /** The API server's URL and the cluster's PKI (the node's identities are in it). */
  readonly server: string;
  readonly pki: Pki;
  /** Imported into containerd before the kubelet starts; the pause image among them. */
  readonly images: readonly ImageArchive[];
  /** The CoreDNS image (among images); CoreDNS runs as a Deployment in kube-system. */
  readonly corednsImage: string;
  readonly log: (line: string) => void;
}

export interface RunningNode {
  /** The mount namespace holder: `nsenter -t <pid> -m -n` runs a command inside the node. */
  readonly holderPid: number;
}

/** Where containerd listens, inside the node's private /run. */
export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
/** The pause image the CRI plugin runs every pod sandbox with (never pulled). */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';

/** The holder script, relative to the repository root. */
const HOLDER_SCRIPT = join('test', 'cluster', 'harness', 'node-holder.sh');
const HOLDER_TIMEOUT_MS = 10_000;
const CONTAINERD_TIMEOUT_MS = 30_000;
const NODE_READY_TIMEOUT_MS = 90_000;
const DNS_READY_TIMEOUT_MS = 90_000;
const IMPORT_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 10_000;
const KILL_WAIT_MS = 10_000;
const POLL_MS = 200;
const LOG_TAIL_LINES = 30;
const KUBELET_PORT = 10250;

/** The command prefix that runs a program inside the node (network and mount namespaces). */
export function inNode(holderPid: number): string[] {
  return ['nsenter', '-t', String(holderPid), '-m', '-n', '--'];
}

/** The command line of `ctr` on the node's containerd, in the Kubernetes namespace. */
export function ctrInNode(holderPid: number, args: readonly string[]): [string, string[]] {
  const [command = 'nsenter', ...prefix] = inNode(holderPid);
  return [command, [...prefix, 'ctr', '--address', CONTAINERD_SOCKET, '-n', 'k8s.io', ...args]];
}

export async function startNode(options: NodeOptions): Promise<RunningNode> {
  const dir = resolve(options.stateDir);
  const { log, topology } = options;
  await rm(dir, { recursive: true, force: true });
  for (const sub of ['logs', 'cni/net.d', 'cni/ipam', 'kubelet', 'pod-logs', 'volume-plugins']) {
    await mkdir(join(dir, sub), { recursive: true });
  }
  await writeProcessRecords(dir, []);
  createCgroupRoot(topology.cgroupRoot);
  await writeNodeFiles(dir, options);

  const launched: LaunchedProcess[] = [];
  const launch = async (
    name: string,
    binary: string,
    args: readonly string[],
    wrapper?: readonly string[],
  ): Promise<LaunchedProcess> => {
    const started = await launchDetached({
      stateDir: dir,
      name,
      binary,
      args,
      ports: {},
      logPath: join(dir, 'logs', `${name}.log`),
      ...(wrapper === undefined ? {} : { wrapper }),
    });
    launched.push(started);
    await writeProcessRecords(
      dir,
      launched.map((process) => process.record),
    );
    return started;
  };

  const t0 = performance.now();
  const since = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
  const [schedulerPort] = await freePorts(['127.0.0.1']);
  await launch('kube-scheduler', join(options.binDir, 'kube-scheduler'), [
    `--kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
    `--authentication-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
    `--authorization-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
    `--client-ca-file=${options.pki.clientCa.cert}`,
    `--requestheader-client-ca-file=${options.pki.frontProxyCa.cert}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${schedulerPort ?? 0}`,
    `--tls-cert-file=${options.pki.schedulerServing.cert}`,
    `--tls-private-key-file=${options.pki.schedulerServing.key}`,
    '--leader-elect=false',
  ]);

  const holder = await launch(
    'node-holder',
    '/bin/bash',
    [join(options.root, HOLDER_SCRIPT), dir],
    [
      'nsenter',
      `--net=/run/netns/${topology.nodeNetns}`,
      '--',
      'unshare',
      '--mount',
      '--propagation',
      'slave',
      '--',
    ],
  );
  await waitFor('the node namespace holder', holder, HOLDER_TIMEOUT_MS, () =>
    Promise.resolve(existsSync(join(dir, 'holder.ready'))),
  );
  const holderPid = holder.record.pid;
  const wrapper = inNode(holderPid);

  const containerd = await launch(
    'containerd',
    '/usr/bin/containerd',
    ['--config', join(dir, 'containerd.toml')],
    wrapper,
  );
  await waitFor('containerd', containerd, CONTAINERD_TIMEOUT_MS, async () => {
    await runCommand(...ctrInNode(holderPid, ['version']));
    return true;
  });
  log(`node: containerd up after ${since()}`);

  for (const image of options.images) {
    await runCommand(...ctrInNode(holderPid, ['images', 'import', image.path]), {
      timeoutMs: IMPORT_TIMEOUT_MS,
    }).catch((error: unknown) => {
      throw new Error(`importing ${image.ref} from ${image.path} failed: ${describeError(error)}`, {
        cause: error,
      });
    });
  }
  log(`node: ${options.images.length} images imported after ${since()}`);

  const kubelet = await launch(
    'kubelet',
    join(options.binDir, 'kubelet'),
    [
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${join(dir, 'kubelet.kubeconfig')}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      `--node-ip=${topology.nodeAddress}`,
      `--hostname-override=${options.nodeName}`,
    ],
    wrapper,
  );
  await launch(
    'kube-proxy',
    join(options.binDir, 'kube-proxy'),
    [`--config=${join(dir, 'kube-proxy.yaml')}`],
    wrapper,
  );

  const rest = await createKubeRest(join(dir, 'admin.kubeconfig'));
  try {
    await waitFor('the node to be Ready', kubelet, NODE_READY_TIMEOUT_MS, () =>
      nodeReady(rest, options.nodeName),
    );
    log(`node: ${options.nodeName} Ready after ${since()}`);
    await applyCoreDns(rest, topology, options.corednsImage);
    await waitFor('CoreDNS to be ready', kubelet, DNS_READY_TIMEOUT_MS, () => corednsReady(rest));
    log(`node: CoreDNS ready at ${topology.dnsServiceIP} after ${since()}`);
  } finally {
    rest.close();
  }
  return { holderPid };
}

/**
 * Stops the node in stateDir and removes what it made outside that directory: its processes
 * (recorded ones, then every process left in its cgroups, pods included) and its cgroups. Its
 * mount namespace, with every mount the kubelet and containerd made, goes with its last
 * process. Safe on a node that never started or was killed.
 */
export async function stopNode(stateDir: string, topology: Topology): Promise<void> {
  const dir = resolve(stateDir);
  const records = await readProcessRecords(dir);
  for (const record of [...records].reverse()) {
    await stopRecordedProcess(record, dir, STOP_GRACE_MS);
  }
  await killCgroupProcesses(topology.cgroupRoot);
  removeCgroupRoot(topology.cgroupRoot);
}

// ---- files --------------------------------------------------------------------------------

async function writeNodeFiles(dir: string, options: NodeOptions): Promise<void> {
  const { pki, server, topology, nodeName } = options;
  const ca = readFileSync(pki.clusterCa.cert);
  const kubeconfigs: [string, CertAndKey, string][] = [
    ['kubelet.kubeconfig', pki.kubeletClient, `system:node:${nodeName}`],
    ['kube-proxy.kubeconfig', pki.kubeProxyClient, 'system:kube-proxy'],
    ['scheduler.kubeconfig', pki.schedulerClient, 'system:kube-scheduler'],
    ['admin.kubeconfig', pki.admin, 'admin'],
  ];
  for (const [file, client, user] of kubeconfigs) {
    await writeKubeconfig(join(dir, file), server, ca, client, user);
  }
  await writeFile(join(dir, 'resolv.conf'), '');
  // The cluster's registry on the host end of the link speaks plain HTTP, as a local
  // registry usually does; containerd is told so, as an operator would tell it.
  const registryDir = join(dir, 'certs.d', topology.registryHost);
  await mkdir(registryDir, { recursive: true });
  await writeFile(
    join(registryDir, 'hosts.toml'),
    [
      `server = "http://${topology.registryHost}"`,
      `[host."http://${topology.registryHost}"]`,
      '  capabilities = ["pull", "resolve"]',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'containerd.toml'), containerdConfig(dir));
  await writeFile(
    join(dir, 'cni', 'net.d', '10-nmk.conflist'),
    `${JSON.stringify(cniConfig(dir, topology), null, 2)}\n`,
  );
  await writeFile(join(dir, 'kubelet.yaml'), stringify(kubeletConfig(dir, pki, topology)));
  await writeFile(join(dir, 'kube-proxy.yaml'), stringify(kubeProxyConfig(dir, options)));
}

function containerdConfig(dir: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    'version = 2',
    `root = ${JSON.stringify(join(dir, 'containerd', 'root'))}`,
    `state = ${JSON.stringify(join(dir, 'containerd', 'state'))}`,
    '[grpc]',
    `  address = ${JSON.stringify(CONTAINERD_SOCKET)}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(join(dir, 'containerd', 'opt'))}`,
    `[${cri}]`,
    `  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}`,
    // This machine's processes lack CAP_SYS_RESOURCE: runc may only raise oom_score_adj.
    '  restrict_oom_score_adj = true',
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    // Registries by host: hosts.toml files under certs.d (the cluster's own plain-HTTP one).
    `[${cri}.registry]`,
    `  config_path = ${JSON.stringify(join(dir, 'certs.d'))}`,
    `[${cri}.cni]`,
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = ${JSON.stringify(join(dir, 'cni', 'net.d'))}`,
    '',
  ].join('\n');
}

function cniConfig(dir: string, topology: Topology): object {
  return {
    cniVersion: '0.4.0',
    name: topology.prefix,
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: topology.podCidr }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: join(dir, 'cni', 'ipam'),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

function kubeletConfig(dir: string, pki: Pki, topology: Topology): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This machine runs cgroup v1, which kubelet 1.35 refuses unless told otherwise.
    failCgroupV1: false,
    failSwapOn: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: topology.cgroupRoot,
    containerRuntimeEndpoint: `unix://${CONTAINERD_SOCKET}`,
    address: topology.nodeAddress,
    port: KUBELET_PORT,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    tlsCertFile: pki.kubeletServing.cert,
    tlsPrivateKeyFile: pki.kubeletServing.key,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: pki.clientCa.cert },
    },
    authorization: { mode: 'Webhook' },
    clusterDomain: 'cluster.local',
    clusterDNS: [topology.dnsServiceIP],
    resolvConf: join(dir, 'resolv.conf'),
    podLogsDir: join(dir, 'pod-logs'),
    volumePluginDir: join(dir, 'volume-plugins'),
    // No CAP_SYS_RESOURCE here: the kubelet must not lower its own oom_score_adj.
    oomScoreAdj: 0,
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'imagefs.available': '1%',
    },
    // Images are imported, never pulled: the kubelet must not collect them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
    shutdownGracePeriod: '0s',
  };
}

function kubeProxyConfig(dir: string, options: NodeOptions): object {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig: join(dir, 'kube-proxy.kubeconfig') },
    hostnameOverride: options.nodeName,
    clusterCIDR: options.topology.podCidr,
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    // conntrack limits are global sysctls: leave them as they are.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    iptables: { minSyncPeriod: '0s', syncPeriod: '30s' },
  };
}

// ---- CoreDNS ------------------------------------------------------------------------------

const DNS_NAMESPACE = 'kube-system';
const COREDNS = 'coredns';
const COREDNS_PORT = 1053;
const COREFILE = `.:${COREDNS_PORT} {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
}
`;

function corednsObjects(topology: Topology, image: string): [string, object][] {
  const labels = { 'k8s-app': 'kube-dns' };
  const ns = `/api/v1/namespaces/${DNS_NAMESPACE}`;
  return [
    [
      `${ns}/serviceaccounts`,
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: COREDNS } },
    ],
    [
      '/apis/rbac.authorization.k8s.io/v1/clusterroles',
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'system:coredns' },
        rules: [
          {
            apiGroups: [''],
            resources: ['endpoints', 'services', 'pods', 'namespaces'],
            verbs: ['list', 'watch'],
          },
          {
            apiGroups: ['discovery.k8s.io'],
            resources: ['endpointslices'],
            verbs: ['list', 'watch'],
          },
        ],
      },
    ],
    [
      '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'system:coredns' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'system:coredns',
        },
        subjects: [{ kind: 'ServiceAccount', name: COREDNS, namespace: DNS_NAMESPACE }],
      },
    ],
    [
      `${ns}/configmaps`,
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: COREDNS },
        data: { Corefile: COREFILE },
      },
    ],
    [
      `/apis/apps/v1/namespaces/${DNS_NAMESPACE}/deployments`,
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: COREDNS, labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: COREDNS,
              priorityClassName: 'system-cluster-critical',
              dnsPolicy: 'Default',
              containers: [
                {
                  name: COREDNS,
                  image,
                  imagePullPolicy: 'Never',
                  args: ['-conf', '/etc/coredns/Corefile'],
                  ports: [
                    { name: 'dns', containerPort: COREDNS_PORT, protocol: 'UDP' },
                    { name: 'dns-tcp', containerPort: COREDNS_PORT, protocol: 'TCP' },
                  ],
                  readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 1 },
                  livenessProbe: { httpGet: { path: '/health', port: 8080 }, periodSeconds: 10 },
                  resources: {
                    requests: { cpu: '10m', memory: '32Mi' },
                    limits: { memory: '128Mi' },
                  },
                  securityContext: {
                    runAsNonRoot: true,
                    runAsUser: 65534,
                    runAsGroup: 65534,
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ['ALL'] },
                  },
                  volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
                },
              ],
              volumes: [{ name: 'config', configMap: { name: COREDNS } }],
            },
          },
        },
      },
    ],
    [
      `${ns}/services`,
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'kube-dns', labels },
        spec: {
          selector: labels,
          clusterIP: topology.dnsServiceIP,
          ports: [
            { name: 'dns', port: 53, targetPort: 'dns', protocol: 'UDP' },
            { name: 'dns-tcp', port: 53, targetPort: 'dns-tcp', protocol: 'TCP' },
          ],
        },
      },
    ],
  ];
}

async function applyCoreDns(rest: KubeRest, topology: Topology, image: string): Promise<void> {
  for (const [path, object] of corednsObjects(topology, image)) {
    try {
      await rest.request('POST', path, object);
    } catch (error) {
      if (!(error instanceof KubeRestError && error.status === 409)) throw error;
    }
  }
}

async function corednsReady(rest: KubeRest): Promise<boolean> {
  const deployment = await rest.request<{ status?: { readyReplicas?: number } }>(
    'GET',
    `/apis/apps/v1/namespaces/${DNS_NAMESPACE}/deployments/${COREDNS}`,
  );
  return (deployment.status?.readyReplicas ?? 0) >= 1;
}

async function nodeReady(rest: KubeRest, nodeName: string): Promise<boolean> {
  try {
    const node = await rest.request<{
      spec?: { taints?: { key: string }[] };
      status?: { conditions?: { type: string; status: string }[] };
    }>('GET', `/api/v1/nodes/${nodeName}`);
    const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    const notReadyTaint = node.spec?.taints?.some((t) => t.key === 'node.kubernetes.io/not-ready');
    return ready === true && notReadyTaint !== true;
  } catch (error) {
    if (error instanceof KubeRestError && error.status === 404) return false;
    throw error;
  }
}

/** Polls check; fails at once when the watched process ends, with the end of its log. */
async function waitFor(
  what: string,
  process: LaunchedProcess,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not yet';
  for (;;) {
    const status = process.exitStatus();
    if (status !== undefined) {
      throw new Error(
        `${process.record.name} ended (${status}) while waiting for ${what}; last lines of ${process.record.log}:\n${await tailOf(process.record.log, LOG_TAIL_LINES)}`,
      );
    }
    try {
      if (await check()) return;
    } catch (error) {
      last = describeError(error);
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs / 1000}s waiting for ${what} (${last}); last lines of ${process.record.log}:\n${await tailOf(process.record.log, LOG_TAIL_LINES)}`,
      );
    }
    await sleep(POLL_MS);
  }
}

// ---- cgroups ------------------------------------------------------------------------------

const CGROUP_MOUNT = '/sys/fs/cgroup';

/**
 * The cgroup hierarchies mounted on this host (real directories, not their alias links): the
 * v1 controllers and, where the host mounts it, the unified (v2) one, where runc creates the
 * pods' cgroups too.
 */
function cgroupHierarchies(): string[] {
  if (!existsSync(CGROUP_MOUNT)) return [];
  return readdirSync(CGROUP_MOUNT)
    .map((name) => join(CGROUP_MOUNT, name))
    .filter((path) => {
      const stat = lstatSync(path);
      return stat.isDirectory() && !stat.isSymbolicLink() && existsSync(join(path, 'cgroup.procs'));
    });
}

/** The kubelet's cgroupRoot must exist in every hierarchy; cpuset needs its cpus and mems. */
function createCgroupRoot(root: string): void {
  for (const hierarchy of cgroupHierarchies()) {
    const path = join(hierarchy, root);
    if (!existsSync(path)) mkdirSync(path);
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const parent = join(hierarchy, file);
      if (existsSync(parent)) writeFileSync(join(path, file), readFileSync(parent));
    }
  }
}

/** Every directory under dir, deepest first. */
function cgroupTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) found.push(...cgroupTree(join(dir, entry.name)));
  }
  found.push(dir);
  return found;
}

/** The pids in one cgroup; none when it was removed while we looked. */
function pidsIn(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((line) => /^\d+$/.test(line))
      .map(Number);
  } catch {
    return [];
  }
}

/** Every process in the cgroup root (and below) of any hierarchy: the node's pods. */
export function cgroupPids(root: string): number[] {
  const pids = new Set<number>();
  for (const hierarchy of cgroupHierarchies()) {
    for (const dir of cgroupTree(join(hierarchy, root))) {
      for (const pid of pidsIn(dir)) pids.add(pid);
    }
  }
  return [...pids];
}

/** SIGKILLs every process in the node's cgroups until none is left (bounded). */
async function killCgroupProcesses(root: string): Promise<void> {
  const deadline = Date.now() + KILL_WAIT_MS;
  let pids = cgroupPids(root);
  while (pids.length > 0) {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    if (Date.now() >= deadline) {
      throw new Error(`processes ${pids.join(', ')} in cgroup ${root} survived SIGKILL`);
    }
    await sleep(50);
    pids = cgroupPids(root);
  }
}

function removeCgroupRoot(root: string): void {
  for (const hierarchy of cgroupHierarchies()) {
    for (const dir of cgroupTree(join(hierarchy, root))) {
      try {
        rmdirSync(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }
}
