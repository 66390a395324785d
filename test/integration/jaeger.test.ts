// The trace backend of the tests and the demo: Jaeger built from its Go module
// (scripts/build-jaeger.sh), started on free loopback ports by test/support/jaeger.ts, fed one
// trace over OTLP/HTTP with JSON encoding and read back through its query API.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildJaeger, startJaeger } from '../support/jaeger';
import type { JaegerSpan, RunningJaeger } from '../support/jaeger';
import { freePort } from '../support/prometheus';

const ROOT = join(__dirname, '..', '..');
const HOST = '127.0.0.1';
/** Jaeger is killed after this long whatever happens to the test process. */
const MAX_LIFETIME_S = 600;

let binary: string;
let dir: string;
let jaeger: RunningJaeger;

async function freePorts(): Promise<{
  otlpGrpcPort: number;
  otlpHttpPort: number;
  queryPort: number;
}> {
  return {
    otlpGrpcPort: await freePort(HOST),
    otlpHttpPort: await freePort(HOST),
    queryPort: await freePort(HOST),
  };
}

beforeAll(async () => {
  // A cold build compiles the whole OpenTelemetry Collector; later runs find it cached.
  binary = await buildJaeger(ROOT);
}, 45 * 60_000);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nsm-jaeger-'));
  jaeger = await startJaeger(binary, {
    dir: join(dir, 'main'),
    ...(await freePorts()),
    maxLifetimeS: MAX_LIFETIME_S,
  });
});

afterAll(async () => {
  await jaeger?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const string = (key: string, value: string) => ({ key, value: { stringValue: value } });
const int = (key: string, value: number) => ({ key, value: { intValue: String(value) } });
const bool = (key: string, value: boolean) => ({ key, value: { boolValue: value } });

/** OTLP span kinds (opentelemetry-proto trace.proto). */
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

/** Polls until the trace has `count` spans (the receiver hands spans to storage asynchronously). */
async function spansOf(traceId: string, count: number): Promise<JaegerSpan[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const spans = await jaeger.getTrace(traceId);
    if (spans.length >= count || Date.now() > deadline) return spans;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('a trace sent over OTLP/HTTP JSON is read back through the query API', async () => {
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  const childId = randomBytes(8).toString('hex');
  const service = `nsm-test-${randomBytes(3).toString('hex')}`;
  const startNs = BigInt(Date.now() - 1_000) * 1_000_000n;
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [string('service.name', service)] },
        scopeSpans: [
          {
            scope: { name: 'nginx-meshctl-test' },
            spans: [
              {
                traceId,
                spanId: parentId,
                name: 'GET /orders',
                kind: SPAN_KIND_SERVER,
                startTimeUnixNano: String(startNs),
                endTimeUnixNano: String(startNs + 30_000_000n),
                attributes: [
                  string('http.request.method', 'GET'),
                  int('http.response.status_code', 200),
                ],
              },
              {
                traceId,
                spanId: childId,
                parentSpanId: parentId,
                name: 'db query',
                kind: SPAN_KIND_CLIENT,
                startTimeUnixNano: String(startNs + 5_000_000n),
                endTimeUnixNano: String(startNs + 25_000_000n),
                attributes: [string('db.system', 'postgresql'), bool('retried', false)],
              },
            ],
          },
        ],
      },
    ],
  };
  const response = await fetch(`http://${HOST}:${jaeger.otlpHttp.port}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  await response.arrayBuffer();

  const spans = await spansOf(traceId.toUpperCase(), 2);
  expect(spans).toHaveLength(2);
  const parent = spans.find((s) => s.spanId === parentId);
  const child = spans.find((s) => s.spanId === childId);
  expect(parent).toMatchObject({
    traceId,
    operationName: 'GET /orders',
    serviceName: service,
    kind: 'server',
    startTimeUs: Number(startNs / 1_000n),
    durationUs: 30_000,
    tags: { 'http.request.method': 'GET', 'http.response.status_code': 200 },
  });
  expect(parent?.parentSpanId).toBeUndefined();
  expect(child).toMatchObject({
    traceId,
    parentSpanId: parentId,
    operationName: 'db query',
    serviceName: service,
    kind: 'client',
    startTimeUs: Number((startNs + 5_000_000n) / 1_000n),
    durationUs: 20_000,
    tags: { 'db.system': 'postgresql', retried: false },
  });

  expect(await jaeger.services()).toContain(service);
  expect(await jaeger.findTraceIds(service)).toEqual([traceId]);
  expect(await jaeger.findTraceIds('nsm-no-such-service')).toEqual([]);
  expect(await jaeger.getTrace(randomBytes(16).toString('hex'))).toEqual([]);
});

test('trace ids are lowercase hex of 32 digits even when the upper half is zero', async () => {
  const traceId = `${'0'.repeat(16)}${randomBytes(8).toString('hex')}`;
  const spanId = `00${randomBytes(7).toString('hex')}`;
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const response = await fetch(`http://${HOST}:${jaeger.otlpHttp.port}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [string('service.name', 'nsm-short-id')] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId,
                  spanId,
                  name: 'short',
                  startTimeUnixNano: String(startNs),
                  endTimeUnixNano: String(startNs + 1_000n),
                },
              ],
            },
          ],
        },
      ],
    }),
  });
  expect(response.status).toBe(200);
  await response.arrayBuffer();
  const [span] = await spansOf(traceId.slice(16), 1);
  expect(span).toMatchObject({ traceId, spanId, serviceName: 'nsm-short-id' });
  expect(await jaeger.findTraceIds('nsm-short-id')).toEqual([traceId]);
});

test('a stopped Jaeger makes the query calls reject with a clear error', async () => {
  const stopped = await startJaeger(binary, {
    dir: join(dir, 'stopped'),
    ...(await freePorts()),
    maxLifetimeS: MAX_LIFETIME_S,
  });
  expect(await stopped.services()).toEqual([]);
  await stopped.stop();
  await stopped.stop(); // a second stop is a no-op
  await expect(stopped.getTrace(randomBytes(16).toString('hex'))).rejects.toThrow(
    /^Jaeger \(.*, query API http:\/\/127\.0\.0\.1:\d+\) is not running: it was stopped$/,
  );
  await expect(stopped.services()).rejects.toThrow(/is not running/);
});

test('a Jaeger that cannot listen fails to start with the end of its log', async () => {
  // Something else holds the query port (and hangs up on whoever connects).
  const blocker = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => blocker.listen(0, HOST, resolve));
  const { port } = blocker.address() as AddressInfo;
  try {
    const failing = join(dir, 'failing');
    const start = startJaeger(binary, {
      dir: failing,
      ...(await freePorts()),
      queryPort: port,
      maxLifetimeS: MAX_LIFETIME_S,
      readyTimeoutMs: 20_000,
    });
    await expect(start).rejects.toThrow(
      /exited \(code \d+\); end of .*jaeger\.log:\n[^]*address already in use/,
    );
    expect(await readFile(join(failing, 'jaeger.log'), 'utf8')).toContain('address already in use');
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
});
