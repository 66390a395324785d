// The sidecar's request and TCP connection metrics end to end on loopback: a real nginx runs the
// rendered sidecar configuration with our module, counts into its shared memory, the agent's
// pipeline takes the counts from nginx's loopback stats server, and the exposition counts
// exactly the requests and connections sent, by direction, status class and peer, and the
// connections' bytes.
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { createServer as createTlsServer } from 'node:tls';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, createServer as createTcpServer } from 'node:net';
import type { Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import {
  SIDECAR_STATS_HTTP_ZONE,
  SIDECAR_STATS_PATH,
  SIDECAR_STATS_TCP_ZONE,
} from '../../src/manifests/constants';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { buildSidecarModel, renderSidecarConfig } from '../../src/render/sidecar';
import type { SidecarMetrics } from '../../src/runtime/agent/metrics/sidecar-metrics';
import {
  prepareStatsSocket,
  startSidecarMetrics,
} from '../../src/runtime/agent/metrics/sidecar-metrics';
import {
  endpoint,
  httpPort,
  service,
  shopContext,
  tcpPort,
  withMesh,
} from '../support/sidecar-snapshots';
import {
  buildMeshModule,
  prepareSidecarDir,
  startSidecarNginx,
  writeSidecarConfig,
} from '../support/sidecar-dir';
import { stopChild } from '../support/processes';

let dir: string;
let meshModule: string;
const apps: Server[] = [];
let appPort: number;
/** A TCP app that echoes what it reads, and a port where nothing listens. */
let echo: TcpServer;
let echoPort: number;
let closedPort: number;
let nginx: ChildProcess | undefined;
let metrics: SidecarMetrics;
let socketPath: string;

/** This pod is shop/web-1 serving on appPort; it calls shop/api (two pods) and shop/gone (none). */
function snapshot(): MeshSnapshot {
  return withMesh(
    { mtlsMode: 'off' },
    {
      services: {
        ...service(
          'shop/web',
          '10.96.0.10',
          [httpPort(80)],
          [{ address: '10.1.0.5', ports: { http: appPort }, pod: 'shop/web-1' }],
        ),
        ...service(
          'shop/api',
          '10.96.0.11',
          [httpPort(8080)],
          [
            {
              address: '127.0.0.1',
              ports: { http: appPort },
              pod: 'shop/api-1',
              owner: 'deployment/api',
            },
            {
              address: '127.0.0.2',
              ports: { http: appPort },
              pod: 'shop/api-2',
              owner: 'deployment/api',
            },
          ],
        ),
        ...service('shop/gone', '10.96.0.14', [httpPort(80)], []),
        ...service(
          'front/gateway',
          '10.96.0.20',
          [httpPort(80)],
          [
            {
              address: '10.3.0.2',
              ports: { http: 8080 },
              pod: 'front/gateway-0',
              owner: 'statefulset/gateway',
            },
          ],
        ),
      },
    },
  );
}

async function outbound(service: string, path: string): Promise<number> {
  const { model } = buildSidecarModel(snapshot(), shopContext());
  const loopback = model.outboundHttp.find((http) => http.service === service)?.loopback ?? '';
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: loopback, port: 8889, path, headers: { Host: service.split('/')[1] ?? '' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** What the inbound redirect would send: a PROXY header naming the peer, then the request. */
async function inbound(peer: string, path: string): Promise<number> {
  const loopback = `127.1.${appPort >> 8}.${appPort & 255}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: loopback, port: 8890 }, () => {
      socket.write(
        `PROXY TCP4 ${peer} 10.1.0.5 40000 ${appPort}\r\nGET ${path} HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n`,
      );
    });
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('end', () => resolve(Number(/^HTTP\/1.1 (\d+)/.exec(data)?.[1] ?? 0)));
    socket.on('error', reject);
  });
}

async function listenApp(host: string, port: number): Promise<number> {
  const app = createServer((req, res) => {
    res.statusCode = req.url === '/fail' ? 500 : 200;
    res.end('app\n');
  });
  apps.push(app);
  await new Promise<void>((resolve) => app.listen(port, host, resolve));
  return (app.address() as AddressInfo).port;
}

/** The members file of the configuration rendered last. */
let renderedMembers = '';

/** This pod's configuration with its paths made the test's, and its members; returns its path. */
function writeConfig(text: string): string {
  return writeSidecarConfig(dir, meshModule, text, renderedMembers);
}

const tcpContext = () => shopContext({ containerPorts: [echoPort, closedPort] });

/** The sidecar's configuration for this pod, whose TCP ports are the echo and the closed one. */
function renderConfig(mesh: MeshSnapshot = snapshot()): string {
  const rendered = renderSidecarConfig(mesh, tcpContext());
  renderedMembers = rendered.members;
  return rendered.text;
}

/** Rewrites the configuration and reloads nginx with it. */
async function reload(text: string): Promise<void> {
  writeConfig(text);
  nginx?.kill('SIGHUP');
  await new Promise((resolve) => setTimeout(resolve, 500));
}

async function startNginx(text: string): Promise<void> {
  nginx = await startSidecarNginx(dir, writeConfig(text), 8889);
}

const line = (name: string, labels: string): RegExp =>
  new RegExp(`^${name}\\{${labels.replace(/[{}]/g, '\\$&')}\\} (\\d+)$`, 'm');

async function count(labels: string): Promise<number> {
  return Number(
    line('nginx_mesh_requests_total', labels).exec(await metrics.exposition())?.[1] ?? -1,
  );
}

beforeAll(async () => {
  // The outbound server names its client certificate even without mTLS: a throwaway one will do.
  dir = prepareSidecarDir('sidecar-metrics-');
  meshModule = buildMeshModule();
  appPort = await listenApp('127.0.0.1', 0);
  await listenApp('127.0.0.2', appPort);
  // Takes only when asked (every scrape), so each count below is one take.
  // The run directory is an emptyDir in the pod, which every uid may enter.
  chmodSync(dir, 0o777);
  socketPath = prepareStatsSocket(dir);
  metrics = startSidecarMetrics({
    socketPath,
    path: SIDECAR_STATS_PATH,
    httpZone: SIDECAR_STATS_HTTP_ZONE,
    tcpZone: SIDECAR_STATS_TCP_ZONE,
    takeIntervalMs: 0,
  });
  echo = createTcpServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as AddressInfo).port;
  const closed = createTcpServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  closedPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  metrics.applySnapshot(snapshot());
  await startNginx(renderConfig());
}, 120_000);

afterAll(async () => {
  await stopChild(nginx);
  await metrics.close();
  for (const app of apps) await new Promise((resolve) => app.close(resolve));
  await new Promise((resolve) => echo.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

it('counts every proxied request once, by direction, status class and peer', async () => {
  const statuses: number[] = [];
  for (let index = 0; index < 6; index += 1) statuses.push(await outbound('shop/api', '/ok'));
  for (let index = 0; index < 2; index += 1) statuses.push(await outbound('shop/api', '/fail'));
  for (let index = 0; index < 4; index += 1) statuses.push(await outbound('shop/gone', '/'));
  for (let index = 0; index < 7; index += 1) statuses.push(await inbound('10.3.0.2', '/ok'));
  for (let index = 0; index < 3; index += 1) statuses.push(await inbound('10.9.9.9', '/fail'));
  expect(statuses).toEqual([
    ...Array<number>(6).fill(200),
    500,
    500,
    ...Array<number>(4).fill(503),
    ...Array<number>(7).fill(200),
    ...Array<number>(3).fill(500),
  ]);
  const total = async (): Promise<number> =>
    [...(await metrics.exposition()).matchAll(/^nginx_mesh_requests_total\{.*\} (\d+)$/gm)].reduce(
      (sum, match) => sum + Number(match[1]),
      0,
    );
  const deadline = Date.now() + 5_000;
  while ((await total()) < statuses.length && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  // Nothing arrives late and counts twice.
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(await total()).toBe(statuses.length);
  const api = (pod: string, code: string) =>
    `direction="outbound",code="${code}",dst_namespace="shop",dst_pod="${pod}",dst_deployment="api",dst_service="api"`;
  // Round robin: the six successes and two failures alternate between the two pods.
  expect(await count(api('api-1', '2xx'))).toBe(3);
  expect(await count(api('api-2', '2xx'))).toBe(3);
  expect(await count(api('api-1', '5xx'))).toBe(1);
  expect(await count(api('api-2', '5xx'))).toBe(1);
  expect(
    await count(
      'direction="outbound",code="5xx",dst_namespace="shop",dst_pod="",dst_service="gone"',
    ),
  ).toBe(4);
  expect(
    await count(
      'direction="inbound",code="2xx",src_namespace="front",src_pod="gateway-0",src_statefulset="gateway"',
    ),
  ).toBe(7);
  expect(await count('direction="inbound",code="5xx",src_namespace="",src_pod=""')).toBe(3);
  const text = await metrics.exposition();
  expect(text).toMatch(
    line(
      'nginx_mesh_request_duration_milliseconds_count',
      'direction="inbound",code="2xx",src_namespace="front",src_pod="gateway-0",src_statefulset="gateway"',
    ),
  );
  expect(text).toContain(
    'nginx_mesh_request_duration_milliseconds_bucket{direction="inbound",code="2xx",src_namespace="front",src_pod="gateway-0",src_statefulset="gateway",le="+Inf"} 7\n',
  );
  expect(text).toContain('\nnginx_mesh_stats_unreadable_total 0\n');
}, 60_000);

/**
 * POSTs a take to nginx's stats socket as a process of uid (as an app container's would be, were
 * the socket's directory in its filesystem); resolves to its status code or its error code.
 */
function takeAs(uid: number, method: 'GET' | 'POST'): string {
  const script = `require('node:http')
    .request({ socketPath: process.argv[1], path: '/stats', method: process.argv[2] }, (res) => {
      console.log(res.statusCode); res.resume();
    })
    .on('error', (error) => console.log(error.code))
    .end();`;
  return execFileSync(
    'setpriv',
    [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', script].concat([
      '--',
      socketPath,
      method,
    ]),
    { encoding: 'utf8', timeout: 10_000 },
  ).trim();
}

/** Whether something accepts TCP connections at host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

describe("the stats server, which a take empties, is the agent's alone", () => {
  it('listens on no TCP port of the loopback the app containers share', async () => {
    expect(readFileSync(join(dir, 'nginx.conf'), 'utf8')).toContain(`listen unix:${socketPath};`);
    // 8886, the first port the sidecar reserves, is where the counters were served over TCP.
    expect(await accepts('127.0.0.1', 8886)).toBe(false);
  });

  it("refuses a process of another uid, which cannot enter the socket's directory", () => {
    expect(takeAs(65534, 'POST')).toBe('EACCES');
    expect(takeAs(65534, 'GET')).toBe('EACCES');
    // The agent's uid (here the test's) still reaches them.
    expect(takeAs(process.getuid?.() ?? 0, 'GET')).toBe('200');
  });
});

it('keeps counts across an nginx reload, taken or not yet taken', async () => {
  const labels =
    'direction="inbound",code="2xx",src_namespace="front",src_pod="gateway-0",src_statefulset="gateway"';
  const before = await count(labels);
  // Counted by the old workers and not taken before the reload: the zone outlives them.
  expect(await inbound('10.3.0.2', '/ok')).toBe(200);
  nginx?.kill('SIGHUP');
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(await inbound('10.3.0.2', '/ok')).toBe(200);
  const deadline = Date.now() + 5_000;
  while ((await count(labels)) < before + 2 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  expect(await count(labels)).toBe(before + 2);
}, 30_000);

it('counts thousands of requests exactly, taken while they run, none lost or unreadable', async () => {
  const labels = `direction="outbound",code="2xx",dst_namespace="shop",dst_pod="api-2",dst_deployment="api",dst_service="api"`;
  const all = `direction="outbound",code="2xx",dst_namespace="shop",dst_pod="api-1",dst_deployment="api",dst_service="api"`;
  const before = (await count(labels)) + (await count(all));
  const { model } = buildSidecarModel(snapshot(), shopContext());
  const loopback = model.outboundHttp.find((http) => http.service === 'shop/api')?.loopback ?? '';
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: loopback, port: 8889, path: '/ok', agent, headers: { Host: 'api' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const requests = 3_000;
  let sent = 0;
  let ok = 0;
  const worker = async (): Promise<void> => {
    while (sent < requests) {
      sent += 1;
      if ((await one()) === 200) ok += 1;
    }
  };
  // Takes run alongside the requests: a take empties the zone while nginx adds to it.
  let takes = 0;
  const taking = (async () => {
    while (sent < requests) {
      await metrics.take();
      takes += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  await Promise.all([...Array.from({ length: 8 }, worker), taking]);
  agent.destroy();
  expect(ok).toBe(requests);
  expect(takes).toBeGreaterThan(3);
  expect((await count(labels)) + (await count(all)) - before).toBe(requests);
  const text = await metrics.exposition();
  expect(text).toMatch(/^nginx_mesh_stats_unreadable_total 0$/m);
  expect(text).toMatch(/^nginx_mesh_stats_lost_total 0$/m);
}, 60_000);

/**
 * A TCP connection as the inbound redirect would hand it to the plaintext TCP server: a PROXY
 * header naming the peer, then the payload; ends its half once the echo is complete (or at
 * once when nothing comes back) and resolves with what it read when the sidecar closes.
 */
async function tcpInbound(peer: string, port: number, payload: string): Promise<string> {
  const loopback = `127.1.${port >> 8}.${port & 255}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: loopback, port: 8907 }, () => {
      socket.write(`PROXY TCP4 ${peer} 10.1.0.5 40000 ${port}\r\n${payload}`);
    });
    let data = '';
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString();
      if (data.length >= payload.length) socket.end();
    });
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}

const tcpLine = async (name: string, labels: string): Promise<number> =>
  Number(line(name, labels).exec(await metrics.exposition())?.[1] ?? -1);

async function tcpTotal(): Promise<number> {
  return [
    ...(await metrics.exposition()).matchAll(/^nginx_mesh_tcp_connections_total\{.*\} (\d+)$/gm),
  ].reduce((sum, match) => sum + Number(match[1]), 0);
}

/** Waits until the TCP series hold `expected` connections, then a little more for strays. */
async function settleTcp(expected: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await tcpTotal()) < expected && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 200));
}

const gateway = (code: string): string =>
  `direction="inbound",code="${code}",src_namespace="front",src_pod="gateway-0",src_statefulset="gateway"`;

it('counts each TCP connection once, with its bytes each way, apart from HTTP requests', async () => {
  const requestsBefore =
    (await metrics.exposition()).match(/^nginx_mesh_requests_total\{.*$/gm) ?? [];
  const before = await tcpTotal();
  const payloads = ['a', 'hello mesh\n', 'x'.repeat(1000), 'tcp', 'z'.repeat(70_000)];
  for (const payload of payloads)
    expect(await tcpInbound('10.3.0.2', echoPort, payload)).toBe(payload);
  await settleTcp(before + payloads.length);
  expect(await tcpTotal()).toBe(before + payloads.length);
  const bytes = payloads.reduce((sum, payload) => sum + payload.length, 0);
  expect(await tcpLine('nginx_mesh_tcp_connections_total', gateway('2xx'))).toBe(payloads.length);
  expect(await tcpLine('nginx_mesh_tcp_received_bytes_total', gateway('2xx'))).toBe(bytes);
  expect(await tcpLine('nginx_mesh_tcp_sent_bytes_total', gateway('2xx'))).toBe(bytes);
  expect(
    await tcpLine('nginx_mesh_tcp_connection_duration_milliseconds_count', gateway('2xx')),
  ).toBe(payloads.length);
  expect((await metrics.exposition()).match(/^nginx_mesh_requests_total\{.*$/gm) ?? []).toEqual(
    requestsBefore,
  );
}, 30_000);

it('counts a TCP connection to a port where nothing listens as an upstream failure', async () => {
  const before = await tcpTotal();
  expect(await tcpInbound('10.9.9.9', closedPort, 'lost')).toBe('');
  await settleTcp(before + 1);
  expect(await tcpTotal()).toBe(before + 1);
  expect(
    await tcpLine(
      'nginx_mesh_tcp_connections_total',
      'direction="inbound",code="5xx",src_namespace="",src_pod=""',
    ),
  ).toBe(1);
  // What nginx read before the upstream refused may count as received; nothing was sent.
  expect(
    await tcpLine(
      'nginx_mesh_tcp_sent_bytes_total',
      'direction="inbound",code="5xx",src_namespace="",src_pod=""',
    ),
  ).toBe(0);
}, 30_000);

it('counts a TCP connection access control refuses as 4xx, with its peer', async () => {
  const base = snapshot();
  await reload(renderConfig({ ...base, mesh: { ...base.mesh, accessControlMode: 'deny' } }));
  const before = await tcpTotal();
  const refused = 3;
  for (let index = 0; index < refused; index += 1)
    expect(await tcpInbound('10.3.0.2', echoPort, 'let me in')).toBe('');
  await settleTcp(before + refused);
  expect(await tcpTotal()).toBe(before + refused);
  expect(await tcpLine('nginx_mesh_tcp_connections_total', gateway('4xx'))).toBe(refused);
  expect(await tcpLine('nginx_mesh_tcp_sent_bytes_total', gateway('4xx'))).toBe(0);
}, 30_000);

it('counts outbound TCP connections over mTLS under the destination pod and Service', async () => {
  // shop/db-0 on 127.0.0.3 stands for a meshed pod's sidecar: TLS with the DNS name of its
  // identity, requiring this pod's certificate; it echoes.
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
      .concat(['-keyout', join(dir, 'db-key.pem'), '-out', join(dir, 'db.crt')])
      .concat(['-days', '1', '-subj', '/CN=db', '-addext', 'subjectAltName=DNS:db.shop.svc']),
    { stdio: 'pipe' },
  );
  const ownCertificate = readFileSync(join(dir, 'bundle.crt'), 'utf8');
  const db = createTlsServer(
    {
      key: readFileSync(join(dir, 'db-key.pem')),
      cert: readFileSync(join(dir, 'db.crt')),
      ca: ownCertificate,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => socket.pipe(socket),
  );
  await new Promise<void>((resolve) => db.listen(0, '127.0.0.3', resolve));
  // nginx's workers (not root) load the certificate per connection.
  chmodSync(dir, 0o755);
  try {
    writeFileSync(
      join(dir, 'bundle.crt'),
      ownCertificate + readFileSync(join(dir, 'db.crt'), 'utf8'),
    );
    const base = snapshot();
    const mesh: MeshSnapshot = {
      ...base,
      mesh: { ...base.mesh, mtlsMode: 'permissive' },
      services: {
        ...base.services,
        ...service(
          'shop/db',
          '10.96.0.12',
          [tcpPort(5432, 'db')],
          [
            {
              ...endpoint(
                '127.0.0.3',
                { db: (db.address() as AddressInfo).port },
                'shop/db-0',
                'shop/db',
              ),
              owner: 'statefulset/db',
            },
          ],
        ),
      },
    };
    metrics.applySnapshot(mesh);
    await reload(renderConfig(mesh));
    const loopback =
      buildSidecarModel(mesh, tcpContext()).model.outboundTcp.find(
        (tcp) => tcp.service === 'shop/db',
      )?.loopback ?? '';
    const before = await tcpTotal();
    const payloads = ['SELECT 1;', 'q'.repeat(5000), 'bye'];
    for (const payload of payloads) {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: loopback, port: 8906 }, () => socket.write(payload));
        let data = '';
        socket.on('data', (chunk: Buffer) => {
          data += chunk.toString();
          if (data.length >= payload.length) socket.end();
        });
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
      });
      expect(answer).toBe(payload);
    }
    await settleTcp(before + payloads.length);
    expect(await tcpTotal()).toBe(before + payloads.length);
    const labels =
      'direction="outbound",code="2xx",dst_namespace="shop",dst_pod="db-0",dst_statefulset="db",dst_service="db"';
    const bytes = payloads.reduce((sum, payload) => sum + payload.length, 0);
    expect(await tcpLine('nginx_mesh_tcp_connections_total', labels)).toBe(payloads.length);
    expect(await tcpLine('nginx_mesh_tcp_sent_bytes_total', labels)).toBe(bytes);
    expect(await tcpLine('nginx_mesh_tcp_received_bytes_total', labels)).toBe(bytes);
  } finally {
    await new Promise((resolve) => db.close(resolve));
  }
}, 30_000);
