// Outbound TCP that the redirect server (8900) proxies in plaintext is counted under its Service,
// traffic that leaves the mesh under the one label egress; under strict mTLS that traffic is
// refused (HTTP 403 naming the annotation, anything else closed) unless the pod's annotation
// allows it: the rendered sidecar configuration (mTLS off, then strict) runs in a network
// namespace whose outbound TCP is redirected to 8900 as nginx-mesh-init would, and the agent's
// pipeline, in this process, takes what nginx counted (its stats server listens on the
// namespace's side of the veth here, as this process is outside).
//
//   netns nmt-<id>: lo, and a veth pair: 198.18.252.2/24 inside, 198.18.252.1/24 here
//   nat OUTPUT in the netns: TCP not to 127.0.0.0/8 → 8900, except nginx's workers (uid 65534)
//   shop/db: ClusterIP 198.18.252.10:5432, one endpoint shop/db-0 = an echo server here; a second
//   echo server here belongs to no Service
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { execa } from 'execa';
import {
  SIDECAR_STATS_HTTP_ZONE,
  SIDECAR_STATS_PATH,
  SIDECAR_STATS_TCP_ZONE,
} from '../../src/manifests/constants';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { renderSidecarConfig } from '../../src/render/sidecar';
import type { SidecarMetrics } from '../../src/runtime/agent/metrics/sidecar-metrics';
import {
  prepareStatsSocket,
  startSidecarMetrics,
} from '../../src/runtime/agent/metrics/sidecar-metrics';
import { service, shopContext, tcpPort, withMesh } from '../support/sidecar-snapshots';
import { buildMeshModule, prepareSidecarDir, writeSidecarConfig } from '../support/sidecar-dir';
import { stopChild } from '../support/processes';

const id = randomBytes(3).toString('hex');
const NETNS = `nmt-${id}`;
const LINK = `nmt${id}a`;
const LINK_PEER = `nmt${id}b`;
const HOST = '198.18.252.1';
const POD = '198.18.252.2';
const CLUSTER_IP = '198.18.252.10';
const NGINX_WORKER_UID = 65534;

/** Connects from the pod, sends the payload, ends once it is echoed; prints what came back. */
const CLIENT = `
const net = require('node:net');
const [host, port, payload] = JSON.parse(process.argv[1]);
let data = '';
const socket = net.connect({ host, port }, () => socket.write(payload));
socket.on('data', (chunk) => { data += chunk; if (data.length >= payload.length) socket.end(); });
socket.on('close', () => console.log(JSON.stringify(data)));
socket.on('error', (error) => console.log(JSON.stringify('error ' + error.code)));
setTimeout(() => { console.log(JSON.stringify('timeout ' + data)); process.exit(0); }, 5000).unref();`;

let dir = '';
let nginx: ChildProcess | undefined;
let echo: Server;
let echoPort: number;
let outside: Server;
let outsidePort: number;
let metrics: SidecarMetrics;

function ip(args: readonly string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function inNetns(file: string, args: readonly string[]): string {
  return execFileSync('ip', ['netns', 'exec', NETNS, file, ...args], { encoding: 'utf8' });
}

function removeNamespace(): void {
  const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (!listed.split('\n').some((line) => line.split(' ')[0] === NETNS)) return;
  const pids = execFileSync('ip', ['netns', 'pids', NETNS], { encoding: 'utf8' });
  for (const pid of pids.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  ip(['netns', 'delete', NETNS]);
}

function snapshot(mtlsMode: 'off' | 'strict' = 'off'): MeshSnapshot {
  return withMesh(
    { mtlsMode },
    {
      services: service(
        'shop/db',
        CLUSTER_IP,
        [tcpPort(5432, 'db')],
        [{ address: HOST, ports: { db: echoPort }, pod: 'shop/db-0', owner: 'statefulset/db' }],
      ),
    },
  );
}

let meshModule = '';

/** Renders the sidecar's configuration for this pod; returns its path. */
function writeConfig(mesh: MeshSnapshot, defaultEgressAllowed: boolean): string {
  const { text, members } = renderSidecarConfig(
    mesh,
    shopContext({ podIPs: [POD], containerPorts: [], defaultEgressAllowed }),
  );
  return writeSidecarConfig(dir, meshModule, text, members);
}

/** Reloads nginx with a new configuration; resolves once the egress of the pod behaves so. */
async function reconfigure(
  mesh: MeshSnapshot,
  defaultEgressAllowed: boolean,
  egress: 'direct' | 'refused',
): Promise<void> {
  writeConfig(mesh, defaultEgressAllowed);
  nginx?.kill('SIGHUP');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const echoed = (await fromPod(HOST, outsidePort, 'probe')) === 'probe';
    if (echoed === (egress === 'direct')) return;
    if (Date.now() > deadline) throw new Error(`nginx did not take the ${egress} configuration`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** An HTTP GET from the pod: status and body, or the error. */
async function httpFromPod(host: string, port: number): Promise<string> {
  const script = `fetch('http://${host}:${port}/', { signal: AbortSignal.timeout(8000) }).then(async (r) => console.log(r.status + ' ' + (await r.text())), (e) => console.log('error ' + (e.cause?.code ?? e.name)))`;
  const { stdout } = await execa('ip', ['netns', 'exec', NETNS, process.execPath, '-e', script]);
  return stdout.trim();
}

async function fromPod(host: string, port: number, payload: string): Promise<string> {
  const { stdout } = await execa('ip', [
    ...['netns', 'exec', NETNS, process.execPath, '-e', CLIENT],
    JSON.stringify([host, port, payload]),
  ]);
  return JSON.parse(stdout) as string;
}

async function tcpTotal(): Promise<number> {
  return [
    ...(await metrics.exposition()).matchAll(/^nginx_mesh_tcp_connections_total\{.*\} (\d+)$/gm),
  ].reduce((sum, match) => sum + Number(match[1]), 0);
}

async function series(name: string, labels: string): Promise<number> {
  const line = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm');
  return Number(line.exec(await metrics.exposition())?.[1] ?? -1);
}

beforeAll(async () => {
  // The outbound HTTP server names a client certificate even without mTLS: a throwaway one.
  dir = prepareSidecarDir('sidecar-tcp-redirect-');
  chmodSync(dir, 0o755);
  meshModule = buildMeshModule();

  removeNamespace();
  ip(['netns', 'add', NETNS]);
  ip(['link', 'add', LINK, 'type', 'veth', 'peer', 'name', LINK_PEER, 'netns', NETNS]);
  ip(['address', 'add', `${HOST}/24`, 'dev', LINK]);
  ip(['link', 'set', LINK, 'up']);
  ip(['-n', NETNS, 'link', 'set', 'lo', 'up']);
  ip(['-n', NETNS, 'address', 'add', `${POD}/24`, 'dev', LINK_PEER]);
  ip(['-n', NETNS, 'link', 'set', LINK_PEER, 'up']);
  inNetns('iptables', [
    ...['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-m', 'owner'],
    ...['--uid-owner', String(NGINX_WORKER_UID), '-j', 'RETURN'],
  ]);
  inNetns('iptables', [
    ...['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '!', '-d', '127.0.0.0/8'],
    ...['-j', 'REDIRECT', '--to-ports', '8900'],
  ]);

  echo = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, HOST, resolve));
  echoPort = (echo.address() as AddressInfo).port;
  outside = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => outside.listen(0, HOST, resolve));
  outsidePort = (outside.address() as AddressInfo).port;
  metrics = startSidecarMetrics({
    socketPath: prepareStatsSocket(dir),
    path: SIDECAR_STATS_PATH,
    httpZone: SIDECAR_STATS_HTTP_ZONE,
    tcpZone: SIDECAR_STATS_TCP_ZONE,
    takeIntervalMs: 0,
  });
  metrics.applySnapshot(snapshot());

  const config = writeConfig(snapshot(), false);
  const child = spawn(
    'ip',
    ['netns', 'exec', NETNS, 'nginx', '-e', 'stderr', '-p', dir, '-c', config, '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  nginx = child;
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (inNetns('ss', ['-ltnH', 'sport = :8900']).trim() !== '') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx did not listen on 8900: ${stderr}`);
}, 120_000);

afterAll(async () => {
  await stopChild(nginx);
  removeNamespace();
  await metrics.close();
  await new Promise((resolve) => echo.close(resolve));
  await new Promise((resolve) => outside.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

it('counts plaintext connections to a mesh Service under it, and what leaves as egress', async () => {
  // By ClusterIP and by endpoint address: both are the Service.
  const payloads = ['ping', 'y'.repeat(3000), 'bye\n'];
  expect(await fromPod(CLUSTER_IP, 5432, payloads[0] ?? '')).toBe(payloads[0]);
  expect(await fromPod(CLUSTER_IP, 5432, payloads[1] ?? '')).toBe(payloads[1]);
  expect(await fromPod(HOST, echoPort, payloads[2] ?? '')).toBe(payloads[2]);
  // No Service's: it leaves the mesh, counted under the one label egress.
  expect(await fromPod(HOST, outsidePort, 'outside')).toBe('outside');
  const deadline = Date.now() + 5_000;
  while ((await tcpTotal()) < payloads.length + 1 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(await tcpTotal()).toBe(payloads.length + 1);
  const labels =
    'direction="outbound",code="2xx",dst_namespace="shop",dst_pod="db-0",dst_statefulset="db",dst_service="db"';
  const bytes = payloads.reduce((sum, payload) => sum + payload.length, 0);
  expect(await series('nginx_mesh_tcp_connections_total', labels)).toBe(payloads.length);
  expect(await series('nginx_mesh_tcp_sent_bytes_total', labels)).toBe(bytes);
  expect(await series('nginx_mesh_tcp_received_bytes_total', labels)).toBe(bytes);
  const egress = 'direction="outbound",code="2xx",dst_namespace="",dst_pod="",dst_service="egress"';
  expect(await series('nginx_mesh_tcp_connections_total', egress)).toBe(1);
  expect(await series('nginx_mesh_tcp_sent_bytes_total', egress)).toBe('outside'.length);
  expect(await metrics.exposition()).not.toMatch(/^nginx_mesh_requests_total\{/m);
}, 30_000);

describe('under strict mTLS', () => {
  let outsideHttp: HttpServer;
  let outsideHttpPort = 0;

  beforeAll(async () => {
    outsideHttp = createHttpServer((_, res) => res.end('outside answered'));
    await new Promise<void>((resolve) => outsideHttp.listen(0, HOST, resolve));
    outsideHttpPort = (outsideHttp.address() as AddressInfo).port;
    await reconfigure(snapshot('strict'), false, 'refused');
  }, 30_000);

  afterAll(async () => {
    await new Promise((resolve) => outsideHttp.close(resolve));
  });

  it('refuses HTTP to a destination outside the mesh with 403 naming the annotation', async () => {
    const refused =
      'direction="outbound",code="4xx",dst_namespace="",dst_pod="",dst_service="egress"';
    const count = async () => Math.max(0, await series('nginx_mesh_requests_total', refused));
    // The probes that saw the configuration change were refused too: count from here.
    const before = await count();
    expect(await httpFromPod(HOST, outsideHttpPort)).toBe(
      '403 egress refused: mTLS is strict and this pod\'s annotation config.nsm.nginx.com/default-egress-allowed is not "true"',
    );
    const deadline = Date.now() + 5_000;
    while ((await count()) < before + 1 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await count()) - before).toBe(1);
  });

  it('closes other protocols to it without an answer, and still reaches the mesh Service', async () => {
    // A client that sends first (TLS, a database protocol): closed at once, nothing echoed.
    const started = Date.now();
    expect(await fromPod(HOST, outsidePort, 'not http at all')).toBe('');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await fromPod(HOST, outsidePort, '\u0016\u0003\u0001\u0000\u0005hello')).toBe('');
    expect(await fromPod(CLUSTER_IP, 5432, 'still here')).toBe('still here');
  });

  it('lets it leave directly for a pod annotated default-egress-allowed: "true"', async () => {
    await reconfigure(snapshot('strict'), true, 'direct');
    expect(await httpFromPod(HOST, outsideHttpPort)).toBe('200 outside answered');
    expect(await fromPod(HOST, outsidePort, 'allowed')).toBe('allowed');
  }, 30_000);
});
