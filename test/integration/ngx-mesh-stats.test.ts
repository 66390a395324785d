// The request counters of the sidecar's nginx module (images/sidecar/ngx_mesh/ngx_mesh_stats.c),
// loaded into Debian's real nginx: what mesh_stats counts per key, in http and stream, what
// mesh_stats_dump prints and a POST takes, the zone's bounds (lost), reloads, the directives'
// errors, and the agent's pipeline reading a take that holds keys it does not know.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import type { Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { startSidecarMetrics } from '../../src/runtime/agent/metrics/sidecar-metrics';
import { parseStatsTake } from '../../src/runtime/agent/metrics/stats';
import type { StatsZone } from '../../src/runtime/agent/metrics/stats';
import {
  buildMeshModule,
  moduleConfigPreamble,
  prepareSidecarDir,
  waitForPort,
} from '../support/sidecar-dir';
import { stopChild } from '../support/processes';

const HOST = '127.0.0.1';
const COUNTED = 15_101;
const DUMP = 15_102;
const STREAM = 15_103;
const SLOW_APP = 15_104;
const ECHO = 15_105;
const SLOW_MS = 30;

let dir: string;
let meshModule: string;
let nginx: ChildProcess | undefined;
let slowApp: Server;
/** What the stream server proxies to: it echoes what it reads, then closes. */
let echo: TcpServer;

/** The modules, a pid file named pid, and the start of the http block with its temp paths. */
const preamble = (pid: string): string => moduleConfigPreamble(dir, meshModule, { pid });

/** The test's configuration; zoneSize changes the http zone's size (a new zone on reload). */
function config(zoneSize = '64k'): string {
  return `${preamble('nginx.pid')}
    mesh_stats_zone t_http ${zoneSize};
    mesh_stats_zone t_small 32k;
    map $arg_count $t_wanted {
        default 1;
        no 0;
        none "";
    }
    server {
        listen ${HOST}:${COUNTED};
        mesh_stats t_http "path=$uri status=$status" if=$t_wanted;
        location / { return 200 "ok\\n"; }
        location /missing { return 404; }
        location /slow { proxy_pass http://${HOST}:${SLOW_APP}; }
        location /quiet { mesh_stats off; return 200; }
        location /many { mesh_stats t_small "$arg_n"; return 204; }
    }
    server {
        listen ${HOST}:${DUMP};
        listen unix:${dir}/stats.sock;
        location = /stats { mesh_stats_dump t_http t_tcp; }
        location = /small { mesh_stats_dump t_small; }
    }
}
stream {
    mesh_stats_zone t_tcp 64k;
    # The client's half-close reaches the echo, whose answer then comes back, as in the sidecar.
    proxy_half_close on;
    server {
        listen ${HOST}:${STREAM};
        mesh_stats t_tcp "tcp status=$status";
        proxy_pass ${HOST}:${ECHO};
    }
}
`;
}

function nginxTest(text: string): { ok: boolean; output: string } {
  const path = join(dir, 'check.conf');
  writeFileSync(path, text);
  const result = spawnSync('nginx', ['-t', '-p', dir, '-c', path], { encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

/** One request; its status and body. */
function call(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, method, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A take (POST) or a look (GET) at the zones. */
async function zones(method: 'GET' | 'POST', path = '/stats'): Promise<StatsZone[]> {
  const { status, body } = await call(DUMP, path, method);
  expect(status).toBe(200);
  const take = parseStatsTake(body);
  expect(take.unreadable).toBe(0);
  return [...take.zones];
}

/** Takes the zones; the http zone's series as [key, count]. */
async function takeHttp(): Promise<[string, number][]> {
  const http = (await zones('POST')).find((zone) => zone.name === 't_http');
  return (http?.series ?? []).map((series) => [series.key, series.count]);
}

const seriesOf = (all: readonly StatsZone[], zone: string, key: string) =>
  all.find((each) => each.name === zone)?.series.find((series) => series.key === key);

/** A TCP session with the stream server: what it sent, read to the end. */
function tcpSession(payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port: STREAM }, () => socket.end(payload));
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}

async function reload(text: string): Promise<void> {
  writeFileSync(join(dir, 'nginx.conf'), text);
  nginx?.kill('SIGHUP');
  await new Promise((resolve) => setTimeout(resolve, 500));
}

beforeAll(async () => {
  meshModule = buildMeshModule();
  dir = prepareSidecarDir('ngx-mesh-stats-');
  slowApp = createServer((_req, res) => {
    setTimeout(() => res.end('slow\n'), SLOW_MS);
  });
  await new Promise<void>((resolve) => slowApp.listen(SLOW_APP, HOST, resolve));
  // Reads everything, so that no session ends with unread bytes (a reset, not a close).
  echo = createTcpServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(ECHO, HOST, resolve));
  writeFileSync(join(dir, 'nginx.conf'), config());
  nginx = spawn(
    'nginx',
    ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitForPort(DUMP);
  await waitForPort(STREAM);
  // The port probe is a TCP session too, counted once nginx closes it: wait for it here, so that
  // the take before each test clears it rather than a test seeing it.
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (seriesOf(await zones('GET'), 't_tcp', 'tcp status=200') !== undefined) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}, 120_000);

afterAll(async () => {
  await stopChild(nginx);
  await new Promise((resolve) => slowApp.close(resolve));
  await new Promise((resolve) => echo.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await zones('POST');
  await zones('POST', '/small');
});

it('counts each request under its key, with its duration in the bucket bounds', async () => {
  for (let index = 0; index < 3; index += 1) expect((await call(COUNTED, '/a')).status).toBe(200);
  expect((await call(COUNTED, '/missing')).status).toBe(404);
  expect((await call(COUNTED, '/slow')).status).toBe(200);
  const all = await zones('GET');
  const http = all.find((zone) => zone.name === 't_http');
  expect(http?.lost).toBe(0);
  expect(http?.boundsMs).toEqual([
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000,
  ]);
  expect(http?.series.map((series) => [series.key, series.count]).sort()).toEqual([
    ['path=/a status=200', 3],
    ['path=/missing status=404', 1],
    ['path=/slow status=200', 1],
  ]);
  const fast = seriesOf(all, 't_http', 'path=/a status=200');
  expect(fast?.buckets.reduce((sum, value) => sum + value, 0)).toBe(3);
  expect(fast?.buckets[0]).toBe(3);
  // 30 ms through the proxy: above 20, at most 50 (bucket six of fifteen), unless the machine
  // stalls past 50.
  const slow = seriesOf(all, 't_http', 'path=/slow status=200');
  expect(slow?.sumMs).toBeGreaterThanOrEqual(SLOW_MS - 1);
  expect(slow?.buckets.findIndex((value) => value === 1)).toBeGreaterThanOrEqual(5);
  expect(slow?.sent).toBe(0);
});

it('takes on POST: the series go to the taker and the zone starts empty', async () => {
  await call(COUNTED, '/b');
  const looked = await zones('GET');
  expect(seriesOf(looked, 't_http', 'path=/b status=200')?.count).toBe(1);
  const taken = await zones('POST');
  expect(seriesOf(taken, 't_http', 'path=/b status=200')?.count).toBe(1);
  const after = await zones('GET');
  expect(after.map((zone) => [zone.name, zone.series.length])).toEqual([
    ['t_http', 0],
    ['t_tcp', 0],
  ]);
  await call(COUNTED, '/b');
  expect(seriesOf(await zones('GET'), 't_http', 'path=/b status=200')?.count).toBe(1);
});

it('counts a key with a line feed in it as one series, the line feed a space', async () => {
  // $uri is decoded: %0A is a line feed, which would otherwise end the series' line.
  await call(COUNTED, '/nl%0Aend');
  await call(COUNTED, '/nl%0Aend');
  expect(await takeHttp()).toEqual([['path=/nl end status=200', 2]]);
});

it('answers HEAD with headers alone and refuses other methods', async () => {
  expect(await call(DUMP, '/stats', 'HEAD')).toEqual({ status: 200, body: '' });
  expect((await call(DUMP, '/stats', 'PUT')).status).toBe(405);
  expect((await call(DUMP, '/stats', 'DELETE')).status).toBe(405);
});

it('skips requests whose condition is empty or "0", and locations with mesh_stats off', async () => {
  await call(COUNTED, '/c?count=no');
  await call(COUNTED, '/c?count=none');
  await call(COUNTED, '/quiet');
  await call(COUNTED, '/c');
  expect(await takeHttp()).toEqual([['path=/c status=200', 1]]);
});

it('counts TCP sessions in stream with the bytes each way', async () => {
  expect(await tcpSession('hello')).toBe('hello');
  expect(await tcpSession('')).toBe('');
  // The session is counted when nginx finalizes it, just after the client sees it close.
  let tcp: ReturnType<typeof seriesOf>;
  for (let attempt = 0; attempt < 50 && tcp?.count !== 2; attempt += 1) {
    tcp = seriesOf(await zones('GET'), 't_tcp', 'tcp status=200');
    if (tcp?.count !== 2) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(tcp?.count).toBe(2);
  expect(tcp?.sent).toBe(5);
  expect(tcp?.received).toBe(5);
});

it('counts what does not fit in a full zone as lost, and has room again after a take', async () => {
  // 32 KB holds some dozens of series: 400 distinct keys overflow it.
  for (let index = 0; index < 400; index += 1)
    expect((await call(COUNTED, `/many?n=key-${index}`)).status).toBe(204);
  const [small] = await zones('POST', '/small');
  const kept = small?.series.reduce((sum, series) => sum + series.count, 0) ?? 0;
  expect(kept).toBeGreaterThan(10);
  expect(small?.lost).toBeGreaterThan(0);
  expect(kept + (small?.lost ?? 0)).toBe(400);
  await call(COUNTED, '/many?n=after');
  const [again] = await zones('GET', '/small');
  expect(again?.lost).toBe(0);
  expect(again?.series.map((series) => series.key)).toEqual(['after']);
}, 60_000);

it('keeps counts not yet taken across a reload, and starts a zone of a new size empty', async () => {
  await call(COUNTED, '/d');
  await reload(config());
  await call(COUNTED, '/d');
  expect(seriesOf(await zones('GET'), 't_http', 'path=/d status=200')?.count).toBe(2);
  await reload(config('128k'));
  await call(COUNTED, '/d');
  expect(seriesOf(await zones('GET'), 't_http', 'path=/d status=200')?.count).toBe(1);
  await reload(config());
}, 30_000);

it("feeds the agent's pipeline, which counts keys it does not know as unreadable", async () => {
  await call(COUNTED, '/e');
  const metrics = startSidecarMetrics({
    socketPath: join(dir, 'stats.sock'),
    path: '/stats',
    httpZone: 't_http',
    tcpZone: 't_tcp',
    takeIntervalMs: 0,
  });
  const text = await metrics.exposition();
  await metrics.close();
  // "path=/e status=200" is no key the renderer writes: nothing counted, one unreadable series.
  expect(text).not.toMatch(/^nginx_mesh_requests_total\{/m);
  expect(text).toMatch(/^nginx_mesh_stats_unreadable_total 1$/m);
  expect(text).toMatch(/^nginx_mesh_stats_lost_total 0$/m);
  expect((await zones('GET')).every((zone) => zone.series.length === 0)).toBe(true);
});

describe('configuration errors', () => {
  const base = (http: string, stream = ''): string => `${preamble('check.pid')}
${http}
}
stream {
${stream}
}
`;

  it.each([
    [
      'a zone that is never defined',
      'server { listen 127.0.0.1:1; mesh_stats nowhere "$status"; }',
      /zero size shared memory zone "nowhere"/,
    ],
    ['a zone too small', 'mesh_stats_zone z 4k;', /invalid mesh_stats_zone size "4k"/],
    ['a zone size that is no size', 'mesh_stats_zone z lots;', /invalid mesh_stats_zone size/],
    [
      'a zone defined twice',
      'mesh_stats_zone z 64k; mesh_stats_zone z 64k;',
      /duplicate mesh_stats_zone "z"/,
    ],
    [
      'a parameter that is not if=',
      'mesh_stats_zone z 64k; server { listen 127.0.0.1:1; mesh_stats z "$status" when=$uri; }',
      /invalid parameter "when=\$uri"/,
    ],
    [
      'a zone without a key',
      'mesh_stats_zone z 64k; server { listen 127.0.0.1:1; mesh_stats z; }',
      /needs a zone and a key/,
    ],
    [
      'mesh_stats twice in one place',
      'mesh_stats_zone z 64k; server { listen 127.0.0.1:1; mesh_stats z "a"; mesh_stats z "b"; }',
      /"mesh_stats" directive is duplicate/,
    ],
  ])('refuses %s', (_what, http, message) => {
    const result = nginxTest(base(http));
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(message);
  });

  it('accepts a dump of a stream zone named in http before stream defines it', () => {
    const result = nginxTest(
      base(
        'server { listen 127.0.0.1:1; location / { mesh_stats_dump later; } }',
        'mesh_stats_zone later 64k;',
      ),
    );
    expect(result.output).toMatch(/test is successful/);
    expect(result.ok).toBe(true);
  });
});
