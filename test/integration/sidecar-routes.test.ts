// Gateway API HTTPRoutes on a Service (GAMMA), against the real nginx: the outbound HTTP server
// takes each request to the rule of the first match in the Gateway API's order, rewrites, adds
// and drops headers, redirects, splits by weight, answers 404 when nothing matches and 500 for
// a backend that could not be resolved, and applies a consumer route only to its namespace's pods.
import type { ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import type {
  MeshSnapshot,
  SnapshotHttpRoute,
  SnapshotRouteMatch,
} from '../../src/manifests/snapshot/types';
import { buildSidecarModel, renderSidecarConfig } from '../../src/render/sidecar';
import type { SidecarContext } from '../../src/render/sidecar/context';
import {
  httpPort,
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
const apps: Server[] = [];
/** Every request each app saw, mirrored ones included. */
const log: Seen[] = [];

/** What an app saw of a request, as it answers it. */
interface Seen {
  readonly app: string;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly seen?: Seen;
}

async function listenApp(name: string, host: string, port: number): Promise<number> {
  const app = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const seen: Seen = {
        app: name,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
      };
      log.push(seen);
      // /…?key=K&fail=N&code=C: the first N requests of key K are answered C
      const flaky = /[?&]key=(\w+)&fail=(\d+)&code=(\d+)/.exec(seen.url);
      if (flaky !== null) {
        const tries = log.filter((each) => each.url.includes(`key=${flaky[1]}&`)).length;
        if (tries <= Number(flaky[2])) {
          res.statusCode = Number(flaky[3]);
          res.end(`failed try ${tries}`);
          return;
        }
      }
      const delay = /[?&]delay=(\d+)/.exec(seen.url);
      res.setHeader('content-type', 'application/json');
      if (delay !== null) {
        setTimeout(() => res.end(JSON.stringify(seen)), Number(delay[1]));
        return;
      }
      res.setHeader('x-app', name);
      res.setHeader('x-debug-token', 'secret');
      res.end(JSON.stringify(seen));
    });
  });
  apps.push(app);
  await new Promise<void>((resolve) => app.listen(port, host, resolve));
  return (app.address() as AddressInfo).port;
}

const prefix = (value: string, extra: Partial<SnapshotRouteMatch> = {}): SnapshotRouteMatch => ({
  path: { type: 'PathPrefix', value },
  headers: [],
  queryParams: [],
  ...extra,
});

const exact = (value: string, extra: Partial<SnapshotRouteMatch> = {}): SnapshotRouteMatch => ({
  ...prefix(value, extra),
  path: { type: 'Exact', value },
});

function route(
  key: string,
  rules: SnapshotHttpRoute['rules'],
  parents: SnapshotHttpRoute['parents'] = [{ service: 'shop/api' }],
  created = '2026-01-01T00:00:00Z',
): Record<string, SnapshotHttpRoute> {
  const [namespace = '', name = ''] = key.split('/');
  return { [key]: { namespace, name, created, parents, rules } };
}

const v1 = { service: 'shop/api', port: 8080, weight: 1 };
const v2 = { service: 'shop/api-v2', port: 8080, weight: 1 };

/** shop/api (app v1 on 127.0.0.1), shop/api-v2 (app v2 on 127.0.0.2), shop/plain (unrouted). */
function snapshot(httpRoutes: MeshSnapshot['httpRoutes']): MeshSnapshot {
  return withMesh(
    { mtlsMode: 'off' },
    {
      services: {
        ...service(
          'shop/api',
          '10.96.0.11',
          [httpPort(8080)],
          [{ address: '127.0.0.1', ports: { http: appPort }, pod: 'shop/api-1' }],
        ),
        ...service(
          'shop/api-v2',
          '10.96.0.12',
          [httpPort(8080)],
          [{ address: '127.0.0.2', ports: { http: appPort }, pod: 'shop/api-v2-1' }],
        ),
        ...service(
          'shop/plain',
          '10.96.0.13',
          [httpPort(80)],
          [{ address: '127.0.0.3', ports: { http: appPort }, pod: 'shop/plain-1' }],
        ),
        ...service('shop/empty', '10.96.0.14', [httpPort(8080)], []),
      },
      httpRoutes,
    },
  );
}

/** The routes most tests use, all on shop/api. */
function routes(): MeshSnapshot['httpRoutes'] {
  return {
    ...route(
      'shop/plain-moved',
      [
        {
          matches: [exact('/old')],
          redirect: { path: { type: 'ReplaceFullPath', value: '/new' }, statusCode: 308 },
          backends: [],
        },
        { matches: [prefix('/')], backends: [{ service: 'shop/plain', port: 80, weight: 1 }] },
      ],
      [{ service: 'shop/plain', port: 80 }],
    ),
    ...route('shop/api-main', [
      {
        matches: [
          prefix('/v2', {
            method: 'GET',
            headers: [{ name: 'x-canary', type: 'Exact', value: 'yes' }],
            queryParams: [{ name: 'tier', type: 'RegularExpression', value: 'gold|silver' }],
          }),
        ],
        rewrite: { path: { type: 'ReplacePrefixMatch', value: '/api' } },
        requestHeaders: {
          set: [{ name: 'X-Route', value: 'canary $uri' }],
          add: [{ name: 'X-Trail', value: 'mesh' }],
          remove: ['X-Debug'],
        },
        responseHeaders: {
          set: [{ name: 'X-Served', value: 'v2' }],
          add: [],
          remove: ['X-Debug-Token'],
        },
        backends: [v2],
      },
      { matches: [prefix('/v2')], backends: [v1] },
      { matches: [exact('/v2/exact')], backends: [v2] },
      { matches: [prefix('/v2/longer')], backends: [v2] },
      {
        matches: [prefix('/split')],
        backends: [
          { ...v1, weight: 3 },
          { ...v2, weight: 1 },
        ],
      },
      {
        matches: [{ ...prefix('/'), path: { type: 'RegularExpression', value: '/re/[0-9]+' } }],
        backends: [v2],
      },
      { matches: [prefix('/re')], backends: [v1] },
      {
        matches: [exact('/moved')],
        redirect: { path: { type: 'ReplaceFullPath', value: '/here' }, statusCode: 301 },
        backends: [],
      },
      {
        matches: [exact('/elsewhere')],
        redirect: { scheme: 'https', hostname: 'api.example', statusCode: 302 },
        backends: [],
      },
      { matches: [prefix('/broken')], backends: [{ ...v1, service: 'shop/gone', invalid: true }] },
      { matches: [prefix('/nothing')], backends: [] },
      { matches: [prefix('/empty')], backends: [{ service: 'shop/empty', port: 8080, weight: 1 }] },
      {
        matches: [prefix('/mirrored')],
        mirrors: [{ service: 'shop/plain', port: 80, percent: 100 }],
        backends: [v1],
      },
      {
        matches: [prefix('/sampled')],
        mirrors: [{ service: 'shop/plain', port: 80, percent: 25 }],
        backends: [v1],
      },
      {
        matches: [prefix('/deadline')],
        timeouts: { requestMs: 400 },
        backends: [v1],
      },
      {
        matches: [prefix('/per-try')],
        timeouts: { requestMs: 0, backendRequestMs: 300 },
        backends: [v1],
      },
      {
        matches: [prefix('/retry')],
        retry: { attempts: 2, codes: [503], backoffMs: 0 },
        backends: [v1],
      },
      {
        matches: [prefix('/retry-wait')],
        retry: { attempts: 2, codes: [503], backoffMs: 200 },
        backends: [v1],
      },
      {
        matches: [prefix('/retry-deadline')],
        retry: { attempts: 3, codes: [503], backoffMs: 300 },
        timeouts: { requestMs: 500 },
        backends: [v1],
      },
      {
        matches: [prefix('/full')],
        rewrite: { hostname: 'api.internal', path: { type: 'ReplaceFullPath', value: '/whole' } },
        backends: [v1],
      },
    ]),
  };
}

interface Sidecar {
  readonly dir: string;
  readonly nginx: ChildProcess;
  readonly loopbacks: ReadonlyMap<string, string>;
}

const sidecars: Sidecar[] = [];

async function startSidecar(
  httpRoutes: MeshSnapshot['httpRoutes'],
  context: SidecarContext = shopContext(),
): Promise<Sidecar> {
  const dir = prepareSidecarDir('sidecar-routes-');
  const meshModule = buildMeshModule();
  const rendered = renderSidecarConfig(snapshot(httpRoutes), context);
  const config = writeSidecarConfig(dir, meshModule, rendered.text, rendered.members);
  const nginx = await startSidecarNginx(dir, config, 8889);
  const { model } = buildSidecarModel(snapshot(httpRoutes), context);
  const loopbacks = new Map(model.outboundHttp.map((http) => [http.service, http.loopback]));
  const sidecar = { dir, nginx, loopbacks };
  sidecars.push(sidecar);
  return sidecar;
}

async function stopSidecar(sidecar: Sidecar): Promise<void> {
  await stopChild(sidecar.nginx);
  rmSync(sidecar.dir, { recursive: true, force: true });
  sidecars.splice(sidecars.indexOf(sidecar), 1);
}

function call(
  sidecar: Sidecar,
  path: string,
  options: {
    service?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
  } = {},
): Promise<Answer> {
  const host = sidecar.loopbacks.get(options.service ?? 'shop/api') ?? '';
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host,
        port: 8889,
        method: options.method ?? 'GET',
        path,
        headers: { Host: 'api.shop.svc:8080', ...options.headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          const seen =
            res.headers['content-type'] === 'application/json'
              ? (JSON.parse(body) as Seen)
              : undefined;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, ...(seen ? { seen } : {}) });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

let main: Sidecar;

beforeAll(async () => {
  appPort = await listenApp('v1', '127.0.0.1', 0);
  await listenApp('v2', '127.0.0.2', appPort);
  await listenApp('plain', '127.0.0.3', appPort);
  main = await startSidecar(routes());
}, 120_000);

afterAll(async () => {
  for (const sidecar of [...sidecars]) await stopSidecar(sidecar);
  for (const app of apps) await new Promise((resolve) => app.close(resolve));
});

it('passes nginx -t with every route feature over mTLS', () => {
  const scenario = sidecarScenarios().find((each) => each.name === 'gamma-routes');
  if (scenario === undefined) throw new Error('no gamma-routes scenario');
  const rendered = renderSidecarConfig(scenario.snapshot, scenario.context);
  expect(rendered.text).toContain('proxy_ssl_name api.shop.svc;');
  expect(() => nginxTestConfig(rendered.text, rendered.members)).not.toThrow();
});

describe('matching', () => {
  it('takes a request to the rule whose method, header and query all match', async () => {
    const answer = await call(main, '/v2/items?tier=gold&x=1', { headers: { 'x-canary': 'yes' } });
    expect(answer.status).toBe(200);
    expect(answer.seen?.app).toBe('v2');
  });

  it('leaves that rule when one condition fails: the next match in order takes it', async () => {
    for (const [path, headers, method] of [
      ['/v2/items?tier=gold', { 'x-canary': 'no' }, 'GET'],
      ['/v2/items?tier=bronze', { 'x-canary': 'yes' }, 'GET'],
      ['/v2/items?tiers=gold', { 'x-canary': 'yes' }, 'GET'],
      ['/v2/items?tier=gold', { 'x-canary': 'yes' }, 'POST'],
      ['/v2/items?TIER=gold', { 'x-canary': 'yes' }, 'GET'],
    ] as const) {
      const answer = await call(main, path, { headers, method });
      expect([path, answer.seen?.app]).toEqual([path, 'v1']);
    }
  });

  it('prefers an exact path, then the longest prefix; a prefix matches whole segments', async () => {
    expect((await call(main, '/v2/exact')).seen?.app).toBe('v2');
    expect((await call(main, '/v2/exact/more')).seen?.app).toBe('v1');
    expect((await call(main, '/v2/longer/x')).seen?.app).toBe('v2');
    expect((await call(main, '/v2/longerx')).seen?.app).toBe('v1');
    expect((await call(main, '/v2')).seen?.app).toBe('v1');
  });

  it('tries a regular expression path before every prefix', async () => {
    expect((await call(main, '/re/42')).seen?.app).toBe('v2');
    expect((await call(main, '/re/x')).seen?.app).toBe('v1');
    expect((await call(main, '/re/42/more')).seen?.app).toBe('v1');
  });

  it('answers 404 when no match takes the request, and a rule path picks no rule', async () => {
    expect((await call(main, '/v3')).status).toBe(404);
    expect((await call(main, '/v2x')).status).toBe(404);
    expect((await call(main, '/.mesh/rule/r1')).status).toBe(404);
    expect((await call(main, '/.mesh/rule/r1', { service: 'shop/api-v2' })).status).toBe(404);
  });

  it('leaves a Service without routes as it was', async () => {
    const answer = await call(main, '/anything?x=1', { service: 'shop/api-v2' });
    expect(answer.seen).toMatchObject({ app: 'v2', url: '/anything?x=1' });
  });
});

describe('filters', () => {
  it('replaces the matched prefix and keeps the query; sets, appends and drops headers', async () => {
    const answer = await call(main, '/v2/items?tier=silver', {
      headers: { 'x-canary': 'yes', 'x-trail': 'app', 'x-debug': '1' },
    });
    expect(answer.seen?.url).toBe('/api/items?tier=silver');
    expect(answer.seen?.headers['x-route']).toBe('canary $uri');
    expect(answer.seen?.headers['x-trail']).toBe('app,mesh');
    expect(answer.seen?.headers['x-debug']).toBeUndefined();
    expect(answer.seen?.headers.host).toBe('api.shop.svc:8080');
    expect(answer.headers['x-served']).toBe('v2');
    expect(answer.headers['x-debug-token']).toBeUndefined();
    expect(answer.headers['x-app']).toBe('v2');
  });

  it('adds a header the request did not have', async () => {
    const answer = await call(main, '/v2/a?tier=gold', { headers: { 'x-canary': 'yes' } });
    expect(answer.seen?.headers['x-trail']).toBe('mesh');
    expect(answer.seen?.url).toBe('/api/a?tier=gold');
  });

  it('rewrites the whole path and the host', async () => {
    const answer = await call(main, '/full/x?q=1');
    expect(answer.seen).toMatchObject({ app: 'v1', url: '/whole?q=1' });
    expect(answer.seen?.headers.host).toBe('api.internal');
  });

  it('redirects, on the Service port unless a scheme is given', async () => {
    const moved = await call(main, '/moved?a=b');
    expect(moved.status).toBe(301);
    expect(moved.headers.location).toBe('http://api.shop.svc:8080/here?a=b');
    const onPort80 = await call(main, '/old', { service: 'shop/plain' });
    expect(onPort80.status).toBe(308);
    expect(onPort80.headers.location).toBe('http://api.shop.svc/new');
    expect((await call(main, '/kept', { service: 'shop/plain' })).seen?.app).toBe('plain');
    const elsewhere = await call(main, '/elsewhere');
    expect(elsewhere.status).toBe(302);
    expect(elsewhere.headers.location).toBe('https://api.example/elsewhere');
  });
});

describe('backends', () => {
  it('splits by weight', async () => {
    const counts = { v1: 0, v2: 0 };
    for (let index = 0; index < 200; index += 1) {
      const app = (await call(main, `/split/${index}`)).seen?.app;
      if (app === 'v1' || app === 'v2') counts[app] += 1;
    }
    expect(counts.v1 + counts.v2).toBe(200);
    // 3:1 → 150 expected; binomial sd ≈ 6
    expect(counts.v1).toBeGreaterThan(120);
    expect(counts.v1).toBeLessThan(180);
  });

  it('answers 500 for an unresolved backend or none, 503 for a Service without endpoints', async () => {
    expect((await call(main, '/broken')).status).toBe(500);
    expect((await call(main, '/nothing')).status).toBe(500);
    expect((await call(main, '/empty')).status).toBe(503);
  });
});

describe('mirrors and timeouts', () => {
  const mirrored = (url: string): Seen[] =>
    log.filter((seen) => seen.app === 'plain' && seen.url === url);

  it('sends a copy of each request to the mirror and answers from the backend', async () => {
    const answer = await call(main, '/mirrored/a?b=1', { headers: { 'x-who': 'me' } });
    expect(answer.seen?.app).toBe('v1');
    const copy = await waitForCopy(() => mirrored('/mirrored/a?b=1'));
    expect(copy[0]?.headers['x-who']).toBe('me');
  });

  it('mirrors the share it is given', async () => {
    for (let index = 0; index < 200; index += 1) await call(main, `/sampled/${index}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const copies = log.filter((seen) => seen.app === 'plain' && seen.url.startsWith('/sampled/'));
    // 25% of 200 → 50 expected; binomial sd ≈ 6
    expect(copies.length).toBeGreaterThan(25);
    expect(copies.length).toBeLessThan(75);
  });

  it('answers 504 when the backend is slower than the request timeout', async () => {
    const started = Date.now();
    expect((await call(main, '/deadline?delay=1500')).status).toBe(504);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(350);
    expect(took).toBeLessThan(1400);
    expect((await call(main, '/deadline?delay=50')).status).toBe(200);
  });

  it('bounds each try by backendRequest when request is "0s"', async () => {
    expect((await call(main, '/per-try?delay=1000')).status).toBe(504);
    expect((await call(main, '/per-try?delay=20')).status).toBe(200);
  });
});

/** Polls for a mirrored copy, which nginx sends beside the request, for up to 2 s. */
async function waitForCopy(find: () => Seen[]): Promise<Seen[]> {
  for (let attempt = 0; attempt < 40; attempt += 1) {
    const found = find();
    if (found.length > 0) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return find();
}

describe('retries', () => {
  const tries = (key: string): Seen[] => log.filter((seen) => seen.url.includes(`key=${key}&`));

  it('tries exactly once plus the attempts, and answers with the last try', async () => {
    const answer = await call(main, '/retry/a?key=always&fail=99&code=503');
    expect(answer.status).toBe(503);
    expect(tries('always')).toHaveLength(3);
  });

  it('answers from the first try that succeeds', async () => {
    const answer = await call(main, '/retry/a?key=twice&fail=2&code=503');
    expect(answer.status).toBe(200);
    expect(tries('twice')).toHaveLength(3);
  });

  it('does not retry a code the rule does not name', async () => {
    const answer = await call(main, '/retry/a?key=other&fail=99&code=500');
    expect(answer.status).toBe(500);
    expect(tries('other')).toHaveLength(1);
  });

  it('sends a request body again on each try', async () => {
    const answer = await call(main, '/retry/a?key=posted&fail=1&code=503', {
      method: 'POST',
      body: 'order=7',
    });
    expect(answer.status).toBe(200);
    expect(tries('posted').map((seen) => seen.body)).toEqual(['order=7', 'order=7']);
  });

  it('waits the backoff before each retry', async () => {
    const started = Date.now();
    const answer = await call(main, '/retry-wait?key=slow&fail=2&code=503');
    expect(answer.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(tries('slow')).toHaveLength(3);
  });

  it('answers 504 instead of a retry that the request timeout would not leave time for', async () => {
    const started = Date.now();
    const answer = await call(main, '/retry-deadline?key=late&fail=99&code=503');
    expect(answer.status).toBe(504);
    // tries at 0 and after one 300 ms wait; a second wait would end past 500 ms
    expect(tries('late')).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(500);
  });
});

describe('producers and consumers', () => {
  // one sidecar at a time: each listens on the outbound port
  beforeAll(async () => stopSidecar(main));

  const consumer = (): MeshSnapshot['httpRoutes'] => ({
    ...route('shop/producer', [{ matches: [prefix('/')], backends: [v1] }]),
    ...route(
      'other/consumer',
      [{ matches: [prefix('/')], backends: [v2] }],
      [{ service: 'shop/api', port: 8080 }],
    ),
  });

  it('applies a consumer route to its namespace’s pods in place of the producer’s', async () => {
    const sidecar = await startSidecar(consumer(), shopContext({ pod: 'other/client-1' }));
    try {
      expect((await call(sidecar, '/x')).seen?.app).toBe('v2');
    } finally {
      await stopSidecar(sidecar);
    }
  });

  it('leaves other namespaces’ pods on the producer route', async () => {
    const sidecar = await startSidecar(consumer());
    try {
      expect((await call(sidecar, '/x')).seen?.app).toBe('v1');
    } finally {
      await stopSidecar(sidecar);
    }
  });

  it('lets an older route win between equal matches', async () => {
    const sidecar = await startSidecar({
      ...route(
        'shop/newer',
        [{ matches: [prefix('/')], backends: [v2] }],
        undefined,
        '2026-05-01T00:00:00Z',
      ),
      ...route(
        'shop/older',
        [{ matches: [prefix('/')], backends: [v1] }],
        undefined,
        '2026-01-01T00:00:00Z',
      ),
    });
    try {
      expect((await call(sidecar, '/x')).seen?.app).toBe('v1');
    } finally {
      await stopSidecar(sidecar);
    }
  });
});
