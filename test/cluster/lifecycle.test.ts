// A cluster's whole life on its own instance: a run killed mid-way leaves processes, pods,
// cgroups and network namespaces behind, the next start removes them, and stopping leaves
// nothing outside the state directory: no process, mount, cgroup, netns, link, route or file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, stopCluster } from './harness/cluster';
import { cgroupPids } from './harness/node';
import { buildTopology } from './harness/topology';

const INSTANCE = 2;
const topology = buildTopology(INSTANCE);
const root = join(__dirname, '..', '..');
let stateDir: string;

function clusterNetns(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(`${topology.prefix}-`));
}

function hostLinkExists(): boolean {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).includes(
    ` ${topology.hostLink}@`,
  );
}

/** Live (not zombie) processes whose command line mentions the state directory. */
function processesOf(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of execFileSync('ls', ['/proc'], { encoding: 'utf8' }).split('\n')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const state = /^State:\s+(\w)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (cmdline.includes(dir) && state !== 'Z') pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** The node's cgroups: its cgroupRoot in any cgroup v1 hierarchy. */
function nodeCgroups(): string[] {
  return readdirSync('/sys/fs/cgroup')
    .map((hierarchy) => join('/sys/fs/cgroup', hierarchy, topology.cgroupRoot))
    .filter((path) => existsSync(path));
}

/** Processes in the node's cgroups: its pods' containers. */
function podProcesses(): number[] {
  return cgroupPids(topology.cgroupRoot);
}

/** Mounts of the host that name the state directory. */
function hostMounts(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(dir));
}

/** Fixed host paths a kubelet, containerd and CNI write to when not kept private. */
const FIXED_PATHS = [
  '/var/lib/kubelet',
  '/var/lib/cni',
  '/var/log/containers',
  '/var/log/pods',
  '/run/containerd',
];

function hostRoutesVia(address: string): string[] {
  return execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(address));
}

beforeAll(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'nmk-lifecycle-'));
});

afterAll(async () => {
  await stopCluster(stateDir, INSTANCE);
  rmSync(stateDir, { recursive: true, force: true });
});

describe('cluster lifecycle', () => {
  it('recovers from a killed run and leaves nothing behind when stopped', async () => {
    const quiet = (): void => undefined;
    const fixedBefore = FIXED_PATHS.filter((path) => existsSync(path));
    const cniNetnsBefore = readdirSync('/run/netns').filter((name) => name.startsWith('cni-'));
    const first = await startCluster({
      instance: INSTANCE,
      stateDir,
      root,
      images: 'node',
      log: quiet,
    });
    expect(clusterNetns()).toContain(topology.nodeNetns);
    // CoreDNS runs: the node has pods whose processes live in its cgroups.
    expect(podProcesses().length).toBeGreaterThan(0);
    const leftovers = processesOf(stateDir);
    expect(leftovers.length).toBeGreaterThanOrEqual(7);
    // A killed run: every process dies at once, nothing is cleaned up.
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const second = await startCluster({
      instance: INSTANCE,
      stateDir,
      root,
      images: 'node',
      log: quiet,
    });
    expect(second.kubeconfig).toBe(first.kubeconfig);
    await second.stop();
    expect(clusterNetns()).toEqual([]);
    expect(hostLinkExists()).toBe(false);
    expect(hostRoutesVia(topology.nodeAddress)).toEqual([]);
    expect(processesOf(stateDir)).toEqual([]);
    expect(podProcesses()).toEqual([]);
    expect(nodeCgroups()).toEqual([]);
    expect(hostMounts(stateDir)).toEqual([]);
    expect(FIXED_PATHS.filter((path) => existsSync(path))).toEqual(fixedBefore);
    expect(readdirSync('/run/netns').filter((name) => name.startsWith('cni-'))).toEqual(
      cniNetnsBefore,
    );
  });
});
