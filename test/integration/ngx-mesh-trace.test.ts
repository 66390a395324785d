// W3C trace context and spans in the sidecar's nginx module (images/sidecar/ngx_mesh/
// ngx_mesh_trace.c), loaded into Debian's real nginx: a client hop and a server hop chained as
// two sidecars are, what traceparent each sends on, which spans each records, the sampler,
// invalid headers, internal redirects, a full zone, and the directives' errors; read through the
// agent's parser (src/runtime/agent/tracing/nginx-spans.ts).
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { parseSpanTake, toMeshSpan } from '../../src/runtime/agent/tracing/nginx-spans';
import type { NginxSpan } from '../../src/runtime/agent/tracing/nginx-spans';
import {
  buildMeshModule,
  moduleConfigPreamble,
  prepareSidecarDir,
  waitForPort,
} from '../support/sidecar-dir';
import { stopChild } from '../support/processes';

const HOST = '127.0.0.1';
/** The "outbound" hop: a client span, on to SERVER. */
const CLIENT = 15_201;
/** The "inbound" hop: a server span, on to APP. */
const SERVER = 15_202;
const APP = 15_203;
const DUMP = 15_204;
/** Ratio 0: only incoming sampled traces are recorded. */
const UNSAMPLED = 15_205;
/** Ratio 0.5. */
const HALF = 15_206;
/** Records into the small zone. */
const SMALL = 15_207;

let dir: string;
let meshModule: string;
let nginx: ChildProcess | undefined;
let app: Server;
/** The headers of each request the app received, in order. */
const seen: IncomingHttpHeaders[] = [];

const preamble = (): string => moduleConfigPreamble(dir, meshModule, { workers: 2 });

function config(): string {
  return `${preamble()}
    mesh_trace_zone t_spans 256k;
    mesh_trace_zone t_small 32k;
    mesh_trace_ratio 1;
    server {
        listen ${HOST}:${CLIENT};
        mesh_trace_span t_spans client '{"service":"shop/backend","upstream":"$upstream_addr"}';
        location / {
            proxy_set_header traceparent $mesh_traceparent;
            proxy_pass http://${HOST}:${SERVER};
        }
    }
    server {
        listen ${HOST}:${SERVER};
        mesh_trace_span t_spans server '{"peer":"$remote_addr"}';
        location / {
            proxy_set_header traceparent $mesh_traceparent;
            proxy_pass http://${HOST}:${APP};
        }
        location /redirected {
            error_page 418 = @again;
            return 418;
        }
        location @again {
            add_header x-span $mesh_span_id;
            return 200 "$mesh_traceparent";
        }
        location /denied { return 403; }
    }
    server {
        listen ${HOST}:${UNSAMPLED};
        mesh_trace_ratio 0;
        mesh_trace_span t_spans server '{}';
        location / { return 200 "$mesh_traceparent $mesh_trace_sampled"; }
    }
    server {
        listen ${HOST}:${HALF};
        mesh_trace_ratio 0.5;
        mesh_trace_span t_spans server '{}';
        location / { return 200 "$mesh_trace_sampled"; }
    }
    server {
        listen ${HOST}:${SMALL};
        mesh_trace_span t_small server '{"pad":"$arg_pad"}';
        location / { return 204; }
    }
    server {
        listen ${HOST}:${DUMP};
        location = /spans { mesh_trace_dump t_spans; }
        location = /small { mesh_trace_dump t_small; }
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

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
}

/** One request with headers given as raw [name, value] pairs (a name may repeat). */
function call(port: number, path: string, headers: [string, string][] = []): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    for (const [name, value] of headers) {
      const before = req.getHeader(name);
      req.setHeader(
        name,
        before === undefined
          ? value
          : [...(Array.isArray(before) ? before : [String(before)]), value],
      );
    }
    req.on('error', reject);
    req.end();
  });
}

async function take(path = '/spans'): Promise<ReturnType<typeof parseSpanTake>> {
  const { status, body } = await call(DUMP, path);
  expect(status).toBe(200);
  // GET looks; POST takes
  const taken = await new Promise<string>((resolve, reject) => {
    const req = request({ host: HOST, port: DUMP, path, method: 'POST', agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end();
  });
  expect(taken.startsWith((body.split('\n')[0] ?? '').split(' bytes')[0] ?? '')).toBe(true);
  const parsed = parseSpanTake(taken);
  expect(parsed.unreadable).toBe(0);
  return parsed;
}

/** Waits until nginx has logged n spans (the log phase runs after the response is sent). */
async function spans(n: number, path = '/spans'): Promise<NginxSpan[]> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const { body } = await call(DUMP, path);
    const count = Number(/ spans (\d+) /.exec(body)?.[1] ?? 0);
    if (count >= n) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return [...(await take(path)).spans];
}

const show = (list: readonly NginxSpan[]): string =>
  JSON.stringify(list, (_key, value: unknown) =>
    typeof value === 'bigint' ? String(value) : value,
  );

/** The client and the server span of one request through both hops. */
function byKind(list: readonly NginxSpan[]): { client: NginxSpan; server: NginxSpan } {
  const client = list.find((span) => span.kind === 'client');
  const server = list.find((span) => span.kind === 'server');
  if (list.length !== 2 || client === undefined || server === undefined) {
    throw new Error(`expected a client and a server span, got ${show(list)}`);
  }
  return { client, server };
}

function only(list: readonly NginxSpan[]): NginxSpan {
  const [span] = list;
  if (list.length !== 1 || span === undefined) {
    throw new Error(`expected one span, got ${show(list)}`);
  }
  return span;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

beforeAll(async () => {
  meshModule = buildMeshModule();
  dir = prepareSidecarDir('ngx-mesh-trace-');
  app = createServer((req, res) => {
    seen.push(req.headers);
    res.statusCode = req.url === '/fail' ? 503 : 200;
    res.end('app\n');
  });
  await new Promise<void>((resolve) => app.listen(APP, HOST, resolve));
  writeFileSync(join(dir, 'nginx.conf'), config());
  nginx = spawn(
    'nginx',
    ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  for (const port of [CLIENT, SERVER, DUMP, UNSAMPLED, HALF, SMALL]) await waitForPort(port);
}, 120_000);

afterAll(async () => {
  await stopChild(nginx);
  await new Promise((resolve) => app.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await take();
  await take('/small');
  seen.length = 0;
});

it('starts a trace at the client hop and joins the server hop and the app to it', async () => {
  const answer = await call(CLIENT, '/orders/42?x=1');
  expect(answer.status).toBe(200);
  const { client, server } = byKind(await spans(2));
  expect(client.kind).toBe('client');
  expect(server.kind).toBe('server');
  expect(client.parentSpanId).toBeUndefined();
  expect(server.traceId).toBe(client.traceId);
  expect(server.parentSpanId).toBe(client.spanId);
  expect(server.spanId).not.toBe(client.spanId);
  // the app got a traceparent whose parent is the server hop's span, sampled
  expect(seen[0]?.traceparent).toBe(`00-${client.traceId}-${server.spanId}-01`);
  expect(client.method).toBe('GET');
  expect(client.path).toBe('/orders/42');
  expect(client.status).toBe(200);
  expect(client.attrs).toEqual({ service: 'shop/backend', upstream: `${HOST}:${SERVER}` });
  expect(server.attrs).toEqual({ peer: HOST });
  // the client hop's span encloses the server hop's
  expect(client.startUs).toBeLessThanOrEqual(server.startUs);
  expect(client.startUs + client.durationUs).toBeGreaterThanOrEqual(
    server.startUs + server.durationUs,
  );
  const now = BigInt(Date.now()) * 1000n;
  expect(now - client.startUs).toBeLessThan(10_000_000n);
  expect(toMeshSpan(client)).toMatchObject({
    name: 'GET',
    status: 'unset',
    attributes: {
      'http.request.method': 'GET',
      'url.path': '/orders/42',
      'http.response.status_code': 200,
      'server.address': 'backend.shop.svc',
      'network.peer.address': HOST,
      'network.peer.port': SERVER,
    },
  });
});

it('keeps an incoming sampled trace, with the caller as the parent', async () => {
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parent = '00f067aa0ba902b7';
  await call(CLIENT, '/', [
    ['traceparent', `00-${trace}-${parent}-01`],
    ['tracestate', 'vendor=opaque,other=1'],
  ]);
  const { client, server } = byKind(await spans(2));
  // tracestate travels on untouched: only its vendors may change their entries
  expect(seen[0]?.tracestate).toBe('vendor=opaque,other=1');
  expect(client.traceId).toBe(trace);
  expect(client.parentSpanId).toBe(parent);
  expect(server.parentSpanId).toBe(client.spanId);
  expect(seen[0]?.traceparent).toBe(`00-${trace}-${server.spanId}-01`);
});

it('passes an unsampled trace on, unsampled, and records nothing', async () => {
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  await call(CLIENT, '/', [['traceparent', `00-${trace}-00f067aa0ba902b7-00`]]);
  await call(CLIENT, '/');
  const recorded = await spans(2);
  // only the second request (new, sampled at ratio 1) is recorded
  expect(recorded).toHaveLength(2);
  expect(recorded.every((span) => span.traceId !== trace)).toBe(true);
  const [match] = [TRACEPARENT.exec(String(seen[0]?.traceparent))];
  expect(match?.[1]).toBe(trace);
  expect(match?.[3]).toBe('00');
  expect(match?.[2]).not.toBe('00f067aa0ba902b7');
});

it('starts a new trace for an invalid traceparent, and accepts a later version', async () => {
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parent = '00f067aa0ba902b7';
  const invalid = [
    `00-${trace.toUpperCase()}-${parent}-01`,
    `00-${'0'.repeat(32)}-${parent}-01`,
    `00-${trace}-${'0'.repeat(16)}-01`,
    `ff-${trace}-${parent}-01`,
    `00-${trace}-${parent}-01-extra`,
    `00-${trace}-${parent}-0`,
    `00_${trace}-${parent}-01`,
    `xx-${trace}-${parent}-01`,
  ];
  for (const value of invalid) {
    const answer = await call(UNSAMPLED, '/', [['traceparent', value]]);
    const match = TRACEPARENT.exec(answer.body.split(' ')[0] ?? '');
    expect({ value, trace: match?.[1] === trace }).toEqual({ value, trace: false });
    expect(answer.body.endsWith(' 0')).toBe(true);
  }
  // two traceparent headers: neither is trusted
  const twice = await call(UNSAMPLED, '/', [
    ['traceparent', `00-${trace}-${parent}-01`],
    ['traceparent', `00-${trace}-${parent}-01`],
  ]);
  expect(twice.body.startsWith(`00-${trace}`)).toBe(false);
  // version 01 with more fields after the first 55 characters
  const later = await call(UNSAMPLED, '/', [['traceparent', `01-${trace}-${parent}-01-more`]]);
  expect(later.body).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-01 1$`));
  const recorded = await spans(1);
  expect(recorded).toHaveLength(1);
  expect(recorded[0]).toMatchObject({ traceId: trace, parentSpanId: parent });
});

it('samples new traces at the configured ratio and gives each request its own ids', async () => {
  const samples: string[] = [];
  for (let i = 0; i < 400; i += 1) samples.push((await call(HALF, '/')).body);
  const sampled = samples.filter((body) => body === '1').length;
  // binomial(400, 0.5): 200 ± 40 is more than 4 standard deviations
  expect(sampled).toBeGreaterThan(160);
  expect(sampled).toBeLessThan(240);
  const recorded = await spans(sampled);
  expect(recorded).toHaveLength(sampled);
  expect(new Set(recorded.map((span) => span.traceId)).size).toBe(sampled);
  expect(new Set(recorded.map((span) => span.spanId)).size).toBe(sampled);
  // ratio 0: nothing new is sampled
  for (let i = 0; i < 50; i += 1) expect((await call(UNSAMPLED, '/')).body).toMatch(/-00 0$/);
  expect(await spans(0)).toHaveLength(0);
});

it('keeps one span id through an internal redirect', async () => {
  const answer = await call(SERVER, '/redirected');
  expect(answer.status).toBe(200);
  const match = TRACEPARENT.exec(answer.body);
  expect(match?.[2]).toBe(answer.headers['x-span']);
  const span = only(await spans(1));
  expect(span.spanId).toBe(answer.headers['x-span']);
  expect(span.traceId).toBe(match?.[1]);
  expect(span.status).toBe(200);
});

it('records failures and a refusal with their status', async () => {
  await call(CLIENT, '/fail');
  await call(SERVER, '/denied');
  const recorded = await spans(3);
  const client = recorded.find((span) => span.kind === 'client');
  const denied = recorded.find((span) => span.path === '/denied');
  expect(client?.status).toBe(503);
  expect(toMeshSpan(client as NginxSpan)).toMatchObject({
    status: 'error',
    statusMessage: 'HTTP 503',
  });
  expect(denied?.status).toBe(403);
  // a server answering 4xx did its job: not an error for the server span
  expect(toMeshSpan(denied as NginxSpan).status).toBe('unset');
});

it('keeps the request target as sent, its raw bytes escaped so the agent decodes them exactly', async () => {
  await call(SERVER, '/denied/a%20b%25c');
  // a raw request: Node's client refuses bytes outside ASCII in a path, nginx takes them
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host: HOST, port: SERVER }, () =>
      socket.end(Buffer.from('GET /denied/caf\u00e9 HTTP/1.0\r\n\r\n', 'utf8')),
    );
    socket.on('data', () => undefined);
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  const recorded = await spans(2);
  expect(recorded.map((span) => span.path).sort()).toEqual([
    '/denied/a%20b%25c',
    '/denied/caf\u00e9',
  ]);
});

it('counts spans a full zone cannot hold as dropped, and a take empties the zone', async () => {
  const pad = 'x'.repeat(900);
  for (let i = 0; i < 60; i += 1) await call(SMALL, `/?pad=${pad}`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const full = await take('/small');
  expect(full.spans.length).toBeGreaterThan(5);
  expect(full.spans.length + full.dropped).toBe(60);
  expect(full.dropped).toBeGreaterThan(0);
  const empty = await take('/small');
  expect(empty.spans).toHaveLength(0);
  expect(empty.dropped).toBe(0);
});

it('refuses a bad ratio, a bad kind and a missing zone with nginx -t', () => {
  const server = (directives: string) =>
    `${preamble()}\n mesh_trace_zone z 64k;\n server { listen ${HOST}:1; ${directives} }\n}\n`;
  const ratio = nginxTest(server('mesh_trace_ratio 1.5;'));
  expect(ratio.ok).toBe(false);
  expect(ratio.output).toContain('invalid mesh_trace_ratio "1.5"');
  expect(nginxTest(server('mesh_trace_ratio abc;')).ok).toBe(false);
  expect(nginxTest(server('mesh_trace_ratio 0.000001;')).ok).toBe(true);
  expect(nginxTest(server('mesh_trace_ratio .25;')).ok).toBe(true);
  const kind = nginxTest(server('mesh_trace_span z producer "{}";'));
  expect(kind.ok).toBe(false);
  expect(kind.output).toContain('invalid span kind "producer"');
  const zone = nginxTest(server('mesh_trace_span nowhere client "{}";'));
  expect(zone.ok).toBe(false);
  expect(zone.output).toContain('nowhere');
});
