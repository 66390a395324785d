// Gateway API GRPCRoutes on a Service (GAMMA), against the real nginx: the outbound HTTP/2
// server takes each gRPC call to the rule of the first match (service and method, headers),
// sends the call's own path on, splits by weight, and sets and drops headers both ways.
import type { ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:http2';
import type { Http2Server, IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { SIDECAR_OUTBOUND_HTTP2_PORT } from '../../src/manifests/constants';
import type { MeshSnapshot, SnapshotRouteMatch } from '../../src/manifests/snapshot/types';
import { buildSidecarModel, renderSidecarConfig } from '../../src/render/sidecar';
import {
  http2Port,
  service,
  shopContext,
  sidecarScenarios,
  withMesh,
} from '../support/sidecar-snapshots';
import {
  buildMeshModule,
  nginxTestConfig,
  prepareSidecarDir,
  startSidecarNginx,
  writeSidecarConfig,
} from '../support/sidecar-dir';
import { stopChild } from '../support/processes';

let appPort: number;
const servers: Http2Server[] = [];
let dir: string;
let nginx: ChildProcess | undefined;
let loopback = '';

/** What a call got: the answering app, the path and headers it saw, the answer's headers. */
interface Call {
  readonly app: string;
  readonly path: string;
  readonly seen: Record<string, string>;
  readonly headers: IncomingHttpHeaders;
  readonly grpcStatus: string;
}

/** A gRPC-shaped h2c server: answers every call with its name and what it saw, status 0. */
async function listenApp(name: string, host: string, port: number): Promise<number> {
  const server = createServer();
  server.on('stream', (stream, headers) => {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      const seen: Record<string, string> = {};
      for (const [key, value] of Object.entries(headers)) seen[key] = String(value);
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'x-app': name, 'x-secret': 's' },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(JSON.stringify({ app: name, path: headers[':path'], seen }));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return (server.address() as AddressInfo).port;
}

const method = (service: string, name?: string): SnapshotRouteMatch => ({
  path:
    name === undefined
      ? { type: 'PathPrefix', value: `/${service}` }
      : { type: 'Exact', value: `/${service}/${name}` },
  headers: [],
  queryParams: [],
});

const v1 = { service: 'shop/rpc', port: 9090, weight: 1 };
const v2 = { service: 'shop/rpc-v2', port: 9090, weight: 1 };

function snapshot(): MeshSnapshot {
  return withMesh(
    { mtlsMode: 'off' },
    {
      services: {
        ...service(
          'shop/rpc',
          '10.96.0.31',
          [http2Port(9090)],
          [{ address: '127.0.0.1', ports: { grpc: appPort }, pod: 'shop/rpc-1' }],
        ),
        ...service(
          'shop/rpc-v2',
          '10.96.0.32',
          [http2Port(9090)],
          [{ address: '127.0.0.2', ports: { grpc: appPort }, pod: 'shop/rpc-v2-1' }],
        ),
      },
      grpcRoutes: {
        'shop/rpc-routes': {
          namespace: 'shop',
          name: 'rpc-routes',
          created: '2026-01-01T00:00:00Z',
          parents: [{ service: 'shop/rpc', port: 9090 }],
          rules: [
            {
              matches: [method('shop.Orders', 'Place')],
              requestHeaders: {
                set: [{ name: 'x-route', value: 'place' }],
                add: [],
                remove: ['x-debug'],
              },
              responseHeaders: {
                set: [{ name: 'x-served', value: 'v2' }],
                add: [],
                remove: ['x-secret'],
              },
              backends: [v2],
            },
            {
              matches: [
                {
                  ...method('shop.Orders'),
                  headers: [{ name: 'x-canary', type: 'Exact', value: 'yes' }],
                },
              ],
              backends: [v2],
            },
            { matches: [method('shop.Orders')], backends: [v1] },
            {
              matches: [method('shop.Split')],
              backends: [
                { ...v1, weight: 1 },
                { ...v2, weight: 1 },
              ],
            },
          ],
        },
      },
    },
  );
}

function call(path: string, headers: Record<string, string> = {}): Promise<Call> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${loopback}:${SIDECAR_OUTBOUND_HTTP2_PORT}`);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      ':authority': 'rpc.shop.svc:9090',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let answer: IncomingHttpHeaders = {};
    let grpcStatus = '';
    let body = '';
    stream.on('response', (received) => (answer = received));
    stream.on('trailers', (trailers: IncomingHttpHeaders) => {
      grpcStatus = String(trailers['grpc-status'] ?? '');
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => {
      session.close();
      if (answer['content-type'] !== 'application/grpc') {
        resolve({ app: '', path: '', seen: {}, headers: answer, grpcStatus });
        return;
      }
      const parsed = JSON.parse(body) as Omit<Call, 'headers' | 'grpcStatus'>;
      resolve({ ...parsed, headers: answer, grpcStatus });
    });
    stream.on('error', reject);
    stream.end('\u0000\u0000\u0000\u0000\u0000');
  });
}

beforeAll(async () => {
  appPort = await listenApp('v1', '127.0.0.1', 0);
  await listenApp('v2', '127.0.0.2', appPort);
  dir = prepareSidecarDir('sidecar-grpc-routes-');
  const rendered = renderSidecarConfig(snapshot(), shopContext());
  const config = writeSidecarConfig(dir, buildMeshModule(), rendered.text, rendered.members);
  nginx = await startSidecarNginx(dir, config, SIDECAR_OUTBOUND_HTTP2_PORT);
  const { model } = buildSidecarModel(snapshot(), shopContext());
  loopback = model.outboundHttp.find((http) => http.service === 'shop/rpc')?.loopback ?? '';
}, 120_000);

afterAll(async () => {
  await stopChild(nginx);
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

it('passes nginx -t with GRPCRoutes and HTTPRoutes together over mTLS', () => {
  const scenario = sidecarScenarios().find((each) => each.name === 'gamma-grpc-routes');
  if (scenario === undefined) throw new Error('no gamma-grpc-routes scenario');
  const rendered = renderSidecarConfig(scenario.snapshot, scenario.context);
  expect(rendered.text).toContain('grpc_ssl_name $mesh_outbound_ssl_name;');
  expect(() => nginxTestConfig(rendered.text, rendered.members)).not.toThrow();
});

it('takes a call to the rule of its service and method, with the call’s own path', async () => {
  const placed = await call('/shop.Orders/Place');
  expect(placed).toMatchObject({ app: 'v2', path: '/shop.Orders/Place', grpcStatus: '0' });
  const listed = await call('/shop.Orders/List');
  expect(listed).toMatchObject({ app: 'v1', path: '/shop.Orders/List' });
});

it('matches headers, and answers 404 to a call no rule takes', async () => {
  expect((await call('/shop.Orders/List', { 'x-canary': 'yes' })).app).toBe('v2');
  expect((await call('/shop.Other/Get')).headers[':status']).toBe(404);
});

it('sets and drops request and response headers', async () => {
  const placed = await call('/shop.Orders/Place', { 'x-debug': '1' });
  expect(placed.seen['x-route']).toBe('place');
  expect(placed.seen['x-debug']).toBeUndefined();
  expect(placed.headers['x-served']).toBe('v2');
  expect(placed.headers['x-secret']).toBeUndefined();
  expect(placed.headers['x-app']).toBe('v2');
});

it('splits calls by weight', async () => {
  const counts: Record<string, number> = {};
  for (let index = 0; index < 100; index += 1) {
    const app = (await call('/shop.Split/Go')).app;
    counts[app] = (counts[app] ?? 0) + 1;
  }
  expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(100);
  // 1:1 → 50 expected; binomial sd = 5
  expect(counts.v1).toBeGreaterThan(30);
  expect(counts.v1).toBeLessThan(70);
});
