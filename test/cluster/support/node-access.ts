// How tests reach into the real test node from the host: a pod's network namespace (to send
// requests as its app would, through its iptables redirect and sidecar), a pod's volumes (the
// rendered nginx.conf, the SVID files) and the containers' log files. The node keeps its mounts
// (pod netns, memory-backed volumes) in its own mount namespace, seen from the host through
// /proc/<holder>/root.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ctrInNode } from '../harness/node';

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '')
    throw new Error(`${name} is not set: the cluster tier global setup did not run`);
  return value;
}

/** The node's state directory (kubelet root, pod logs). */
export function nodeStateDir(): string {
  return env('NMK_TEST_NODE_DIR');
}

/** The root of the node's mount namespace, as a host path prefix. */
export function nodeRoot(): string {
  return `/proc/${env('NMK_TEST_NODE_HOLDER')}/root`;
}

/** Network namespace files of the node's pods, as host paths. */
function podNetnsPaths(): string[] {
  const dir = join(nodeRoot(), 'run', 'netns');
  return readdirSync(dir)
    .filter((name) => name.startsWith('cni-'))
    .map((name) => join(dir, name));
}

/** The command line that runs argv inside the network namespace at netns (a host path). */
export function inNetns(netns: string, argv: readonly string[]): [string, string[]] {
  return ['nsenter', [`--net=${netns}`, '--', ...argv]];
}

/** The network namespace (a host path) of the pod with this address. */
export async function netnsOf(ip: string): Promise<string> {
  for (const netns of podNetnsPaths()) {
    const [file, args] = inNetns(netns, ['ip', '-o', '-4', 'addr', 'show']);
    const addresses = await execa(file, args, { reject: false });
    if (addresses.stdout.includes(` ${ip}/`)) return netns;
  }
  throw new Error(`no network namespace on the node holds ${ip}`);
}

/** Every file named `name` under dir, depth-first, skipping what vanishes while walking. */
function findFiles(dir: string, name: string, found: string[] = []): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return found;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    let isDirectory = false;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      continue;
    }
    if (isDirectory) findFiles(path, name, found);
    else if (entry === name) found.push(path);
  }
  return found;
}

/** Every file named `name` in the volumes of the pod with this uid. */
export function podFiles(uid: string, name: string): string[] {
  return findFiles(join(nodeRoot(), nodeStateDir(), 'kubelet', 'pods', uid, 'volumes'), name);
}

/** The nginx configuration the sidecar of the pod with this uid runs. */
export function sidecarConfig(uid: string): string | undefined {
  const [file] = podFiles(uid, 'nginx.conf');
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * What the containers of the pod with this uid wrote so far, per container (all restarts, in
 * the kubelet's log format: each line starts with a time stamp and the stream).
 */
export function podLogs(uid: string): Record<string, string> {
  const root = join(nodeStateDir(), 'pod-logs');
  const logs: Record<string, string> = {};
  for (const pod of readdirSync(root).filter((entry) => entry.endsWith(`_${uid}`))) {
    for (const container of readdirSync(join(root, pod))) {
      const dir = join(root, pod, container);
      const files = readdirSync(dir).filter((file) => file.endsWith('.log'));
      files.sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
      logs[container] = files.map((file) => readFileSync(join(dir, file), 'utf8')).join('');
    }
  }
  return logs;
}

/** Gives an image on the node another name, as a push of the same image under that name would. */
export async function tagNodeImage(source: string, target: string): Promise<void> {
  const holder = Number(env('NMK_TEST_NODE_HOLDER'));
  await execa(...ctrInNode(holder, ['images', 'tag', '--force', source, target]));
}

/** Imports docker-archive files into the node's containerd, as its start-up does. */
export async function importNodeImages(paths: readonly string[]): Promise<void> {
  const holder = Number(env('NMK_TEST_NODE_HOLDER'));
  for (const path of paths)
    await execa(...ctrInNode(holder, ['images', 'import', path]), { timeout: 300_000 });
}

/**
 * Sends signal to the main process of a running container (its id as the pod's status gives it,
 * `containerd://<id>`), as a crash or the OOM killer would: the kubelet sees it end.
 */
export async function killContainer(containerId: string, signal = 'SIGKILL'): Promise<void> {
  const holder = Number(env('NMK_TEST_NODE_HOLDER'));
  const id = containerId.replace(/^containerd:\/\//, '');
  await execa(...ctrInNode(holder, ['tasks', 'kill', '--signal', signal, id]));
}

/**
 * The memory a running container uses now, in bytes, as its cgroup counts it: anonymous memory
 * (rss on cgroup v1, anon on v2), what a leak in a Node process grows; page cache is left out.
 */
export async function containerMemoryBytes(containerId: string): Promise<number> {
  const holder = Number(env('NMK_TEST_NODE_HOLDER'));
  const id = containerId.replace(/^containerd:\/\//, '');
  const metrics = await execa(...ctrInNode(holder, ['tasks', 'metrics', '--format', 'json', id]));
  const memory = (JSON.parse(metrics.stdout) as { memory?: { rss?: number; anon?: number } })
    .memory;
  const bytes = memory?.rss ?? memory?.anon;
  if (bytes === undefined) throw new Error(`containerd reports no memory use for ${id}`);
  return bytes;
}
