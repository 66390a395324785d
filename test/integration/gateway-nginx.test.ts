// An ingress gateway's configuration against the real nginx: every golden configuration passes
// `nginx -t`, and a running gateway picks the server by host (exact before wildcard, 404 for a
// host no listener takes), matches paths and headers, splits by weight, terminates TLS with the
// certificate SNI names, redirects on the listener's port, and calls a meshed backend over mTLS.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderGatewayConfig } from '../../src/render/gateway';
import { takeFromNginx } from '../../src/runtime/agent/metrics/sidecar-metrics';
import { parseStatsKey, parseStatsTake } from '../../src/runtime/agent/metrics/stats';
import type { MeshSnapshot, SnapshotGatewayListener } from '../../src/manifests/snapshot/types';
import {
  exact,
  gatewayContext,
  gatewayOf,
  gatewayRoute,
  on,
  prefix,
} from '../support/gateway-snapshots';
import { httpPort, service, withMesh } from '../support/sidecar-snapshots';
import {
  buildMeshModule,
  listensSoon,
  moduleConfigPreamble,
  nginxTestConfig,
  prepareSidecarDir,
  startSidecarNginx,
  writeSidecarConfig,
} from '../support/sidecar-dir';
import { stopChild } from '../support/processes';

const goldenDir = join(__dirname, '..', 'golden', 'data', 'gateway-nginx');

/** What an app saw of a request, as it answers it. */
interface Seen {
  readonly app: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly seen?: Seen;
  /** HTTPS: the CN of the certificate the gateway showed. */
  readonly certificate?: string;
}

const apps: Server[] = [];
let dir: string;
let gateway: ChildProcess | undefined;
let backend: ChildProcess | undefined;
let httpPortNumber: number;
let httpsPortNumber: number;
const appPorts: Record<string, number> = {};
const listenerCertificates: string[] = [];

/** A port nothing listens on now, on loopback. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function listenApp(name: string): Promise<number> {
  const app = createServer((req, res) => {
    const seen: Seen = { app: name, url: req.url ?? '', headers: req.headers };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(seen));
  });
  apps.push(app);
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  return (app.address() as AddressInfo).port;
}

/** A self-signed EC certificate for `name` (CN and DNS SAN) as <base>.crt and <base>.key. */
function certificate(base: string, name: string): void {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
      .concat(['-keyout', `${base}.key`, '-out', `${base}.crt`, '-days', '1'])
      .concat(['-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`]),
    { stdio: 'pipe' },
  );
}

/**
 * shop/web, shop/api and shop/api-v2 are plaintext apps; shop/secure is a meshed pod's proxy
 * (nginx requiring the gateway's certificate) with identity shop/secure.
 */
function snapshot(backendPort: number): MeshSnapshot {
  const listeners: SnapshotGatewayListener[] = [
    { name: 'http', port: httpPortNumber, protocol: 'HTTP' },
    { name: 'https', port: httpsPortNumber, protocol: 'HTTPS', hostname: 'secure.example.com' },
    { name: 'admin', port: httpsPortNumber, protocol: 'HTTPS', hostname: 'admin.example.com' },
  ];
  const app = (key: string, port: number, name: string): MeshSnapshot['services'] =>
    service(
      key,
      `10.96.0.${Object.keys(appPorts).indexOf(name) + 50}`,
      [httpPort(port)],
      [{ address: '127.0.0.1', ports: { http: appPorts[name] ?? 0 } }],
    );
  const v1 = { service: 'shop/api', port: 8080, weight: 3 };
  const v2 = { service: 'shop/api-v2', port: 8080, weight: 1 };
  const web = { service: 'shop/web', port: 80, weight: 1 };
  return withMesh(
    { mtlsMode: 'permissive' },
    {
      services: {
        ...app('shop/web', 80, 'web'),
        ...app('shop/api', 8080, 'v1'),
        ...app('shop/api-v2', 8080, 'v2'),
        // the same proxy, claimed by another identity than the one its certificate names
        ...service(
          'shop/impostor',
          '10.96.0.61',
          [httpPort(443)],
          [
            {
              address: '127.0.0.1',
              ports: { http: backendPort },
              pod: 'shop/impostor-1',
              identity: 'shop/impostor',
            },
          ],
        ),
        ...service(
          'shop/secure',
          '10.96.0.60',
          [httpPort(443)],
          [
            {
              address: '127.0.0.1',
              ports: { http: backendPort },
              pod: 'shop/secure-1',
              identity: 'shop/secure',
            },
          ],
        ),
      },
      gateways: gatewayOf(listeners),
      gatewayRoutes: {
        ...gatewayRoute(
          'shop/exact',
          [on('http', ['shop.example.com'])],
          [
            {
              matches: [exact('/old')],
              redirect: { path: { type: 'ReplaceFullPath', value: '/new' }, statusCode: 301 },
              backends: [],
            },
            {
              matches: [
                prefix('/api', { headers: [{ name: 'x-canary', type: 'Exact', value: 'yes' }] }),
              ],
              backends: [v2],
            },
            { matches: [prefix('/split')], backends: [v1, v2] },
            { matches: [prefix('/')], backends: [web] },
          ],
        ),
        ...gatewayRoute(
          'shop/wild',
          [on('http', ['*.example.com'])],
          [{ matches: [prefix('/')], backends: [v2] }],
        ),
        ...gatewayRoute(
          'shop/meshed',
          [on('http', ['mtls.example.com'])],
          [
            {
              matches: [prefix('/mtls')],
              backends: [{ service: 'shop/secure', port: 443, weight: 1 }],
            },
          ],
        ),
        ...gatewayRoute(
          'shop/impostor',
          [on('http', ['impostor.example.com'])],
          [
            {
              matches: [prefix('/')],
              backends: [{ service: 'shop/impostor', port: 443, weight: 1 }],
            },
          ],
        ),
        ...gatewayRoute(
          'shop/secure',
          [on('https')],
          [{ matches: [prefix('/')], backends: [{ ...v1, weight: 1 }] }],
        ),
        ...gatewayRoute(
          'shop/admin',
          [on('admin')],
          [
            {
              matches: [exact('/moved')],
              redirect: { path: { type: 'ReplaceFullPath', value: '/here' }, statusCode: 302 },
              backends: [],
            },
            { matches: [prefix('/')], backends: [web] },
          ],
        ),
      },
    },
  );
}

/** The meshed backend's nginx: mTLS with its identity's DNS name, requiring the gateway's SVID. */
async function startBackend(meshModule: string, port: number): Promise<ChildProcess> {
  certificate(join(dir, 'backend'), 'secure.shop.svc');
  writeFileSync(join(dir, 'gateway-ca.crt'), readFileSync(join(dir, 'bundle.crt')));
  const config = join(dir, 'backend.conf');
  writeFileSync(
    config,
    `${moduleConfigPreamble(dir, meshModule, { pid: 'backend.pid' })}
    server {
        listen 127.0.0.1:${port} ssl;
        ssl_certificate ${dir}/backend.crt;
        ssl_certificate_key ${dir}/backend.key;
        ssl_client_certificate ${dir}/gateway-ca.crt;
        ssl_verify_client on;
        location / {
            default_type text/plain;
            return 200 "meshed verify=$ssl_client_verify client=$ssl_client_s_dn host=$host xfp=$http_x_forwarded_proto xff=$http_x_forwarded_for uri=$request_uri";
        }
    }
}
`,
  );
  const child = spawn('nginx', ['-e', 'stderr', '-p', dir, '-c', config, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (await listensSoon(port)) return child;
  child.kill('SIGKILL');
  throw new Error(`backend nginx did not listen on ${port}: ${stderr}`);
}

beforeAll(async () => {
  dir = prepareSidecarDir('gateway-nginx-');
  const meshModule = buildMeshModule();
  for (const name of ['web', 'v1', 'v2']) appPorts[name] = await listenApp(name);
  httpPortNumber = await freePort();
  httpsPortNumber = await freePort();
  const backendPort = await freePort();
  mkdirSync(join(dir, 'gateway'));
  certificate(join(dir, 'gateway', 'https'), 'secure.example.com');
  certificate(join(dir, 'gateway', 'admin'), 'admin.example.com');
  for (const name of ['https', 'admin'])
    listenerCertificates.push(readFileSync(join(dir, 'gateway', `${name}.crt`), 'utf8'));
  backend = await startBackend(meshModule, backendPort);
  // The gateway trusts the backend's certificate as it trusts the mesh's CA.
  writeFileSync(
    join(dir, 'bundle.crt'),
    readFileSync(join(dir, 'bundle.crt'), 'utf8') + readFileSync(join(dir, 'backend.crt'), 'utf8'),
  );
  const rendered = renderGatewayConfig(snapshot(backendPort), gatewayContext());
  expect(rendered.warnings).toEqual([]);
  // The listeners on loopback only, as the rest of the test's servers.
  const text = rendered.text
    .replaceAll(`listen ${httpPortNumber}`, `listen 127.0.0.1:${httpPortNumber}`)
    .replaceAll(`listen ${httpsPortNumber}`, `listen 127.0.0.1:${httpsPortNumber}`);
  const config = writeSidecarConfig(dir, meshModule, text, rendered.members);
  gateway = await startSidecarNginx(dir, config, httpPortNumber);
}, 120_000);

afterAll(async () => {
  await stopChild(gateway);
  await stopChild(backend);
  for (const app of apps) await new Promise((resolve) => app.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function collect(
  res: IncomingMessage,
  resolve: (answer: Answer) => void,
  certificate?: string,
): void {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (body += chunk));
  res.on('end', () => {
    const seen =
      res.headers['content-type'] === 'application/json' ? (JSON.parse(body) as Seen) : undefined;
    resolve({
      status: res.statusCode ?? 0,
      headers: res.headers,
      body,
      ...(seen === undefined ? {} : { seen }),
      ...(certificate === undefined ? {} : { certificate }),
    });
  });
}

function get(host: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: httpPortNumber, path, headers: { Host: host, ...headers } },
      (res) => collect(res, resolve),
    );
    req.on('error', reject);
    req.end();
  });
}

function getTls(servername: string, path: string, host = servername): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: httpsPortNumber,
        servername,
        path,
        headers: { Host: host },
        ca: listenerCertificates,
        agent: false,
      },
      (res) => {
        const peer = (res.socket as TLSSocket).getPeerCertificate();
        collect(res, resolve, String(peer.subject.CN));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

it.each(readdirSync(goldenDir).filter((file) => file.endsWith('.conf')))(
  'golden %s passes nginx -t with our module',
  (file) => {
    const text = readFileSync(join(goldenDir, file), 'utf8');
    const members = readFileSync(join(goldenDir, file.replace(/\.conf$/, '.members')), 'utf8');
    // nginx -t loads the listeners' certificates: the scratch directory's own stand in for them.
    const withCertificates = text.replace(
      /ssl_certificate(_key)? \/etc\/nginx-mesh\/gateway\/[a-z-]+\.(crt|key);/g,
      (_, key: string | undefined) =>
        key === undefined
          ? 'ssl_certificate /etc/nginx-mesh/bundle.crt;'
          : 'ssl_certificate_key /etc/nginx-mesh/key.pem;',
    );
    expect(() => nginxTestConfig(withCertificates, members)).not.toThrow();
  },
);

describe('hosts', () => {
  it('prefers the exact host to the wildcard, which takes one label or more', async () => {
    expect((await get('shop.example.com', '/')).seen?.app).toBe('web');
    expect((await get('shop.example.com:8080', '/x')).seen?.app).toBe('web');
    expect((await get('foo.example.com', '/')).seen?.app).toBe('v2');
    expect((await get('a.b.example.com', '/')).seen?.app).toBe('v2');
  });

  it('answers 404 for a host no route takes, the wildcard’s bare domain included', async () => {
    expect((await get('example.com', '/')).status).toBe(404);
    expect((await get('unknown.org', '/')).status).toBe(404);
  });
});

describe('matching', () => {
  it('matches the header and the path prefix, whole segments only', async () => {
    expect((await get('shop.example.com', '/api/x', { 'x-canary': 'yes' })).seen?.app).toBe('v2');
    expect((await get('shop.example.com', '/api/x', { 'x-canary': 'no' })).seen?.app).toBe('web');
    expect((await get('shop.example.com', '/apix', { 'x-canary': 'yes' })).seen?.app).toBe('web');
  });

  it('answers 404 when no rule of the server matches, and a rule path picks no rule', async () => {
    expect((await get('mtls.example.com', '/other')).status).toBe(404);
    expect((await get('mtls.example.com', '/.mesh/rule/w1')).status).toBe(404);
  });

  it('keeps the client’s Host and tells the backend the client and the scheme', async () => {
    const answer = await get('shop.example.com', '/page?q=1', { 'x-forwarded-for': '192.0.2.1' });
    expect(answer.seen).toMatchObject({ app: 'web', url: '/page?q=1' });
    expect(answer.seen?.headers.host).toBe('shop.example.com');
    expect(answer.seen?.headers['x-forwarded-for']).toBe('192.0.2.1, 127.0.0.1');
    expect(answer.seen?.headers['x-forwarded-proto']).toBe('http');
  });

  it('splits by weight', async () => {
    const counts = { v1: 0, v2: 0 };
    for (let index = 0; index < 200; index += 1) {
      const app = (await get('shop.example.com', `/split/${index}`)).seen?.app;
      if (app === 'v1' || app === 'v2') counts[app] += 1;
    }
    expect(counts.v1 + counts.v2).toBe(200);
    // 3:1 → 150 expected; binomial sd ≈ 6
    expect(counts.v1).toBeGreaterThan(120);
    expect(counts.v1).toBeLessThan(180);
  });
});

describe('redirects', () => {
  it('redirects on the listener’s port', async () => {
    const moved = await get('shop.example.com', '/old?a=b');
    expect(moved.status).toBe(301);
    expect(moved.headers.location).toBe(`http://shop.example.com:${httpPortNumber}/new?a=b`);
  });

  it('keeps https and the HTTPS listener’s port', async () => {
    const moved = await getTls('admin.example.com', '/moved');
    expect(moved.status).toBe(302);
    expect(moved.headers.location).toBe(`https://admin.example.com:${httpsPortNumber}/here`);
  });
});

describe('HTTPS', () => {
  it('shows the certificate of the listener SNI names, and routes by its host', async () => {
    const secure = await getTls('secure.example.com', '/a');
    expect(secure.certificate).toBe('secure.example.com');
    expect(secure.seen?.app).toBe('v1');
    expect(secure.seen?.headers['x-forwarded-proto']).toBe('https');
    const admin = await getTls('admin.example.com', '/a');
    expect(admin.certificate).toBe('admin.example.com');
    expect(admin.seen?.app).toBe('web');
  });

  it('refuses the handshake of a host no HTTPS listener takes', async () => {
    await expect(getTls('other.example.com', '/')).rejects.toThrow();
  });
});

describe('mTLS', () => {
  it('calls a meshed backend with the gateway’s SVID, verifying the backend’s identity', async () => {
    const answer = await get('mtls.example.com', '/mtls/x?y=1');
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('meshed verify=SUCCESS client=CN=sidecar-test');
    expect(answer.body).toContain('host=mtls.example.com xfp=http xff=127.0.0.1 uri=/mtls/x?y=1');
  });

  it('refuses a backend whose certificate names another identity', async () => {
    expect((await get('impostor.example.com', '/')).status).toBe(502);
  });
});

describe('counting', () => {
  const take = async (): Promise<{ key: string; count: number }[]> => {
    const text = await takeFromNginx(join(dir, 'stats', 'nginx.sock'), '/stats');
    return parseStatsTake(text ?? '').zones.flatMap((zone) =>
      zone.series.map((series) => ({ key: series.key, count: series.count })),
    );
  };

  it('counts the listeners’ requests as outbound, under the backend’s Service', async () => {
    await take();
    for (let index = 0; index < 3; index += 1) await get('shop.example.com', `/counted/${index}`);
    await get('unknown.org', '/');
    const series = (await take()).map((each) => ({
      ...parseStatsKey(each.key),
      count: each.count,
    }));
    expect(series).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          direction: 'outbound',
          status: 200,
          service: 'shop/web',
          count: 3,
        }),
        expect.objectContaining({ direction: 'outbound', status: 404, service: '', count: 1 }),
      ]),
    );
  });
});
