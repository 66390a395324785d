// A cluster's whole life on its own instance: a run killed mid-way leaves processes and network
// namespaces behind, the next start removes them, and stopping leaves nothing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, stopCluster } from './harness/cluster';
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
    const first = await startCluster({ instance: INSTANCE, stateDir, root, log: quiet });
    expect(clusterNetns()).toContain(topology.nodeNetns);
    const leftovers = processesOf(stateDir);
    expect(leftovers.length).toBeGreaterThanOrEqual(3);
    // A killed run: every process dies at once, nothing is cleaned up.
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const second = await startCluster({ instance: INSTANCE, stateDir, root, log: quiet });
    expect(second.kubeconfig).toBe(first.kubeconfig);
    await second.stop();
    expect(clusterNetns()).toEqual([]);
    expect(hostLinkExists()).toBe(false);
    expect(processesOf(stateDir)).toEqual([]);
  });
});
