// The sidecar's access log end to end, through the agent's own parts: the relay makes the FIFO
// before the first `nginx -t`, the ConfigApplier checks and applies the configuration
// renderSidecarConfig renders for it, the Supervisor runs, reloads and restarts the real nginx,
// and every line reaches the stream that stands for the agent's stdout, in the mesh
// configuration's format: an inbound HTTP request over mTLS (the peer's SPIFFE ID), an outbound
// HTTP request, an inbound TCP connection.
import { spawn } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { connect as connectTls } from 'node:tls';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { buildSidecarModel, renderSidecarConfig } from '../../src/render/sidecar';
import type { SidecarContext } from '../../src/render/sidecar';
import type { AccessLogRelay } from '../../src/runtime/agent/access-log-relay';
import { startAccessLogRelay, startAgentAccessLog } from '../../src/runtime/agent/access-log-relay';
import { createConfigApplier } from '../../src/runtime/agent/config-applier';
import { prepareStatsSocket } from '../../src/runtime/agent/metrics/sidecar-metrics';
import type { ConfigApplier } from '../../src/runtime/agent/config-applier';
import { Supervisor } from '../../src/runtime/agent/supervisor';
import type { LogFields, Logger } from '../../src/runtime/role/log';
import { createAuthority } from '../../src/runtime/registrar/authority';
import { buildMeshModule, prepareSidecarDir } from '../support/sidecar-dir';
import {
  endpoint,
  httpPort,
  service,
  shopContext,
  tcpPort,
  withMesh,
} from '../support/sidecar-snapshots';
import { issueTestSvid } from '../support/svid';
import type { TestSvid } from '../support/svid';

const USER_AGENT = 'access-log-test';
const BODY = 'hello\n';
const PEER = '10.1.0.7';

interface LogLine {
  readonly msg: string;
  readonly fields: LogFields;
}

function recordingLogger(lines: LogLine[]): Logger {
  const record = (msg: string, fields: LogFields = {}): void => void lines.push({ msg, fields });
  return {
    debug: record,
    info: record,
    warn: record,
    error: record,
    with: () => recordingLogger(lines),
  };
}

/** The stream standing for the agent's stdout: whole lines as they arrive. */
class LineReader {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiting: (() => void) | undefined;

  constructor(stream: PassThrough) {
    stream.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString('utf8');
      const parts = this.buffered.split('\n');
      this.buffered = parts.pop() ?? '';
      this.lines.push(...parts);
      this.waiting?.();
    });
  }

  /** The next line, within five seconds. */
  async next(): Promise<string> {
    const deadline = Date.now() + 5_000;
    while (this.lines.length === 0) {
      if (Date.now() > deadline) throw new Error('no access log line within 5 s');
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 100);
      });
    }
    return this.lines.shift() ?? '';
  }

  pending(): readonly string[] {
    return this.lines;
  }
}

let dir: string;
let meshModule: string;
let app: Server;
let appPort: number;
let echo: TcpServer;
let echoPort: number;
let caPem: string;
let client: TestSvid;
const agentLog: LogLine[] = [];
let stdout: PassThrough;
let lines: LineReader;
let relay: AccessLogRelay;
let supervisor: Supervisor;
let applier: ConfigApplier;
let context: SidecarContext;

/** web-1 serves HTTP on appPort and TCP on echoPort; it calls shop/api, an app outside the mesh. */
function snapshot(logFormat: 'default' | 'json', traced = false): MeshSnapshot {
  const telemetry = { host: '127.0.0.1', port: 4317, protocol: 'grpc', samplerRatio: 0 } as const;
  return withMesh(
    { mtlsMode: 'permissive', logFormat, ...(traced ? { telemetry } : {}) },
    {
      services: {
        ...service(
          'shop/web',
          '10.96.0.10',
          [httpPort(80), tcpPort(9000, 'echo')],
          [endpoint('10.1.0.5', { http: appPort, echo: echoPort }, 'shop/web-1', 'shop/web')],
        ),
        ...service(
          'shop/api',
          '10.96.0.11',
          [httpPort(8080)],
          [endpoint('127.0.0.1', { http: appPort })],
        ),
      },
    },
  );
}

/** The configuration for a log format; its members (the same for every format) go to the file. */
function render(logFormat: 'default' | 'json', traced = false): string {
  const rendered = renderSidecarConfig(snapshot(logFormat, traced), context);
  writeFileSync(join(dir, 'members'), rendered.members);
  return rendered.text;
}

const inboundLoopback = (port: number): string => `127.1.${port >> 8}.${port & 255}`;

/** An inbound HTTP request over mTLS as the inbound redirect hands it over, with a PROXY header. */
async function inboundHttp(path: string, traceparent?: string): Promise<string> {
  const raw = connect({ host: inboundLoopback(appPort), port: 8888 });
  await new Promise((resolve) => raw.once('connect', resolve));
  raw.write(`PROXY TCP4 ${PEER} 10.1.0.5 40000 ${appPort}\r\n`);
  const socket = connectTls({
    socket: raw,
    cert: client.chain,
    key: client.keyPem,
    ca: caPem,
    checkServerIdentity: () => undefined,
  });
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  const trace = traceparent === undefined ? '' : `traceparent: ${traceparent}\r\n`;
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: web\r\nUser-Agent: ${USER_AGENT}\r\n${trace}Connection: close\r\n\r\n`,
  );
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
  await new Promise((resolve) => socket.once('end', resolve));
  socket.destroy();
  return data;
}

/** An outbound HTTP request from the app, on the loopback address the outbound redirect picks. */
function outboundHttp(path: string): Promise<number> {
  const loopback = buildSidecarModel(snapshot('default'), context).model.outboundHttp.find(
    (http) => http.service === 'shop/api',
  )?.loopback;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: loopback,
        port: 8889,
        path,
        agent: false,
        headers: { Host: 'api', 'User-Agent': USER_AGENT },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** An inbound plaintext TCP connection: sends ping, waits for the echo, closes. */
async function inboundTcp(): Promise<string> {
  const socket = connect({ host: inboundLoopback(echoPort), port: 8907 });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`PROXY TCP4 ${PEER} 10.1.0.5 40001 ${echoPort}\r\nping`);
  let data = '';
  await new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString();
      if (data.length >= 4) resolve();
    }),
  );
  socket.end();
  await new Promise((resolve) => socket.once('close', resolve));
  return data;
}

/** A default line with its time and durations replaced by placeholders. */
const normalized = (line: string): string =>
  line
    .replace(/\[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]/, '[TIME]')
    .replace(/ \d+\.\d{3} direction=/, ' DURATION direction=')
    .replace(/duration=\d+\.\d{3}/, 'duration=D')
    .replace(/upstream_duration="\d+\.\d{3}"/, 'upstream_duration="D"');

const seconds = expect.stringMatching(/^\d+\.\d{3}$/) as unknown;
const isoTime = expect.stringMatching(
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/,
) as unknown;

beforeAll(async () => {
  meshModule = buildMeshModule();
  dir = prepareSidecarDir('sidecar-access-log-');
  // nginx's workers (nobody) read the SVID at each handshake.
  chmodSync(dir, 0o755);
  const authority = await createAuthority(
    { keyType: 'ec-p256', trustDomain: 'example.org', ttlMs: 24 * 3_600_000, upstream: undefined },
    new Date(),
  );
  caPem = authority.stored.certificate;
  const server = await issueTestSvid(authority, 'shop', 'web');
  client = await issueTestSvid(authority, 'shop', 'api');
  writeFileSync(join(dir, 'svid.pem'), server.chain + server.keyPem);
  writeFileSync(join(dir, 'bundle.crt'), caPem);

  app = createServer((_req, res) => res.end(BODY));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  appPort = (app.address() as AddressInfo).port;
  echo = createTcpServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as AddressInfo).port;

  // As the agent starts: the relay first, then the first `nginx -t`, then nginx.
  stdout = new PassThrough();
  lines = new LineReader(stdout);
  const logger = recordingLogger(agentLog);
  const started = await startAgentAccessLog(dir, () => stdout, logger);
  if (started === undefined) throw new Error(`no relay: ${JSON.stringify(agentLog)}`);
  relay = started;
  context = shopContext({
    containerPorts: [],
    modules: ['/usr/lib/nginx/modules/ngx_stream_module.so', meshModule],
    runDir: dir,
    svidFile: join(dir, 'svid.pem'),
    bundleFile: join(dir, 'bundle.crt'),
    accessLog: relay.path,
  });
  const paths = { nginx: '/usr/sbin/nginx', prefix: dir, config: join(dir, 'nginx.conf') };
  supervisor = new Supervisor({
    paths,
    logger,
    readyPort: 8900,
    backoff: { initialMs: 100, maxMs: 100 },
    beforeStart: () => void prepareStatsSocket(dir),
  });
  applier = createConfigApplier({ paths, supervisor, logger });
  const outcome = await applier.apply(render('default'), 'default');
  if (!outcome.applied) throw new Error(outcome.error);
  await supervisor.start();
}, 120_000);

afterAll(async () => {
  applier.close();
  await supervisor.stop();
  await relay.close();
  await new Promise((resolve) => app.close(resolve));
  await new Promise((resolve) => echo.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

it("relays nothing until traffic passes, not even the supervisor's probes that nginx listens", async () => {
  // The probes connect to the outbound redirect server, without an original destination.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  expect(lines.pending()).toEqual([]);
  expect(agentLog.filter((line) => line.msg.includes('access log'))).toEqual([]);
});

it('default: one combined line per request and per connection, with the mesh fields', async () => {
  expect(await inboundHttp('/items/7?x=1')).toMatch(/^HTTP\/1.1 200/);
  expect(normalized(await lines.next())).toBe(
    `${PEER} - - [TIME] "GET /items/7?x=1 HTTP/1.1" 200 ${BODY.length} "-" "${USER_AGENT}" ` +
      'direction="inbound" peer_id="spiffe://example.org/ns/shop/sa/api" host="web" duration=D ' +
      `service="-" upstream="127.0.0.1:${appPort}" upstream_status="200" upstream_duration="D" ` +
      'trace_id="-"',
  );
  expect(await outboundHttp('/orders?id=1')).toBe(200);
  expect(normalized(await lines.next())).toBe(
    `127.0.0.1 - - [TIME] "GET /orders?id=1 HTTP/1.1" 200 ${BODY.length} "-" "${USER_AGENT}" ` +
      'direction="outbound" peer_id="-" host="api" duration=D service="shop/api" ' +
      `upstream="127.0.0.1:${appPort}" upstream_status="200" upstream_duration="D" trace_id="-"`,
  );
  expect(await inboundTcp()).toBe('ping');
  expect(normalized(await lines.next())).toBe(
    `${PEER} [TIME] TCP 200 4 4 DURATION direction="inbound" peer_id="-" service="-" ` +
      `upstream="127.0.0.1:${echoPort}"`,
  );
  expect(lines.pending()).toEqual([]);
});

it('json after a reload: one object per line, every field named, with its type', async () => {
  const pid = supervisor.masterPid();
  expect(await applier.apply(render('json'), 'json')).toEqual({ applied: true });
  expect(supervisor.masterPid()).toBe(pid);
  expect(await outboundHttp('/orders?id="2"')).toBe(200);
  expect(JSON.parse(await lines.next())).toEqual({
    time: isoTime,
    direction: 'outbound',
    client: '127.0.0.1',
    peer_id: '',
    method: 'GET',
    uri: '/orders?id="2"',
    protocol: 'HTTP/1.1',
    host: 'api',
    status: 200,
    bytes_sent: BODY.length,
    referer: '',
    user_agent: USER_AGENT,
    duration: expect.any(Number) as unknown,
    service: 'shop/api',
    upstream: `127.0.0.1:${appPort}`,
    upstream_status: '200',
    upstream_duration: seconds,
    trace_id: '',
  });
  expect(await inboundHttp('/items/8')).toMatch(/^HTTP\/1.1 200/);
  expect(JSON.parse(await lines.next())).toMatchObject({
    direction: 'inbound',
    client: PEER,
    peer_id: 'spiffe://example.org/ns/shop/sa/api',
    uri: '/items/8',
    status: 200,
    service: '',
  });
  expect(await inboundTcp()).toBe('ping');
  expect(JSON.parse(await lines.next())).toEqual({
    time: isoTime,
    direction: 'inbound',
    client: PEER,
    peer_id: '',
    protocol: 'TCP',
    status: 200,
    bytes_sent: 4,
    bytes_received: 4,
    duration: expect.any(Number) as unknown,
    service: '',
    upstream: `127.0.0.1:${echoPort}`,
  });
});

it('writes the trace id while the mesh traces: the one the request came with, or a new one', async () => {
  expect(await applier.apply(render('json', true), 'json, traced')).toEqual({ applied: true });
  expect(await outboundHttp('/orders?id=3')).toBe(200);
  const started = JSON.parse(await lines.next()) as { trace_id: string };
  // not sampled (ratio 0), yet the request has a trace and its line says which
  expect(started.trace_id).toMatch(/^[0-9a-f]{32}$/);
  expect(
    await inboundHttp('/items/9', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'),
  ).toMatch(/^HTTP\/1.1 200/);
  expect(JSON.parse(await lines.next())).toMatchObject({
    direction: 'inbound',
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  });
  expect(await applier.apply(render('json'), 'json')).toEqual({ applied: true });
});

it('keeps relaying after nginx is killed and the supervisor restarts it', async () => {
  const pid = supervisor.masterPid() ?? 0;
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (supervisor.masterPid() === pid || !supervisor.readiness().ready) {
    if (Date.now() > deadline) throw new Error('nginx was not restarted');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(await outboundHttp('/after-restart')).toBe(200);
  expect(JSON.parse(await lines.next())).toMatchObject({ uri: '/after-restart', status: 200 });
});

it("copies nginx's last lines when the proxy stops, before the relay lets go", async () => {
  expect(await outboundHttp('/last')).toBe(200);
  // Still in nginx's buffer (written within a second): the stop writes it out.
  await supervisor.stop();
  await relay.close();
  expect(JSON.parse(await lines.next())).toMatchObject({ uri: '/last', status: 200 });
  expect(lines.pending()).toEqual([]);
});

describe('the relay alone', () => {
  it('cannot make its FIFO: one line naming the path and the reason', async () => {
    const path = join(dir, 'missing', 'access.log');
    await expect(
      startAccessLogRelay({ path, out: new PassThrough(), logger: recordingLogger([]) }),
    ).rejects.toMatchObject({
      message: `cannot create the access log FIFO ${path}: mkfifo: cannot create fifo '${path}': No such file or directory`,
    });
  });

  it('the agent then runs without an access log, and says so once', async () => {
    const logged: LogLine[] = [];
    const missing = join(dir, 'missing');
    expect(
      await startAgentAccessLog(missing, () => new PassThrough(), recordingLogger(logged)),
    ).toBe(undefined);
    expect(logged).toEqual([
      {
        msg: 'no access log: the proxy runs without one',
        fields: {
          error: `cannot create the access log FIFO ${join(missing, 'access.log')}: mkfifo: cannot create fifo '${join(missing, 'access.log')}': No such file or directory`,
        },
      },
    ]);
  });

  it('waits for a slow stdout instead of buffering, and loses nothing', async () => {
    let most = 0;
    const received: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, done) {
        most = Math.max(most, slow.writableLength);
        received.push(chunk);
        setTimeout(done, 2);
      },
    });
    const own = await startAccessLogRelay({
      path: join(dir, 'slow.log'),
      out: slow,
      logger: recordingLogger([]),
    });
    // 1.3 MB of lines, far more than the FIFO and the stream hold.
    const writer = spawn('sh', ['-c', `seq 1 200000 > ${own.path}`], { stdio: 'ignore' });
    await new Promise((resolve) => writer.once('exit', resolve));
    await own.close();
    const text = Buffer.concat(received).toString();
    expect(text.length).toBe(1_288_895);
    expect(text.startsWith('1\n2\n3\n')).toBe(true);
    expect(text.endsWith('199999\n200000\n')).toBe(true);
    // Without backpressure the stream would have held most of it at once.
    expect(most).toBeLessThanOrEqual(16 * 1024 + 64 * 1024);
  }, 60_000);
});
