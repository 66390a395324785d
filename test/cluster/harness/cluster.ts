// One whole test cluster: the sealed node network; etcd, kube-apiserver and
// kube-controller-manager on the host; and a real node (kube-scheduler, containerd, kubelet,
// kube-proxy, CoreDNS) running the project's own images, built from images/*/Dockerfile and
// imported, never pulled. startCluster returns once the node is Ready and cluster DNS answers;
// stopCluster removes everything, also what a killed run left behind.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, stopRecordedControlPlane } from './control-plane';
import { createNodeNetwork, destroyNodeNetwork } from './network';
import { startNode, stopNode } from './node';
import type { ImageArchive } from './node';
import { buildTopology } from './topology';
import type { Topology } from './topology';

export interface ClusterOptions {
  readonly instance: number;
  /** Holds PKI, data, logs and the recorded processes; reused (after cleanup) by the next start. */
  readonly stateDir: string;
  /** Repository root. */
  readonly root: string;
  /** Which images the node gets: every one (default), or only what the node itself runs. */
  readonly images?: 'all' | 'node';
  readonly log?: (line: string) => void;
}

export interface RunningCluster {
  readonly kubeconfig: string;
  readonly server: string;
  readonly topology: Topology;
  readonly nodeName: string;
  readonly binDir: string;
  /** The node's state directory (its recorded processes, logs and pod logs). */
  readonly nodeStateDir: string;
  /** The node's mount namespace holder: /proc/<pid>/root is the node's view of the files. */
  readonly holderPid: number;
  stop(): Promise<void>;
}

/** The node's own state, below the cluster's. */
function nodeDir(stateDir: string): string {
  return join(stateDir, 'node');
}

/** Stops whatever a cluster in stateDir runs or left behind; safe to call on a clean state. */
export async function stopCluster(stateDir: string, instance: number): Promise<void> {
  const topology = buildTopology(instance);
  await stopNode(nodeDir(stateDir), topology);
  await stopRecordedControlPlane(join(stateDir, 'control-plane'));
  await destroyNodeNetwork(topology);
}

/** Runs a build script; resolves with its stdout. Its progress goes to stderr. */
function runBuild(script: string, args: readonly string[], what: string, timeoutMs: number) {
  return new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else reject(new Error(`building ${what} failed (${signal ?? `exit ${String(code)}`})`));
    });
  });
}

/**
 * Runs one of the project's build scripts (cached, fast when up to date) and returns the path
 * it prints as its last line of stdout.
 */
async function buildOutput(
  root: string,
  script: string,
  what: string,
  timeoutMs: number,
): Promise<string> {
  const stdout = await runBuild(join(root, 'scripts', script), [], what, timeoutMs);
  return stdout.trim().split('\n').at(-1) ?? '';
}

/** Where built artifacts are cached across runs (as scripts/build-k8s-binaries.sh does). */
export function cacheRoot(): string {
  return (
    process.env.NGINX_MESH_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nginx-meshctl')
  );
}

/**
 * Builds (or finds cached) images as docker-archive files: by default all but CoreDNS, which
 * needs its binary first (see startCluster).
 */
async function buildImages(root: string, args: readonly string[]): Promise<ImageArchive[]> {
  const stdout = await runBuild(
    join(root, 'scripts', 'build-images.sh'),
    ['--archive-dir', join(cacheRoot(), 'images'), ...args],
    'the images',
    40 * 60_000,
  );
  return stdout
    .trim()
    .split('\n')
    .filter((line) => line.includes('\t'))
    .map((line) => {
      const [ref = '', path = ''] = line.split('\t');
      return { ref, path };
    });
}

/**
 * The Kubernetes binaries, CoreDNS and the images, built (or found cached) side by side: the Go
 * builds are bound by the processors, the image builds mostly by package downloads and disk.
 * A node-only cluster (`images: 'node'`) gets the pause and CoreDNS images alone.
 */
export async function buildAll(
  root: string,
  images: 'all' | 'node',
  log: (line: string) => void,
): Promise<{ binDir: string; images: ImageArchive[]; corednsImage: string }> {
  const goBuilds = (async () => {
    const binDir = await buildOutput(
      root,
      'build-k8s-binaries.sh',
      'the Kubernetes binaries',
      40 * 60_000,
    );
    log(`kubernetes binaries: ${binDir}`);
    const corednsDir = await buildOutput(root, 'build-coredns.sh', 'CoreDNS', 20 * 60_000);
    log(`coredns: ${corednsDir}`);
    return { binDir, coredns: join(corednsDir, 'coredns') };
  })();
  const imageBuilds = buildImages(
    root,
    images === 'all'
      ? ['controller', 'init', 'sidecar', 'nats', 'echo-server', 'client', 'pause']
      : ['pause'],
  );
  const [built, archives] = await Promise.all([goBuilds, imageBuilds]);
  const [coredns] = await buildImages(root, ['--coredns-binary', built.coredns, 'coredns']);
  if (coredns === undefined) throw new Error('the image build produced no coredns image');
  return { binDir: built.binDir, images: [...archives, coredns], corednsImage: coredns.ref };
}

export async function startCluster(options: ClusterOptions): Promise<RunningCluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { stateDir, root, instance } = options;
  const topology = buildTopology(instance);
  const started = Date.now();
  await stopCluster(stateDir, instance);
  mkdirSync(join(stateDir, 'logs'), { recursive: true });
  const { binDir, images, corednsImage } = await buildAll(root, options.images ?? 'all', log);
  log(`images: ${images.map((image) => image.ref).join(', ')}`);

  const bootStarted = Date.now();
  const nodeName = `${topology.prefix}-node`;
  try {
    await createNodeNetwork(topology);
    const controlPlane = await startControlPlane({
      stateDir: join(stateDir, 'control-plane'),
      bindAddress: topology.hostAddress,
      serviceCidr: topology.serviceCidr,
      kubernetesServiceIP: topology.kubernetesServiceIP,
      node: { name: nodeName, address: topology.nodeAddress },
      binDir,
      log,
    });
    const node = await startNode({
      stateDir: nodeDir(stateDir),
      root,
      topology,
      nodeName,
      binDir,
      server: controlPlane.server,
      pki: controlPlane.pki,
      images,
      corednsImage,
      log,
    });
    log(
      `cluster ${instance} ready: node ${nodeName} Ready ${((Date.now() - bootStarted) / 1000).toFixed(1)}s after boot (${((Date.now() - started) / 1000).toFixed(1)}s in all)`,
    );
    return {
      kubeconfig: controlPlane.kubeconfigPath,
      server: controlPlane.server,
      topology,
      nodeName,
      binDir,
      nodeStateDir: nodeDir(stateDir),
      holderPid: node.holderPid,
      stop: () => stopCluster(stateDir, instance),
    };
  } catch (error) {
    await stopCluster(stateDir, instance).catch(() => undefined);
    throw error;
  }
}
