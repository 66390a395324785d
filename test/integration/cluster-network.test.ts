// The test cluster's node network on the real kernel: namespaces, veths, routes and iptables
// service rules of cluster instance 7, which no developer cluster (0) or cluster test run (1)
// uses. Traffic stays inside the namespaces and on the host↔node link. Needs root.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { CommandError, runCommand, runInNetns } from '../cluster/harness/exec';
import {
  addPodNetwork,
  applyServiceRules,
  createNodeNetwork,
  destroyNodeNetwork,
  listClusterNetns,
} from '../cluster/harness/network';
import {
  parseInstalledRules,
  renderServiceRules,
  serviceChainName,
} from '../cluster/harness/service-rules';
import type { ServiceRule } from '../cluster/harness/service-rules';
import { buildTopology } from '../cluster/harness/topology';

const topology = buildTopology(7);
const node = join(__dirname, '..', '..', 'node_modules', '.bin', 'node');
const APP_PORT = 8080;

const pods = {
  a: '198.18.107.2',
  b: '198.18.107.3',
  c: '198.18.107.4',
} as const;
type PodName = keyof typeof pods;

const clusterIP = (last: number): string => `198.19.112.${last}`;

interface ServicePort {
  readonly portName: string;
  readonly protocol: 'TCP' | 'UDP';
  /** Last octet of the cluster IP. */
  readonly ip: number;
  readonly port: number;
}

function service(name: string, port: ServicePort, endpoints: readonly PodName[]): ServiceRule {
  return {
    namespace: 'default',
    name,
    portName: port.portName,
    protocol: port.protocol,
    clusterIP: clusterIP(port.ip),
    port: port.port,
    endpoints: endpoints.map((pod) => ({ ip: pods[pod], port: APP_PORT })),
  };
}

const services: ServiceRule[] = [
  service('one', { portName: 'http', protocol: 'TCP', ip: 10, port: 80 }, ['b']),
  service('one', { portName: 'dns', protocol: 'UDP', ip: 10, port: 53 }, ['b']),
  service('two', { portName: 'http', protocol: 'TCP', ip: 11, port: 80 }, ['b', 'c']),
  service('self', { portName: 'http', protocol: 'TCP', ip: 12, port: 80 }, ['a']),
  service('empty', { portName: 'http', protocol: 'TCP', ip: 13, port: 80 }, []),
  service('empty', { portName: 'dns', protocol: 'UDP', ip: 13, port: 53 }, []),
  // Not connected to: its 1/3 probability checks that iptables-save prints rules as rendered.
  service('three', { portName: 'http', protocol: 'TCP', ip: 14, port: 80 }, ['a', 'b', 'c']),
];

/** Answers every TCP connection and UDP datagram with "<name> <peer address>". */
const SERVER = `
const [name, port] = process.argv.slice(1);
const answer = (peer) => name + ' ' + peer + '\\n';
const tcp = require('node:net').createServer((socket) => socket.end(answer(socket.remoteAddress)));
const udp = require('node:dgram').createSocket('udp4');
udp.on('message', (_m, peer) => udp.send(answer(peer.address), peer.port, peer.address));
let listening = 0;
const ready = () => { if (++listening === 2) process.stdout.write('ready\\n'); };
tcp.listen(Number(port), '0.0.0.0', ready);
udp.bind(Number(port), '0.0.0.0', ready);
`;

/** Makes `count` attempts one after another; prints one outcome per attempt as JSON. */
const CLIENT = `
const { protocol, host, port, count, timeoutMs } = JSON.parse(process.argv[1]);
function attempt() {
  return new Promise((resolve) => {
    const started = Date.now();
    let settled = false;
    let socket;
    const done = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (protocol === 'udp') socket.close(); else socket.destroy();
      resolve({ ...outcome, ms: Date.now() - started });
    };
    const timer = setTimeout(() => done({ error: 'TIMEOUT' }), timeoutMs);
    if (protocol === 'udp') {
      socket = require('node:dgram').createSocket('udp4');
      socket.on('message', (message) => done({ reply: String(message).trim() }));
      socket.on('error', (error) => done({ error: error.code }));
      socket.connect(port, host, () => socket.send('ping'));
    } else {
      let data = '';
      socket = require('node:net').connect({ host, port });
      socket.on('data', (chunk) => (data += chunk));
      socket.on('end', () => done({ reply: data.trim() }));
      socket.on('error', (error) => done({ error: error.code }));
    }
  });
}
(async () => {
  const outcomes = [];
  for (let i = 0; i < count; i++) outcomes.push(await attempt());
  process.stdout.write(JSON.stringify(outcomes));
})();
`;

interface Outcome {
  readonly reply?: string;
  readonly error?: string;
  readonly ms: number;
}

interface Probe {
  readonly protocol?: 'tcp' | 'udp';
  readonly host: string;
  readonly port: number;
  readonly count?: number;
  readonly timeoutMs?: number;
}

/** Connects from a pod's namespace (or the host when from is 'host'). */
async function connect(from: PodName | 'host', probe: Probe): Promise<Outcome[]> {
  const spec = { protocol: 'tcp', count: 1, timeoutMs: 3_000, ...probe };
  const args = ['-e', CLIENT, JSON.stringify(spec)];
  const timeoutMs = spec.count * spec.timeoutMs + 10_000;
  const output =
    from === 'host'
      ? await runCommand(node, args, { timeoutMs })
      : await runInNetns(topology.podNetns(from), node, args, { timeoutMs });
  return JSON.parse(output) as Outcome[];
}

async function connectOnce(from: PodName | 'host', probe: Probe): Promise<Outcome> {
  const [outcome] = await connect(from, probe);
  if (outcome === undefined) throw new Error('the client reported no attempt');
  return outcome;
}

const children: ChildProcess[] = [];

/** Runs a command in a pod namespace in the background; afterAll kills what is left. */
function startInPod(pod: string, args: readonly string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', topology.podNetns(pod), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

function waitForOutput(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(`no "${text}" within ${timeoutMs} ms`), timeoutMs);
    const fail = (reason: string): void => {
      clearTimeout(timer);
      reject(new Error(`${reason}; output: ${output}`));
    };
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (!output.includes(text)) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal ?? '?'})`));
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function startServer(pod: PodName): Promise<ChildProcess> {
  const child = startInPod(pod, [node, '-e', SERVER, pod, String(APP_PORT)]);
  await waitForOutput(child, 'ready', 10_000);
  return child;
}

/** iptables-save of the node without its timestamp comments. */
async function saveNodeRules(): Promise<string> {
  const saved = await runInNetns(topology.nodeNetns, 'iptables-save', []);
  return saved
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('\n');
}

async function linkCounters(
  netns: string | undefined,
  link: string,
): Promise<{ rx: number; tx: number }> {
  const args = ['-s', '-j', 'link', 'show', 'dev', link];
  const output = await runCommand('ip', netns === undefined ? args : ['-n', netns, ...args]);
  const [stats] = JSON.parse(output) as {
    stats64: { rx: { packets: number }; tx: { packets: number } };
  }[];
  if (stats === undefined) throw new Error(`no statistics for ${link}`);
  return { rx: stats.stats64.rx.packets, tx: stats.stats64.tx.packets };
}

/** Packets counted by the node's filter rule whose comment is `comment`. */
async function filterRulePackets(comment: string): Promise<number> {
  const listing = await runInNetns(topology.nodeNetns, 'iptables', [
    ...['-t', 'filter', '-L', 'NMK-SERVICES', '-n', '-v', '-x'],
  ]);
  const line = listing.split('\n').find((candidate) => candidate.includes(`/* ${comment} */`));
  if (line === undefined) throw new Error(`no filter rule "${comment}" in:\n${listing}`);
  return Number(line.trim().split(/\s+/)[0]);
}

describe('the command runner of the cluster harness', () => {
  it('names the command, its exit code and its stderr when it fails', async () => {
    const failure = runCommand('ip', ['link', 'show', 'dev', 'nmk7-absent']);
    await expect(failure).rejects.toThrow(CommandError);
    await expect(failure).rejects.toThrow(
      /^command failed \(exit code 1\): ip link show dev nmk7-absent: Device "nmk7-absent" does not exist/,
    );
  });

  it('kills a command that outlives its timeout', async () => {
    const started = Date.now();
    await expect(runCommand('sleep', ['5'], { timeoutMs: 200 })).rejects.toThrow(
      'command failed (timed out after 200 ms): sleep 5',
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('feeds input to the command', async () => {
    await expect(runCommand('cat', [], { input: 'a b\n' })).resolves.toBe('a b\n');
  });
});

describe('the node network of a test cluster', () => {
  beforeAll(async () => {
    await createNodeNetwork(topology);
  }, 30_000);

  // Runs even when a test or a beforeAll failed: nothing of instance 7 outlives the file.
  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await destroyNodeNetwork(topology);
  }, 30_000);

  it('removes a stale cluster of a killed run, with its processes, before building anew', async () => {
    await addPodNetwork(topology, 'stale', '198.18.107.250');
    const leftover = startInPod('stale', ['sleep', '120']);
    expect(await listClusterNetns(topology)).toContain(topology.podNetns('stale'));

    await createNodeNetwork(topology);

    expect(await listClusterNetns(topology)).toEqual([topology.nodeNetns]);
    expect(await waitForExit(leftover, 3_000)).toBe(true);
    expect(leftover.signalCode).toBe('SIGKILL');
  });

  it('seals the node: forwarding on, a blackhole for 198.18.0.0/15, no default route', async () => {
    const routes = await runCommand('ip', ['-n', topology.nodeNetns, 'route', 'show']);
    expect(routes).toContain('blackhole 198.18.0.0/15');
    expect(routes).not.toContain('default');
    const forwarding = await runInNetns(topology.nodeNetns, 'sysctl', [
      ...['-n', 'net.ipv4.ip_forward'],
    ]);
    expect(forwarding.trim()).toBe('1');
  });

  it('adds to the host only its link with the pod and service routes via the node', async () => {
    const hostRoutes = await runCommand('ip', ['route', 'show', 'dev', topology.hostLink]);
    const lines = hostRoutes
      .trim()
      .split('\n')
      .map((line) => line.trim())
      .sort();
    expect(lines).toEqual(
      [
        `${topology.linkCidr} proto kernel scope link src ${topology.hostAddress}`,
        `${topology.podCidr} via ${topology.nodeAddress}`,
        `${topology.serviceCidr} via ${topology.nodeAddress}`,
      ].sort(),
    );
  });

  describe('with three pods serving TCP and UDP', () => {
    beforeAll(async () => {
      for (const [pod, ip] of Object.entries(pods)) await addPodNetwork(topology, pod, ip);
      for (const pod of Object.keys(pods) as PodName[]) await startServer(pod);
    }, 30_000);

    it('lets pods reach each other by pod IP, unmasqueraded', async () => {
      const tcp = await connectOnce('a', { host: pods.b, port: APP_PORT });
      expect(tcp.reply).toBe(`b ${pods.a}`);
      const udp = await connectOnce('c', { protocol: 'udp', host: pods.b, port: APP_PORT });
      expect(udp.reply).toBe(`b ${pods.c}`);
    });

    // Runs before any host↔node traffic, so that no ARP on the link can move its counters.
    it('drops a packet to an unassigned 198.18.0.0/15 address inside the node', async () => {
      const before = await linkCounters(topology.nodeNetns, topology.nodeLink);
      const hostBefore = await linkCounters(undefined, topology.hostLink);

      const unassignedPod = await connectOnce('a', {
        host: '198.18.107.99',
        port: APP_PORT,
        timeoutMs: 1_000,
      });
      const outsideCluster = await connectOnce('a', {
        host: '198.18.200.1',
        port: APP_PORT,
        timeoutMs: 1_000,
      });

      // The blackhole drops silently: the pod is told nothing and gives up at its own timeout.
      expect(unassignedPod.error).toBe('TIMEOUT');
      expect(outsideCluster.error).toBe('TIMEOUT');
      for (const address of ['198.18.107.99', '198.18.200.1']) {
        const covering = await runCommand('ip', [
          ...['-n', topology.nodeNetns, 'route', 'show', 'match', address],
        ]);
        expect(covering.trim()).toBe('blackhole 198.18.0.0/15');
      }
      expect(await linkCounters(topology.nodeNetns, topology.nodeLink)).toEqual(before);
      expect(await linkCounters(undefined, topology.hostLink)).toEqual(hostBefore);
    });

    it('lets the host reach a pod IP', async () => {
      const outcome = await connectOnce('host', { host: pods.b, port: APP_PORT });
      expect(outcome.reply).toBe(`b ${topology.hostAddress}`);
    });

    describe('and services', () => {
      beforeAll(async () => {
        await applyServiceRules(topology, services);
      });

      it('sends a pod reaching a ClusterIP:port to the endpoint, for TCP and UDP', async () => {
        const tcp = await connectOnce('a', { host: clusterIP(10), port: 80 });
        expect(tcp.reply).toBe(`b ${pods.a}`);
        const udp = await connectOnce('a', { protocol: 'udp', host: clusterIP(10), port: 53 });
        expect(udp.reply).toBe(`b ${pods.a}`);
      });

      it('sends the host reaching a ClusterIP:port to the endpoint', async () => {
        const outcome = await connectOnce('host', { host: clusterIP(10), port: 80 });
        expect(outcome.reply).toBe(`b ${topology.hostAddress}`);
      });

      it('spreads 40 connections over both endpoints of a service', async () => {
        const outcomes = await connect('a', { host: clusterIP(11), port: 80, count: 40 });
        const servedBy = outcomes.map((outcome) => outcome.reply?.split(' ')[0]);
        expect(servedBy.filter((pod) => pod !== 'b' && pod !== 'c')).toEqual([]);
        expect(servedBy.filter((pod) => pod === 'b').length).toBeGreaterThan(0);
        expect(servedBy.filter((pod) => pod === 'c').length).toBeGreaterThan(0);
      });

      it('lets a pod reach itself through its service, masqueraded to the node', async () => {
        const outcome = await connectOnce('a', { host: clusterIP(12), port: 80 });
        expect(outcome.reply).toBe(`a ${topology.nodeAddress}`);
      });

      it('refuses a service port without endpoints at once, through its REJECT rule', async () => {
        const tcpBefore = await filterRulePackets('default/empty:http has no endpoints');
        const udpBefore = await filterRulePackets('default/empty:dns has no endpoints');

        const tcp = await connectOnce('a', { host: clusterIP(13), port: 80 });
        const udp = await connectOnce('a', { protocol: 'udp', host: clusterIP(13), port: 53 });
        const fromHost = await connectOnce('host', { host: clusterIP(13), port: 80 });

        expect([tcp.error, udp.error, fromHost.error]).toEqual([
          'ECONNREFUSED',
          'ECONNREFUSED',
          'ECONNREFUSED',
        ]);
        expect(Math.max(tcp.ms, udp.ms, fromHost.ms)).toBeLessThan(1_000);
        expect(await filterRulePackets('default/empty:http has no endpoints')).toBe(tcpBefore + 2);
        expect(await filterRulePackets('default/empty:dns has no endpoints')).toBe(udpBefore + 1);
      });

      it('installs the rules exactly as rendered and changes nothing when re-applied', async () => {
        const before = await saveNodeRules();
        const rendered = renderServiceRules(services, parseInstalledRules(before));
        const ownRules = rendered.split('\n').filter((line) => line.startsWith('-A NMK-'));
        expect(ownRules.length).toBeGreaterThan(10);
        for (const rule of ownRules) expect(before.split('\n')).toContain(rule);
        expect(before).toContain('--probability 0.33333333349 ');

        await applyServiceRules(topology, services);

        expect(await saveNodeRules()).toBe(before);
      });

      it('deletes the chains of removed services and leaves rules it does not own', async () => {
        const foreign = ['-d', '192.0.2.1/32', '-m', 'comment', '--comment', 'not ours', '-j'];
        await runInNetns(topology.nodeNetns, 'iptables', [
          ...['-t', 'nat', '-A', 'POSTROUTING', ...foreign, 'RETURN'],
        ]);
        const withoutTwo = services.filter((rule) => rule.name !== 'two');

        await applyServiceRules(topology, withoutTwo);

        const saved = await saveNodeRules();
        expect(saved).not.toContain(serviceChainName(services[2] as ServiceRule));
        expect(saved).toContain(serviceChainName(services[0] as ServiceRule));
        expect(saved).toContain('-A POSTROUTING -d 192.0.2.1/32 -m comment --comment "not ours"');
        expect(saved.match(/-j NMK-SERVICES/g)).toHaveLength(5);

        await applyServiceRules(topology, services);
        const outcome = await connectOnce('a', { host: clusterIP(11), port: 80 });
        expect(outcome.reply).toMatch(/^[bc] /);
      });
    });
  });

  it('destroys every namespace, the host link and its routes, and every process', async () => {
    const running = children.filter(
      (child) => child.exitCode === null && child.signalCode === null,
    );
    expect(running.length).toBeGreaterThan(0);

    await destroyNodeNetwork(topology);

    expect(await listClusterNetns(topology)).toEqual([]);
    const links = await runCommand('ip', ['-o', 'link', 'show']);
    expect(links).not.toContain(`${topology.hostLink}@`);
    const routes = await runCommand('ip', ['route', 'show']);
    expect(routes).not.toContain(topology.podCidr);
    expect(routes).not.toContain(topology.serviceCidr);
    for (const child of running) expect(await waitForExit(child, 3_000)).toBe(true);
    await expect(destroyNodeNetwork(topology)).resolves.toBeUndefined();
  });
});
