// The sealed network of one test cluster, built from network namespaces, veth pairs, routes and
// the node's iptables service rules. Effects; needs root. Addresses and names come from
// topology.ts.
//
//   host netns ── <prefix>h (hostAddress/30) ══ veth ══ <prefix>n (nodeAddress/30) ── node netns
//   node netns ── <prefix>p<id> (proxy ARP, /32 route to the pod) ══ veth ══ eth0 ── pod netns
//
// In the host namespace only the host link and its two routes (pods and services via the node)
// are added. Nothing in 198.18.0.0/15 that the node does not own leaves the node namespace: a
// blackhole route there drops it, except the service CIDR, which is local to the node (see
// buildNodeNetwork). The node has no default route, so no test traffic can reach beyond the
// machine.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CommandError, runCommand, runInNetns } from './exec';
import { ipv4ToNumber, parseInstalledRules, renderServiceRules } from './service-rules';
import type { ServiceRule } from './service-rules';
import type { Topology } from './topology';

/** The benchmarking range every cluster's addresses come from (see topology.ts). */
const SEALED_RANGE = '198.18.0.0/15';
/**
 * MAC address of the node end of every pod link. Pods resolve their gateway to it with a
 * permanent neighbour entry: proxy ARP alone would not answer, because the kernel proxies only
 * addresses it routes out of another link, and the node routes the gateway address nowhere (it
 * has no default route by design).
 */
const POD_GATEWAY_MAC = 'ee:ee:ee:ee:ee:ee';
/** A pod id becomes part of a 15-character link name; longer ids would be cut and could clash. */
const POD_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,9}$/;
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

/**
 * Gives a pod its namespace and link: eth0 with podIP/32 and a default route through the
 * link-local gateway, and on the node a /32 route to the pod. The caller allocates podIP inside
 * the pod CIDR. Leftovers of the same pod id are removed first; on failure nothing is left.
 */
export async function addPodNetwork(
  topology: Topology,
  podId: string,
  podIP: string,
): Promise<void> {
  validatePod(topology, podId, podIP);
  await removePodNetwork(topology, podId);
  try {
    await buildPodNetwork(topology, podId, podIP);
  } catch (error) {
    await undoAfterFailure(error, () => removePodNetwork(topology, podId));
    throw error;
  }
}

/** Kills the pod's remaining processes and deletes its namespace and link. Idempotent. */
export async function removePodNetwork(topology: Topology, podId: string): Promise<void> {
  const netns = topology.podNetns(podId);
  const link = topology.podLink(podId);
  const namespaces = await listClusterNetns(topology);
  const survivors = namespaces.includes(netns) ? await killNetnsProcesses(netns) : [];
  // Deleted explicitly, for the same reason as the host link in destroyNodeNetwork.
  if (namespaces.includes(topology.nodeNetns)) {
    if ((await listLinks(topology.nodeNetns)).includes(link)) {
      await runCommand('ip', ['-n', topology.nodeNetns, 'link', 'delete', link]);
    }
  }
  if (namespaces.includes(netns)) await runCommand('ip', ['netns', 'delete', netns]);
  if (survivors.length > 0) {
    throw new Error(`processes ${survivors.join(', ')} of pod ${netns} survived SIGKILL`);
  }
}

const applying = new Map<string, Promise<void>>();

/**
 * Makes the node's service rules match `services` exactly, in one atomic iptables-restore that
 * rewrites only the project's chains (see service-rules.ts). Calls for the same node from this
 * process run one after another, in call order, so the last call's services are what stays
 * installed; one process (the node agent) is expected to own a node's rules.
 */
export function applyServiceRules(
  topology: Topology,
  services: readonly ServiceRule[],
): Promise<void> {
  const previous = applying.get(topology.nodeNetns) ?? Promise.resolve();
  const next = previous
    .catch(() => undefined)
    .then(() => restoreServiceRules(topology.nodeNetns, services));
  applying.set(topology.nodeNetns, next);
  const forget = (): void => {
    if (applying.get(topology.nodeNetns) === next) applying.delete(topology.nodeNetns);
  };
  void next.then(forget, forget);
  return next;
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
  await applyServiceRules(topology, []);
}

async function buildPodNetwork(topology: Topology, podId: string, podIP: string): Promise<void> {
  const { nodeNetns, podGateway } = topology;
  const netns = topology.podNetns(podId);
  const link = topology.podLink(podId);
  const inNode = (args: readonly string[]): Promise<string> =>
    runCommand('ip', ['-n', nodeNetns, ...args]);
  const inPod = (args: readonly string[]): Promise<string> =>
    runCommand('ip', ['-n', netns, ...args]);
  await runCommand('ip', ['netns', 'add', netns]);
  await inNode([
    ...['link', 'add', link, 'address', POD_GATEWAY_MAC, 'type', 'veth'],
    ...['peer', 'name', 'eth0', 'netns', netns],
  ]);
  // proxy_delay 0: the kernel otherwise holds proxy ARP answers back for up to 0.8 s.
  await runInNetns(nodeNetns, 'sysctl', [
    ...['-q', '-w', `net.ipv4.conf.${link}.proxy_arp=1`],
    `net.ipv4.neigh.${link}.proxy_delay=0`,
  ]);
  await inPod(['link', 'set', 'lo', 'up']);
  await inPod(['address', 'add', `${podIP}/32`, 'dev', 'eth0']);
  await inPod(['link', 'set', 'eth0', 'up']);
  await inPod(['route', 'add', podGateway, 'dev', 'eth0', 'scope', 'link']);
  await inPod(['route', 'add', 'default', 'via', podGateway, 'dev', 'eth0']);
  await inPod([
    ...['neighbour', 'replace', podGateway, 'lladdr', POD_GATEWAY_MAC],
    ...['dev', 'eth0', 'nud', 'permanent'],
  ]);
  await inNode(['link', 'set', link, 'up']);
  await inNode(['route', 'add', `${podIP}/32`, 'dev', link]);
}

async function restoreServiceRules(
  nodeNetns: string,
  services: readonly ServiceRule[],
): Promise<void> {
  const saved = await runInNetns(nodeNetns, 'iptables-save', []);
  const input = renderServiceRules(services, parseInstalledRules(saved));
  try {
    await runInNetns(nodeNetns, 'iptables-restore', ['--noflush'], { input });
  } catch (error) {
    throw error instanceof CommandError ? explainRestoreFailure(error, input) : error;
  }
}

/** Points at the input line iptables-restore names (its two wordings), which stderr lacks. */
function explainRestoreFailure(error: CommandError, input: string): Error {
  const found = /line (\d+) failed|Error occurred at line: (\d+)/.exec(error.stderr);
  const lineNumber = Number(found?.[1] ?? found?.[2] ?? 0);
  const text = input.split('\n')[lineNumber - 1];
  if (text === undefined) return error;
  return new Error(`${error.message}\n  at input line ${lineNumber}: ${text}`, { cause: error });
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

function validatePod(topology: Topology, podId: string, podIP: string): void {
  if (!POD_ID_PATTERN.test(podId)) {
    throw new Error(`invalid pod id "${podId}": expected 1-10 of a-z, 0-9 and "-"`);
  }
  if (!inCidr(podIP, topology.podCidr)) {
    throw new Error(`invalid pod IP "${podIP}": expected an address in ${topology.podCidr}`);
  }
}

function inCidr(address: string, cidr: string): boolean {
  const [base = '', bits = ''] = cidr.split('/');
  const value = ipv4ToNumber(address);
  const network = ipv4ToNumber(base);
  const size = 2 ** (32 - Number(bits));
  if (value === undefined || network === undefined || !Number.isInteger(size)) return false;
  return Math.floor(value / size) === Math.floor(network / size);
}
