// `run --role init` of the built executable inside network namespaces this test creates: the
// rules it installs, that re-running changes nothing, and the traffic they redirect.
//
//   pod netns  (nmi-<id>-pod)  eth0 198.18.250.1/30, 2001:2:0:250::1/64
//        ══ veth ══
//   peer netns (nmi-<id>-peer) eth0 198.18.250.2/30, 2001:2:0:250::2/64
//
// In the pod, stand-in listeners answer with their name: the proxy on 8900 (outbound) and 8901
// (inbound), the app on 80, 5432 and 8081, metrics on 8887. The peer answers on 80, 53 and 6379.
// A connection prints the name of whatever answered, which tells where it was redirected.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildRedirectModel } from '../../src/render/iptables-rules';
import { formatDryRun } from '../../src/runtime/init/init-role';
import { isolateBinary } from '../support/binary';
import { waitForOutput } from '../support/processes';
import type { IsolatedBinary } from '../support/binary';

const id = randomBytes(3).toString('hex');
const podNs = `nmi-${id}-pod`;
const peerNs = `nmi-${id}-peer`;
const dryNs = `nmi-${id}-dry`;
const podLink = `nmi${id}p`;
const POD_IP = '198.18.250.1';
const PEER_IP = '198.18.250.2';
const POD_IP6 = '2001:2:0:250::1';
const PEER_IP6 = '2001:2:0:250::2';
const UNPRIVILEGED_UID = 1000;
const PROXY_UID = 2102;
const node = process.execPath;
const INIT_ARGS = ['--ignore-incoming-ports', '8887,5432', '--ignore-outgoing-ports', '6379'];

/** Listens on [::] (IPv4 too) at each port and answers every connection with the port's name. */
const SERVER = `
const net = require('node:net');
const ports = JSON.parse(process.argv[1]);
let pending = Object.keys(ports).length;
for (const [port, name] of Object.entries(ports)) {
  net.createServer((socket) => socket.end(name + '\\n'))
    .listen(Number(port), '::', () => { if (--pending === 0) console.log('ready'); });
}`;

/** Connects once and prints what the other end answered, or the error code. */
const CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const socket = net.connect({ host, port: Number(port), timeout: 3000 });
let data = '';
socket.on('data', (chunk) => (data += chunk));
socket.on('end', () => console.log(data.trim()));
socket.on('timeout', () => { console.log('timeout'); socket.destroy(); });
socket.on('error', (error) => console.log('error ' + error.code));`;

let binary: IsolatedBinary | undefined;
const children: ChildProcess[] = [];

function ip(args: readonly string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

function inNetns(netns: string, file: string, args: readonly string[]): string {
  return execFileSync('ip', ['netns', 'exec', netns, file, ...args], {
    encoding: 'utf8',
    timeout: 15_000,
  });
}

/** iptables-save -t nat without its timestamp comments. */
function saveNat(netns: string, tool: 'iptables-save' | 'ip6tables-save'): string {
  return inNetns(netns, tool, ['-t', 'nat'])
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('\n');
}

function runInit(netns: string, args: readonly string[], asUid?: number) {
  if (binary === undefined) throw new Error('the binary is not prepared');
  const command =
    asUid === undefined
      ? [binary.path]
      : [
          ...['setpriv', `--reuid=${asUid}`, `--regid=${asUid}`, '--clear-groups'],
          ...['--inh-caps=-all', binary.path],
        ];
  return execa('ip', ['netns', 'exec', netns, ...command, 'run', '--role', 'init', ...args], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    extendEnv: false,
    reject: false,
    timeout: 30_000,
  });
}

function connect(netns: string, uid: number, host: string, port: number): string {
  return inNetns(netns, 'setpriv', [
    ...[`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'],
    ...[node, '-e', CLIENT, host, String(port)],
  ]).trim();
}

function startServer(netns: string, ports: Record<number, string>): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', netns, node, '-e', SERVER, JSON.stringify(ports)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return waitForOutput(child, 'ready', 'server');
}

function logMessages(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function removeNamespaces(): void {
  const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const netns of [podNs, peerNs, dryNs]) {
    if (listed.split('\n').some((line) => line.split(' ')[0] === netns)) {
      ip(['netns', 'delete', netns]);
    }
  }
}

beforeAll(async () => {
  execFileSync(node, [join(__dirname, '..', '..', 'scripts', 'build-binary.mjs'), '--if-stale'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 120_000,
  });
  binary = isolateBinary();
  // The unprivileged run needs to reach the executable.
  chmodSync(binary.dir, 0o755);
  removeNamespaces();
  for (const netns of [podNs, peerNs, dryNs]) {
    ip(['netns', 'add', netns]);
    ip(['-n', netns, 'link', 'set', 'lo', 'up']);
  }
  ip([
    '-n',
    podNs,
    'link',
    'add',
    podLink,
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    peerNs,
  ]);
  ip(['-n', podNs, 'link', 'set', podLink, 'name', 'eth0']);
  ip(['-n', podNs, 'address', 'add', `${POD_IP}/30`, 'dev', 'eth0']);
  ip(['-n', peerNs, 'address', 'add', `${PEER_IP}/30`, 'dev', 'eth0']);
  ip(['-n', podNs, 'address', 'add', `${POD_IP6}/64`, 'dev', 'eth0', 'nodad']);
  ip(['-n', peerNs, 'address', 'add', `${PEER_IP6}/64`, 'dev', 'eth0', 'nodad']);
  ip(['-n', podNs, 'link', 'set', 'eth0', 'up']);
  ip(['-n', peerNs, 'link', 'set', 'eth0', 'up']);
  await startServer(podNs, {
    8900: 'proxy-outbound',
    8901: 'proxy-inbound',
    80: 'app',
    5432: 'app-5432',
    8081: 'app-8081',
    8887: 'metrics',
  });
  await startServer(peerNs, { 80: 'peer', 53: 'peer-dns', 6379: 'peer-6379' });
});

afterAll(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  try {
    removeNamespaces();
  } finally {
    binary?.remove();
  }
});

describe('run --role init (built executable, network namespaces)', () => {
  it('installs the redirect chains and jumps for IPv4 and IPv6, beside the app on :8081', async () => {
    const result = await runInit(podNs, INIT_ARGS);
    expect(result.stderr).not.toContain('"level":"error"');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('');
    const ipv4 = saveNat(podNs, 'iptables-save');
    for (const line of [
      ':MESH_INBOUND - [0:0]',
      ':MESH_IN_REDIRECT - [0:0]',
      ':MESH_OUTPUT - [0:0]',
      ':MESH_REDIRECT - [0:0]',
      '-A PREROUTING -p tcp -j MESH_INBOUND',
      '-A OUTPUT -p tcp -j MESH_OUTPUT',
      '-A MESH_INBOUND -p tcp -m multiport --dports 5432,8887 -j RETURN',
      '-A MESH_OUTPUT ! -s 127.0.0.0/8 ! -d 127.0.0.0/8 -o lo -m owner --uid-owner 2102 -j MESH_INBOUND',
      '-A MESH_OUTPUT -m owner --uid-owner 2102 -j RETURN',
      '-A MESH_OUTPUT -p tcp -m multiport --dports 53,6379 -j RETURN',
      '-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 8900',
    ]) {
      expect(ipv4.split('\n')).toContain(line);
    }
    expect(saveNat(podNs, 'ip6tables-save').split('\n')).toContain(
      '-A MESH_OUTPUT -d ::1/128 -j RETURN',
    );
    const applied = logMessages(result.stderr).filter(
      (line) => line.msg === 'applied redirect rules',
    );
    expect(applied.map((line) => [line.family, line.rules, line.jumpsAdded])).toEqual([
      ['ipv4', 12, 2],
      ['ipv6', 11, 2],
    ]);
  });

  it('leaves identical rules when it runs again', async () => {
    const before = [saveNat(podNs, 'iptables-save'), saveNat(podNs, 'ip6tables-save')];
    const result = await runInit(podNs, INIT_ARGS);
    expect(result.exitCode).toBe(0);
    expect([saveNat(podNs, 'iptables-save'), saveNat(podNs, 'ip6tables-save')]).toEqual(before);
    const applied = logMessages(result.stderr).filter(
      (line) => line.msg === 'applied redirect rules',
    );
    expect(applied.map((line) => [line.jumpsAdded, line.replaced])).toEqual([
      [0, true],
      [0, true],
    ]);
  });

  it('redirects outbound TCP of app uids to 8900, for IPv4 and IPv6', () => {
    expect(connect(podNs, UNPRIVILEGED_UID, PEER_IP, 80)).toBe('proxy-outbound');
    expect(connect(podNs, 0, PEER_IP, 80)).toBe('proxy-outbound');
    expect(connect(podNs, UNPRIVILEGED_UID, PEER_IP6, 80)).toBe('proxy-outbound');
  });

  it("never redirects the proxy's own uid", () => {
    expect(connect(podNs, PROXY_UID, PEER_IP, 80)).toBe('peer');
    expect(connect(podNs, PROXY_UID, PEER_IP6, 80)).toBe('peer');
  });

  it('leaves loopback, the pod address, DNS and ignored outgoing ports alone', () => {
    expect(connect(podNs, UNPRIVILEGED_UID, '127.0.0.1', 80)).toBe('app');
    expect(connect(podNs, UNPRIVILEGED_UID, '::1', 80)).toBe('app');
    expect(connect(podNs, UNPRIVILEGED_UID, POD_IP, 80)).toBe('app');
    expect(connect(podNs, UNPRIVILEGED_UID, PEER_IP, 53)).toBe('peer-dns');
    expect(connect(podNs, UNPRIVILEGED_UID, PEER_IP, 6379)).toBe('peer-6379');
  });

  it('redirects inbound TCP to 8901 except ignored incoming ports', () => {
    expect(connect(peerNs, 0, POD_IP, 80)).toBe('proxy-inbound');
    expect(connect(peerNs, 0, POD_IP6, 80)).toBe('proxy-inbound');
    expect(connect(peerNs, 0, POD_IP, 5432)).toBe('app-5432');
    expect(connect(peerNs, 0, POD_IP, 8887)).toBe('metrics');
  });

  it('prints the rules on --dry-run and applies nothing', async () => {
    const result = await runInit(dryNs, [...INIT_ARGS, '--dry-run']);
    expect(result.exitCode).toBe(0);
    expect(`${result.stdout}\n`).toBe(
      formatDryRun(
        buildRedirectModel({ ignoreIncomingPorts: [8887, 5432], ignoreOutgoingPorts: [6379] }),
      ),
    );
    expect(saveNat(dryNs, 'iptables-save')).not.toContain('MESH_');
    expect(saveNat(dryNs, 'ip6tables-save')).not.toContain('MESH_');
  });

  it('fails with exit code 1 and names the privilege it lacks when not root', async () => {
    const result = await runInit(dryNs, INIT_ARGS, UNPRIVILEGED_UID);
    expect(result.exitCode).toBe(1);
    expect(logMessages(result.stderr)).toContainEqual(
      expect.objectContaining({
        level: 'error',
        msg: 'role failed',
        error: expect.stringContaining(
          "the init role needs root and the NET_ADMIN capability in the pod's network namespace: ",
        ) as unknown,
      }),
    );
    expect(saveNat(dryNs, 'iptables-save')).not.toContain('MESH_');
  });

  it('writes golden rule files that iptables-restore accepts', () => {
    const dir = join(__dirname, '..', 'golden', 'data', 'iptables');
    const files = readdirSync(dir).filter((name) => name.endsWith('.rules'));
    expect(files.length).toBeGreaterThan(0);
    for (const name of files) {
      const tool = name.includes('.ipv6.') ? 'ip6tables-restore' : 'iptables-restore';
      const input = readFileSync(join(dir, name), 'utf8');
      execFileSync('ip', ['netns', 'exec', dryNs, tool, '--test', '--noflush'], {
        input,
        stdio: ['pipe', 'ignore', 'pipe'],
        timeout: 10_000,
      });
    }
  });
});
