// The agent's span exporter against real collectors on loopback: an HTTP/2 server that speaks
// OTLP/gRPC's TraceService/Export and an HTTP server that takes OTLP/HTTP's POST /v1/traces,
// both decoding what arrives with the tests' own protobuf reader. Batches, retries, failures,
// a full queue, a collector switched or turned off at runtime, and a collector that never answers
// while the caller keeps adding spans without waiting.
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import type { Http2Server, Http2Session, ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SpanExporter } from '../../src/runtime/agent/tracing/exporter';
import type { OtlpEndpoint, SpanExporterOptions } from '../../src/runtime/agent/tracing/exporter';
import type { MeshSpan } from '../../src/runtime/agent/tracing/span';
import { decodeExportTraceRequest, spansOf } from '../support/otlp-decode';
import type { DecodedExportRequest } from '../support/otlp-decode';
import { freePort } from '../support/prometheus';

type Protocol = OtlpEndpoint['protocol'];

/**
 * How the collector answers an export: accept, refuse for now, refuse for now asking for a
 * second's wait (HTTP's 429 with Retry-After), refuse for good, or never.
 */
type Answer = 'ok' | 'retryable' | 'busy' | 'fatal' | 'hang';

interface Collector {
  readonly endpoint: OtlpEndpoint;
  /** Every export that arrived, decoded, including those refused. */
  readonly requests: DecodedExportRequest[];
  /** Request headers of every export, for the protocol's checks. */
  readonly headers: Record<string, string | string[] | undefined>[];
  /** HTTP/2 connections the collector accepted (gRPC). */
  connections(): number;
  /** Drops every connection, as a collector restart would. */
  dropConnections(): void;
  close(): Promise<void>;
}

const GRPC_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const scope = { name: 'nginx-mesh', version: '0.1.0' };
const resource = { 'service.name': 'web', 'k8s.pod.name': 'web-1', 'k8s.namespace.name': 'shop' };

function makeSpans(count: number, first = 0): MeshSpan[] {
  return Array.from({ length: count }, (_, index) => ({
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: (first + index + 1).toString(16).padStart(16, '0'),
    parentSpanId: 'a3ce929d0e0e4736',
    kind: 'server',
    name: `GET /items/${first + index}`,
    startUnixNano: 1_700_000_000_000_000_000n + BigInt(first + index),
    endUnixNano: 1_700_000_000_500_000_000n + BigInt(first + index),
    status: 'ok',
    attributes: { 'http.response.status_code': 200, index: first + index },
  }));
}

const delivered = (collector: Collector): number[] =>
  collector.requests.flatMap((request) =>
    spansOf(request).map((span) => Number.parseInt(span.spanId, 16) - 1),
  );

const range = (count: number, first = 0): number[] =>
  Array.from({ length: count }, (_, index) => first + index);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until check() holds, polling every 10 ms for at most ms. */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(10);
  }
}

/** Heap in use after a full garbage collection, in bytes. */
function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

/** A gRPC message from its frame: compression flag 0, four bytes of length, the message. */
function unframe(frame: Buffer): Uint8Array {
  if (frame.length < 5 || frame[0] !== 0) throw new Error('not an uncompressed gRPC frame');
  const length = frame.readUInt32BE(1);
  if (frame.length !== 5 + length) throw new Error(`frame of ${frame.length} bytes for ${length}`);
  return frame.subarray(5);
}

function answerGrpc(stream: ServerHttp2Stream, answer: Answer): void {
  if (answer === 'hang') return;
  if (answer === 'retryable' || answer === 'busy') {
    // Trailers-only: the status in the headers, UNAVAILABLE.
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14' },
      { endStream: true },
    );
    return;
  }
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () =>
    stream.sendTrailers(
      answer === 'ok'
        ? { 'grpc-status': '0' }
        : { 'grpc-status': '3', 'grpc-message': 'bad%20span' }, // INVALID_ARGUMENT
    ),
  );
  // An empty ExportTraceServiceResponse.
  stream.end(answer === 'ok' ? Buffer.from([0, 0, 0, 0, 0]) : undefined);
}

function answerHttp(res: ServerResponse, answer: Answer): void {
  if (answer === 'hang') return;
  res.statusCode = { ok: 200, retryable: 503, busy: 429, fatal: 400 }[answer];
  if (answer === 'busy') res.setHeader('retry-after', '1');
  res.setHeader('content-type', 'application/x-protobuf');
  res.end();
}

async function listen(server: HttpServer | Http2Server, port: number): Promise<number> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A collector answering each export as answer(its number, from 1) says. */
async function startCollector(
  protocol: Protocol,
  answer: (attempt: number) => Answer = () => 'ok',
  port = 0,
): Promise<Collector> {
  const requests: DecodedExportRequest[] = [];
  const headers: Record<string, string | string[] | undefined>[] = [];
  const receive = (head: Record<string, string | string[] | undefined>, body: Buffer): Answer => {
    headers.push(head);
    requests.push(decodeExportTraceRequest(protocol === 'grpc' ? unframe(body) : body));
    return answer(requests.length);
  };
  const sessions = new Set<Http2Session>();
  const sockets = new Set<Socket>();
  let server: HttpServer | Http2Server;
  if (protocol === 'grpc') {
    const h2 = createHttp2Server();
    h2.on('session', (session) => {
      sessions.add(session);
      session.on('close', () => sessions.delete(session));
    });
    h2.on('stream', (stream, head) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => answerGrpc(stream, receive(head, Buffer.concat(chunks))));
      stream.on('error', () => undefined);
    });
    server = h2;
  } else {
    const http = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () =>
        answerHttp(res, receive({ ...req.headers, path: req.url }, Buffer.concat(chunks))),
      );
    });
    server = http;
  }
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const bound = await listen(server, port);
  const dropConnections = (): void => {
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
  };
  return {
    endpoint: { host: '127.0.0.1', port: bound, protocol },
    requests,
    headers,
    connections: () => connections,
    dropConnections,
    close: async () => {
      dropConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const collectors: Collector[] = [];
const exporters: SpanExporter[] = [];

async function collector(
  protocol: Protocol,
  answer?: (attempt: number) => Answer,
  port?: number,
): Promise<Collector> {
  const started = await startCollector(protocol, answer, port);
  collectors.push(started);
  return started;
}

/** An exporter with the test's quick timings unless told otherwise. */
function exporter(options: Partial<SpanExporterOptions>): SpanExporter {
  const created = new SpanExporter({
    resource,
    scope,
    flushIntervalMs: 50,
    backoffMs: 20,
    maxBackoffMs: 100,
    timeoutMs: 2_000,
    ...options,
  });
  exporters.push(created);
  return created;
}

afterEach(async () => {
  // Collectors first: a request left hanging then fails at once, so stop() need not wait it out.
  await Promise.all(collectors.splice(0).map((started) => started.close()));
  await Promise.all(exporters.splice(0).map((created) => created.stop()));
});

describe.each<Protocol>(['grpc', 'http'])('SpanExporter over OTLP/%s', (protocol) => {
  it('delivers spans with their resource, scope and fields', async () => {
    const target = await collector(protocol);
    const spans = makeSpans(3);
    const otlp = exporter({ endpoint: target.endpoint });
    otlp.add(spans);
    await otlp.flush();

    expect(otlp.stats()).toEqual({ exported: 3, dropped: 0, failedBatches: 0, queued: 0 });
    expect(target.requests).toHaveLength(1);
    const [request] = target.requests;
    expect(request?.resourceSpans[0]?.resource).toEqual({
      'service.name': { stringValue: 'web' },
      'k8s.pod.name': { stringValue: 'web-1' },
      'k8s.namespace.name': { stringValue: 'shop' },
    });
    expect(request?.resourceSpans[0]?.scopeSpans[0]?.scope).toEqual(scope);
    const [first] = spansOf(request ?? { resourceSpans: [] });
    expect(first).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '0000000000000001',
      parentSpanId: 'a3ce929d0e0e4736',
      name: 'GET /items/0',
      kind: 2,
      startTimeUnixNano: 1_700_000_000_000_000_000n,
      endTimeUnixNano: 1_700_000_000_500_000_000n,
      attributes: {
        'http.response.status_code': { intValue: 200n },
        index: { intValue: 0n },
      },
      status: { message: '', code: 1 },
    });
    const [head] = target.headers;
    if (protocol === 'grpc') {
      expect(head).toMatchObject({
        ':method': 'POST',
        ':path': GRPC_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
    } else {
      expect(head).toMatchObject({ path: '/v1/traces', 'content-type': 'application/x-protobuf' });
    }
  });

  it('sends N spans added together in ceil(N / maxBatch) requests, each span once', async () => {
    const target = await collector(protocol);
    const otlp = exporter({ endpoint: target.endpoint, maxBatch: 100, maxQueue: 2_000 });
    otlp.add(makeSpans(1_000));
    otlp.add(makeSpans(234, 1_000));
    await otlp.flush();

    expect(target.requests.length).toBeLessThanOrEqual(Math.ceil(1_234 / 100));
    for (const request of target.requests) expect(spansOf(request).length).toBeLessThanOrEqual(100);
    expect(delivered(target)).toEqual(range(1_234));
    expect(otlp.stats()).toMatchObject({ exported: 1_234, dropped: 0, queued: 0 });
  });

  it('sends a batch that does not fill up after the flush interval', async () => {
    const target = await collector(protocol);
    const otlp = exporter({ endpoint: target.endpoint, flushIntervalMs: 100 });
    otlp.add(makeSpans(5));
    await sleep(20);
    expect(target.requests).toHaveLength(0);
    await until(() => otlp.stats().exported === 5, 5_000);
    expect(delivered(target)).toEqual(range(5));
  });

  it('delivers after retries to a collector that was down when export started', async () => {
    const port = await freePort();
    const otlp = exporter({
      endpoint: { host: '127.0.0.1', port, protocol },
      backoffMs: 50,
      maxBackoffMs: 200,
      maxAttempts: 50,
    });
    otlp.add(makeSpans(10));
    await until(() => otlp.stats().lastError !== undefined);
    expect(otlp.stats().lastError).toMatch(/ECONNREFUSED/);
    expect(otlp.stats()).toMatchObject({ exported: 0, queued: 10 });

    const target = await collector(protocol, undefined, port);
    await otlp.flush();
    expect(delivered(target)).toEqual(range(10));
    expect(otlp.stats()).toMatchObject({ exported: 10, dropped: 0, failedBatches: 0 });
  });

  it('retries a batch the collector refuses for now: two refusals, then the third attempt lands', async () => {
    const target = await collector(protocol, (attempt) => (attempt <= 2 ? 'retryable' : 'ok'));
    const otlp = exporter({ endpoint: target.endpoint, maxAttempts: 5 });
    otlp.add(makeSpans(7));
    await otlp.flush();

    expect(target.requests).toHaveLength(3);
    for (const request of target.requests) expect(spansOf(request)).toHaveLength(7);
    expect(otlp.stats()).toMatchObject({ exported: 7, dropped: 0, failedBatches: 0, queued: 0 });
    expect(otlp.stats().lastError).toMatch(protocol === 'grpc' ? /grpc-status 14/ : /HTTP 503/);
  });

  it('drops a batch the collector refuses for good, once, and counts it', async () => {
    const target = await collector(protocol, () => 'fatal');
    const otlp = exporter({ endpoint: target.endpoint, maxAttempts: 5 });
    otlp.add(makeSpans(7));
    await otlp.flush();
    await sleep(200);

    expect(target.requests).toHaveLength(1);
    expect(otlp.stats()).toMatchObject({ exported: 0, dropped: 7, failedBatches: 1, queued: 0 });
    expect(otlp.stats().lastError).toBe(
      protocol === 'grpc'
        ? `OTLP/grpc collector 127.0.0.1:${target.endpoint.port}: grpc-status 3: bad span`
        : `OTLP/http collector 127.0.0.1:${target.endpoint.port}: HTTP 400`,
    );
  });

  it('gives up on a batch after maxAttempts refusals', async () => {
    const target = await collector(protocol, () => 'retryable');
    const otlp = exporter({ endpoint: target.endpoint, maxAttempts: 3 });
    otlp.add(makeSpans(4));
    await otlp.flush();

    expect(target.requests).toHaveLength(3);
    expect(otlp.stats()).toMatchObject({ exported: 0, dropped: 4, failedBatches: 1, queued: 0 });
  });

  it('times out on a collector that never answers while add() keeps returning at once', async () => {
    const target = await collector(protocol, () => 'hang');
    const otlp = exporter({
      endpoint: target.endpoint,
      timeoutMs: 300,
      maxAttempts: 2,
      maxQueue: 20_000,
      maxBatch: 10,
    });
    otlp.add(makeSpans(10));
    await until(() => target.requests.length === 1);

    const spans = makeSpans(10_000, 10);
    const started = performance.now();
    otlp.add(spans);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(50);
    expect(otlp.stats().queued).toBe(10_010);

    await until(() => otlp.stats().failedBatches === 1, 5_000);
    expect(otlp.stats().lastError).toBe(
      `OTLP/${protocol} collector 127.0.0.1:${target.endpoint.port}: no answer within 300 ms`,
    );
    expect(otlp.stats()).toMatchObject({ exported: 0, dropped: 10, queued: 10_000 });
    // Both attempts carried the first batch; the next batch may be on its way already.
    const [first, second] = target.requests.map((request) =>
      spansOf(request).map((span) => span.spanId),
    );
    expect(first).toEqual(second);
    expect(first).toHaveLength(10);
  });

  it('drops and counts exactly what does not fit the queue, and holds no more than it', async () => {
    const target = await collector(protocol, () => 'hang');
    const otlp = exporter({
      endpoint: target.endpoint,
      maxQueue: 100,
      maxBatch: 10,
      timeoutMs: 30_000,
    });
    otlp.add(makeSpans(1_000));
    expect(otlp.stats()).toMatchObject({ dropped: 900, queued: 100 });
    await until(() => target.requests.length === 1);
    expect(otlp.stats()).toMatchObject({ dropped: 900, queued: 100 });

    // 200,000 more spans, each with a 1 KiB string of its own: some 200 MB if the exporter
    // kept them, nothing once collected if it does not.
    const before = heapAfterGc();
    let added = 1_000;
    for (let round = 0; round < 200; round++) {
      const spans = makeSpans(1_000, added).map((span, index) => ({
        ...span,
        attributes: { payload: `${round}:${index}:`.padEnd(1_024, '.') },
      }));
      otlp.add(spans);
      added += spans.length;
      expect(otlp.stats().queued).toBe(100);
    }
    const grownMb = (heapAfterGc() - before) / 1e6;
    expect(otlp.stats()).toMatchObject({ exported: 0, dropped: added - 100, queued: 100 });
    expect(grownMb).toBeLessThan(20);
    expect(target.requests).toHaveLength(1);
  });
});

describe('SpanExporter configured at runtime', () => {
  it('sends the next batch to a new endpoint, whatever its protocol, with a new resource', async () => {
    const first = await collector('grpc');
    const second = await collector('http');
    const otlp = exporter({ endpoint: first.endpoint });
    otlp.add(makeSpans(3));
    await otlp.flush();

    otlp.configure(second.endpoint, { ...resource, 'k8s.pod.name': 'web-2' });
    otlp.add(makeSpans(4, 3));
    await otlp.flush();

    expect(delivered(first)).toEqual(range(3));
    expect(delivered(second)).toEqual(range(4, 3));
    expect(second.requests[0]?.resourceSpans[0]?.resource?.['k8s.pod.name']).toEqual({
      stringValue: 'web-2',
    });
    expect(otlp.stats()).toMatchObject({ exported: 7, dropped: 0 });
  });

  it('moves a batch waiting to retry on a collector that is down to the new endpoint', async () => {
    const down = await freePort();
    const target = await collector('grpc');
    const otlp = exporter({
      endpoint: { host: '127.0.0.1', port: down, protocol: 'http' },
      backoffMs: 5_000,
      maxBackoffMs: 5_000,
      maxAttempts: 50,
    });
    otlp.add(makeSpans(6));
    await until(() => otlp.stats().lastError !== undefined);

    const started = performance.now();
    otlp.configure(target.endpoint);
    await otlp.flush();
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(delivered(target)).toEqual(range(6));
  });

  it('turns export off: drops what is queued or in flight and what is added, counting them', async () => {
    const hanging = await collector('grpc', () => 'hang');
    const otlp = exporter({ endpoint: hanging.endpoint, maxBatch: 10, timeoutMs: 30_000 });
    otlp.add(makeSpans(25));
    await until(() => hanging.requests.length === 1);
    expect(otlp.stats()).toMatchObject({ queued: 25, dropped: 0 });

    otlp.configure(undefined);
    expect(otlp.stats()).toMatchObject({ queued: 0, dropped: 25, exported: 0 });
    otlp.add(makeSpans(5, 25));
    expect(otlp.stats()).toMatchObject({ queued: 0, dropped: 30 });
    await otlp.flush();
    await sleep(100);
    expect(hanging.requests).toHaveLength(1);

    const target = await collector('http');
    otlp.configure(target.endpoint);
    otlp.add(makeSpans(2, 30));
    await otlp.flush();
    expect(delivered(target)).toEqual([30, 31]);
    expect(otlp.stats()).toMatchObject({ exported: 2, dropped: 30, queued: 0 });
  });

  it('reuses one HTTP/2 connection for gRPC and connects again after it is lost', async () => {
    const target = await collector('grpc');
    const otlp = exporter({ endpoint: target.endpoint, maxBatch: 5 });
    for (let round = 0; round < 4; round++) {
      otlp.add(makeSpans(5, round * 5));
      await otlp.flush();
    }
    expect(target.requests).toHaveLength(4);
    expect(target.connections()).toBe(1);

    target.dropConnections();
    await sleep(50);
    otlp.add(makeSpans(5, 20));
    await otlp.flush();
    expect(delivered(target)).toEqual(range(25));
    expect(target.connections()).toBe(2);
    expect(otlp.stats()).toMatchObject({ exported: 25, dropped: 0, failedBatches: 0 });
  });

  it('drops malformed spans, counted, and sends the rest of their batch', async () => {
    const target = await collector('http');
    const otlp = exporter({ endpoint: target.endpoint });
    const [good, other] = makeSpans(2);
    if (good === undefined || other === undefined) throw new Error('no spans');
    otlp.add([
      good,
      { ...other, traceId: 'NOT-HEX' },
      { ...other, spanId: '0000000000000000' },
      { ...other, startUnixNano: -1n },
    ]);
    await otlp.flush();
    expect(delivered(target)).toEqual([0]);
    expect(otlp.stats()).toMatchObject({ exported: 1, dropped: 3 });
  });
});

describe('SpanExporter over OTLP/http, told to wait', () => {
  it('waits as long as Retry-After asks before it retries', async () => {
    const target = await collector('http', (attempt) => (attempt === 1 ? 'busy' : 'ok'));
    const otlp = exporter({ endpoint: target.endpoint, backoffMs: 20, maxBackoffMs: 100 });
    otlp.add(makeSpans(3));
    await until(() => target.requests.length === 1);
    const refused = performance.now();
    await otlp.flush();

    expect(performance.now() - refused).toBeGreaterThanOrEqual(950);
    expect(target.requests).toHaveLength(2);
    expect(otlp.stats()).toMatchObject({ exported: 3, dropped: 0, failedBatches: 0 });
    expect(otlp.stats().lastError).toMatch(/HTTP 429$/);
  });
});

describe('SpanExporter.stop', () => {
  it('sends what is queued at once, then drops later adds', async () => {
    const target = await collector('grpc');
    const otlp = exporter({ endpoint: target.endpoint, flushIntervalMs: 60_000 });
    otlp.add(makeSpans(3));
    await otlp.stop();
    expect(delivered(target)).toEqual(range(3));
    otlp.add(makeSpans(2, 3));
    expect(otlp.stats()).toMatchObject({ exported: 3, dropped: 2, queued: 0 });
  });

  it('is bounded by timeoutMs against a collector that never answers', async () => {
    const target = await collector('http', () => 'hang');
    const otlp = exporter({ endpoint: target.endpoint, timeoutMs: 300, maxBatch: 10 });
    otlp.add(makeSpans(25));
    const started = performance.now();
    await otlp.stop();
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(otlp.stats()).toMatchObject({ exported: 0, dropped: 25, queued: 0 });
  });
});
