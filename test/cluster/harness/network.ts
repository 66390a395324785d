// The sealed network of one test cluster: the node's network namespace and the veth pair that
// links it to the host. Effects; needs root. Addresses and names come from topology.ts.
//
//   host netns ── <prefix>h (hostAddress/30) ══ veth ══ <prefix>n (nodeAddress/30) ── node netns
//   node netns ── cni0 (the CNI bridge plugin's, made by containerd) ══ veth ══ eth0 ── each pod
//
// In the host namespace only the host link and its two routes (pods and services via the node)
// are added. Nothing in 198.18.0.0/15 that the node does not own leaves the node namespace: a
// blackhole route there drops it, except the service CIDR, which is local to the node (see
// buildNodeNetwork). The node has no default route, so no test traffic can reach beyond the
// machine.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand, runInNetns } from './exec';
import type { Topology } from './topology';

/** The benchmarking range every cluster's addresses come from (see topology.ts). */
const SEALED_RANGE = '198.18.0.0/15';
/** How long processes killed with SIGKILL get to leave a namespace before destroy gives up. */
const KILL_WAIT_MS = 3_000;
const KILL_POLL_MS = 20;

/**
 * Builds the node network of a cluster, first removing whatever a previous run of the same
 * instance left behind (a killed run leaves namespaces, links and processes). Either the whole
 * network exists afterwards, or the call fails and none of it does.
 */
export async function createNodeNetwork(topology: Topology): Promise<void> {
  await destroyNodeNetwork(topology);
  try {
    await buildNodeNetwork(topology);
  } catch (error) {
    await undoAfterFailure(error, () => destroyNodeNetwork(topology));
    throw error;
  }
}

/**
 * Removes every trace of a cluster's network: kills each process still running in one of its
 * namespaces, deletes the host link (its routes go with it) and every `<prefix>-*` namespace.
 * Safe on a half-built network and on one that does not exist. Fails only if a process survives
 * SIGKILL, after everything else is gone.
 */
export async function destroyNodeNetwork(topology: Topology): Promise<void> {
  const namespaces = await listClusterNetns(topology);
  const survivors: number[] = [];
  for (const netns of namespaces) survivors.push(...(await killNetnsProcesses(netns)));
  // Deleted explicitly: a deleted namespace's links disappear only later, in the kernel's
  // background cleanup, and a quick re-create would find the host link's name still taken.
  if ((await listLinks(undefined)).includes(topology.hostLink)) {
    await runCommand('ip', ['link', 'delete', topology.hostLink]);
  }
  for (const netns of namespaces) await runCommand('ip', ['netns', 'delete', netns]);
  if (survivors.length > 0) {
    throw new Error(
      `processes ${survivors.join(', ')} of cluster ${topology.prefix} survived SIGKILL ` +
        `for ${KILL_WAIT_MS} ms; their namespaces are deleted, the processes are not`,
    );
  }
}

/** Names of this cluster's network namespaces (`<prefix>-*`), sorted. */
export async function listClusterNetns(topology: Topology): Promise<string[]> {
  const listing = await runCommand('ip', ['netns', 'list']);
  return listing
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(`${topology.prefix}-`))
    .sort();
}

async function buildNodeNetwork(topology: Topology): Promise<void> {
  const { nodeNetns, hostLink, nodeLink } = topology;
  await runCommand('ip', ['netns', 'add', nodeNetns]);
  await runCommand('ip', [
    ...['link', 'add', hostLink, 'type', 'veth'],
    ...['peer', 'name', nodeLink, 'netns', nodeNetns],
  ]);
  // IPv4 only: without IPv6 the link carries no router solicitations, DAD or MLD, so its
  // counters show exactly the cluster's own traffic.
  await disableIPv6(undefined, hostLink);
  await disableIPv6(nodeNetns, nodeLink);
  await runCommand('ip', ['address', 'add', `${topology.hostAddress}/30`, 'dev', hostLink]);
  await runCommand('ip', ['link', 'set', hostLink, 'up']);
  const inNode = (args: readonly string[]): Promise<string> =>
    runCommand('ip', ['-n', nodeNetns, ...args]);
  await inNode(['link', 'set', 'lo', 'up']);
  await inNode(['address', 'add', `${topology.nodeAddress}/30`, 'dev', nodeLink]);
  await inNode(['link', 'set', nodeLink, 'up']);
  // No ICMP redirects: a hairpin connection leaves through the link it came in by, which
  // would make the node send one. Pods cannot use it, and the kernel charges redirects to the
  // same per-host budget as ICMP errors, so the pod would then miss the port-unreachable of a
  // service without endpoints for about a second.
  await runInNetns(nodeNetns, 'sysctl', [
    ...['-q', '-w', 'net.ipv4.ip_forward=1'],
    ...['net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0'],
  ]);
  await inNode(['route', 'add', 'blackhole', SEALED_RANGE]);
  // Service addresses are local to the node: a connection to a service port without
  // endpoints then reaches the filter table's REJECT (INPUT) instead of dying in the blackhole
  // before any filter hook, and one to an unknown service address is refused by the node.
  // Service ports with endpoints are DNATed before routing, so this route never sees them.
  await inNode(['route', 'add', 'local', topology.serviceCidr, 'dev', 'lo']);
  for (const cidr of [topology.podCidr, topology.serviceCidr]) {
    await runCommand('ip', ['route', 'add', cidr, 'via', topology.nodeAddress, 'dev', hostLink]);
  }
}

/** SIGKILLs every process in netns and waits (bounded) for them to go; returns survivors. */
async function killNetnsProcesses(netns: string): Promise<number[]> {
  const deadline = Date.now() + KILL_WAIT_MS;
  let pids = await netnsPids(netns);
  while (pids.length > 0 && Date.now() < deadline) {
    for (const pid of pids) killQuietly(pid);
    await sleep(KILL_POLL_MS);
    pids = await netnsPids(netns);
  }
  return pids;
}

async function netnsPids(netns: string): Promise<number[]> {
  const listing = await runCommand('ip', ['netns', 'pids', netns]);
  return listing
    .split(/\s+/)
    .filter((word) => /^\d+$/.test(word))
    .map(Number);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    // Gone between listing and killing: that is the goal.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function listLinks(netns: string | undefined): Promise<string[]> {
  const args = netns === undefined ? ['-j', 'link', 'show'] : ['-n', netns, '-j', 'link', 'show'];
  const links = JSON.parse(await runCommand('ip', args)) as { ifname?: string }[];
  return links.flatMap((link) => (link.ifname === undefined ? [] : [link.ifname]));
}

/** No-op on a kernel without IPv6. */
async function disableIPv6(netns: string | undefined, link: string): Promise<void> {
  if (!existsSync('/proc/sys/net/ipv6')) return;
  const args = ['-q', '-w', `net.ipv6.conf.${link}.disable_ipv6=1`];
  await (netns === undefined ? runCommand('sysctl', args) : runInNetns(netns, 'sysctl', args));
}

/** Runs undo after a failed build; a failing undo is reported beside the original error. */
async function undoAfterFailure(error: unknown, undo: () => Promise<void>): Promise<void> {
  try {
    await undo();
  } catch (undoError) {
    throw new AggregateError(
      [error, undoError],
      'building the network failed, and so did undoing it',
    );
  }
}
