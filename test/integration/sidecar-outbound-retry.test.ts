// The outbound retry on a fresh connection, against the real nginx: when every endpoint of a
// Service closes the kept-alive connections the sidecar holds to it (as every peer's sidecar does
// when all of them reload for one mesh change), a request already sent on one of them fails on
// each endpoint in turn. An idempotent request is then sent once more on new connections and
// succeeds; a POST is not, since the app may have seen it.
import type { ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { rmSync } from 'node:fs';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { buildSidecarModel, renderSidecarConfig } from '../../src/render/sidecar';
import { httpPort, service, shopContext, withMesh } from '../support/sidecar-snapshots';
import {
  buildMeshModule,
  prepareSidecarDir,
  startSidecarNginx,
  writeSidecarConfig,
} from '../support/sidecar-dir';
import { stopChild } from '../support/processes';

let dir: string;
let nginx: ChildProcess | undefined;
let appPort: number;
const apps: Server[] = [];
/** Every request the two apps saw, with whether it came on a connection used before. */
const seen: { method: string; reused: boolean }[] = [];
/** While set, the apps close a used connection on its next request instead of answering. */
let closingUsed = false;

/** This pod calls shop/api, whose two pods are the two apps on loopback. */
function snapshot(): MeshSnapshot {
  return withMesh(
    { mtlsMode: 'off' },
    {
      services: service(
        'shop/api',
        '10.96.0.11',
        [httpPort(8080)],
        [
          { address: '127.0.0.1', ports: { http: appPort }, pod: 'shop/api-1' },
          { address: '127.0.0.2', ports: { http: appPort }, pod: 'shop/api-2' },
        ],
      ),
    },
  );
}

async function listenApp(host: string, port: number): Promise<number> {
  const served = new WeakSet<Socket>();
  const app = createServer((req: IncomingMessage, res) => {
    const reused = served.has(req.socket);
    served.add(req.socket);
    seen.push({ method: req.method ?? '', reused });
    if (closingUsed && reused) {
      req.socket.destroy();
      return;
    }
    req.resume();
    req.on('end', () => res.end('app\n'));
  });
  apps.push(app);
  await new Promise<void>((resolve) => app.listen(port, host, resolve));
  return (app.address() as AddressInfo).port;
}

async function outbound(method: string): Promise<number> {
  const { model } = buildSidecarModel(snapshot(), shopContext());
  const loopback = model.outboundHttp.find((http) => http.service === 'shop/api')?.loopback ?? '';
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: loopback, port: 8889, method, path: '/items', headers: { Host: 'api' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(method === 'GET' ? undefined : '{"item":7}');
  });
}

/** Enough requests that the sidecar holds a kept-alive connection to each app. */
async function warm(): Promise<void> {
  closingUsed = false;
  for (let index = 0; index < 6; index += 1) expect(await outbound('GET')).toBe(200);
  expect(seen.filter((request) => request.reused).length).toBeGreaterThan(0);
  seen.length = 0;
  closingUsed = true;
}

beforeAll(async () => {
  dir = prepareSidecarDir('sidecar-retry-');
  const meshModule = buildMeshModule();
  appPort = await listenApp('127.0.0.1', 0);
  await listenApp('127.0.0.2', appPort);
  const rendered = renderSidecarConfig(snapshot(), shopContext());
  const config = writeSidecarConfig(dir, meshModule, rendered.text, rendered.members);
  nginx = await startSidecarNginx(dir, config, 8889);
}, 120_000);

afterAll(async () => {
  await stopChild(nginx);
  for (const app of apps) await new Promise((resolve) => app.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

it('sends a GET that failed on every kept-alive connection once more, on a new one', async () => {
  await warm();
  expect(await outbound('GET')).toBe(200);
  // Both endpoints failed it on a used connection; a new connection answered.
  expect(seen.filter((request) => request.reused).length).toBeGreaterThanOrEqual(2);
  expect(seen.at(-1)).toEqual({ method: 'GET', reused: false });
});

it('sends a PUT, which is idempotent, once more too', async () => {
  await warm();
  expect(await outbound('PUT')).toBe(200);
  expect(seen.at(-1)).toEqual({ method: 'PUT', reused: false });
});

it('answers 502 to a POST that failed so, without sending it again', async () => {
  await warm();
  expect(await outbound('POST')).toBe(502);
  expect(seen).toEqual([{ method: 'POST', reused: true }]);
});
