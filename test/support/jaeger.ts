// A real trace backend for tests and the demo: the Jaeger v2 all-in-one binary that
// scripts/build-jaeger.sh builds from its Go module, run as a host process with in-memory
// storage, an OTLP receiver (gRPC and HTTP) and the query API, and nothing else listening on a
// fixed port, so several can run side by side. Spans are read back through the query API's JSON
// (the one the Jaeger UI uses), with ids as lowercase hex of fixed width.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';

/** How long a build may take: a cold build compiles the whole OpenTelemetry Collector. */
const BUILD_TIMEOUT_MS = 40 * 60_000;
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
const LOG_TAIL_LINES = 40;

/**
 * Builds Jaeger (or finds the cached build) with scripts/build-jaeger.sh under root and returns
 * the path of the jaeger binary. The script's progress goes to this process's stderr.
 */
export async function buildJaeger(root: string, timeoutMs = BUILD_TIMEOUT_MS): Promise<string> {
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [join(root, 'scripts', 'build-jaeger.sh')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else reject(new Error(`building Jaeger failed (${signal ?? `exit ${String(code)}`})`));
    });
  });
  const bin = stdout.trim().split('\n').at(-1) ?? '';
  if (bin === '') throw new Error('scripts/build-jaeger.sh printed no bin directory');
  return join(bin, 'jaeger');
}

export interface JaegerOptions {
  /** Holds the configuration (jaeger.yaml) and the log (jaeger.log); created if missing. */
  dir: string;
  /** Address every listener binds to (default 127.0.0.1). */
  host?: string;
  otlpGrpcPort: number;
  otlpHttpPort: number;
  queryPort: number;
  /** How long to wait for all listeners (default 30 s). */
  readyTimeoutMs?: number;
  /** When set, Jaeger is killed after this many seconds whatever happens to this process. */
  maxLifetimeS?: number;
}

export interface RunningJaeger {
  /** http://host:queryPort */
  readonly queryUrl: string;
  readonly otlpGrpc: { host: string; port: number };
  readonly otlpHttp: { host: string; port: number };
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process exited. */
  stop(): Promise<void>;
  /** Spans of one trace through the query API, [] when unknown (404). */
  getTrace(traceIdHex: string): Promise<JaegerSpan[]>;
  /** Trace ids seen for a service name (query API /api/traces?service=...). */
  findTraceIds(service: string, limit?: number): Promise<string[]>;
  services(): Promise<string[]>;
}

export interface JaegerSpan {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  /** The CHILD_OF reference, 16 lowercase hex digits; absent for a root span. */
  parentSpanId?: string;
  operationName: string;
  serviceName: string;
  /** The span.kind tag (client, server, producer, consumer, internal) when there is one. */
  kind?: string;
  startTimeUs: number;
  durationUs: number;
  /** The span's tags (OTLP attributes, plus the span.kind and otel.* tags Jaeger derives). */
  tags: Record<string, string | number | boolean>;
}

/** host:port, with an IPv6 host in brackets. */
function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The Jaeger v2 (OpenTelemetry Collector) configuration: OTLP in, memory storage, query API. */
export function jaegerConfig(options: JaegerOptions): string {
  const host = options.host ?? '127.0.0.1';
  const q = (text: string): string => JSON.stringify(text);
  return `# Written by test/support/jaeger.ts.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    # No internal metrics (they would listen on :8888) and no internal traces.
    metrics:
      level: none
    traces:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    # Jaeger would otherwise trace its own queries.
    enable_tracing: false
    # Spans come back with the timestamps they were sent with.
    max_clock_skew_adjust: 0s
    http:
      endpoint: ${q(hostPort(host, options.queryPort))}
    # The query gRPC API cannot be turned off: an ephemeral port.
    grpc:
      endpoint: ${q(hostPort(host, 0))}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${q(hostPort(host, options.otlpGrpcPort))}
      http:
        endpoint: ${q(hostPort(host, options.otlpHttpPort))}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`;
}

async function logTail(logFile: string): Promise<string> {
  try {
    const lines = (await readFile(logFile, 'utf8')).trimEnd().split('\n');
    return lines.slice(-LOG_TAIL_LINES).join('\n');
  } catch (error) {
    return `(no log: ${(error as Error).message})`;
  }
}

function exitText(child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `code ${child.exitCode}`;
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

async function queryAnswers(queryUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${queryUrl}/api/services`, {
      signal: AbortSignal.timeout(1_000),
    });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Lowercase hex of a fixed width (Jaeger drops the upper half of a 128-bit id that is zero). */
function normaliseId(id: string, width: 16 | 32, what: string): string {
  const hex = id.trim().toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex) || hex.length > width) {
    throw new Error(`${what} ${JSON.stringify(id)} is not hex of at most ${width} digits`);
  }
  return hex.padStart(width, '0');
}

interface ApiTag {
  key: string;
  type?: string;
  value: unknown;
}
interface ApiSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references?: { refType: string; traceID: string; spanID: string }[] | null;
  startTime: number;
  duration: number;
  tags?: ApiTag[] | null;
  processID: string;
}
interface ApiTrace {
  traceID: string;
  spans?: ApiSpan[] | null;
  processes?: Record<string, { serviceName: string }> | null;
}

function tagValue(tag: ApiTag): string | number | boolean {
  const { value } = tag;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return value;
  }
  return JSON.stringify(value);
}

function toSpan(span: ApiSpan, trace: ApiTrace): JaegerSpan {
  const tags: Record<string, string | number | boolean> = {};
  for (const tag of span.tags ?? []) tags[tag.key] = tagValue(tag);
  const parent = (span.references ?? []).find((ref) => ref.refType === 'CHILD_OF');
  const kind = tags['span.kind'];
  return {
    traceId: normaliseId(span.traceID, 32, 'trace id'),
    spanId: normaliseId(span.spanID, 16, 'span id'),
    ...(parent !== undefined ? { parentSpanId: normaliseId(parent.spanID, 16, 'span id') } : {}),
    operationName: span.operationName,
    serviceName: trace.processes?.[span.processID]?.serviceName ?? '',
    ...(kind !== undefined ? { kind: String(kind) } : {}),
    startTimeUs: span.startTime,
    durationUs: span.duration,
    tags,
  };
}

/**
 * Writes the configuration into options.dir and starts Jaeger, logging to options.dir/jaeger.log;
 * resolves once the query API answers and both OTLP ports accept connections. Rejects, with the
 * end of the log, when Jaeger exits first or is not ready in time (it is then stopped).
 */
export async function startJaeger(binary: string, options: JaegerOptions): Promise<RunningJaeger> {
  const host = options.host ?? '127.0.0.1';
  await mkdir(options.dir, { recursive: true });
  const configFile = join(options.dir, 'jaeger.yaml');
  const logFile = join(options.dir, 'jaeger.log');
  await writeFile(configFile, jaegerConfig(options));

  const args = [`--config=file:${configFile}`];
  const [command, commandArgs] =
    options.maxLifetimeS === undefined
      ? [binary, args]
      : // timeout passes SIGTERM on to Jaeger and kills it when the lifetime is over.
        ['timeout', ['--signal=KILL', String(options.maxLifetimeS), binary, ...args]];
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // Its own process group, so that a signal reaches Jaeger and not only `timeout`.
    child = spawn(command, commandArgs, {
      stdio: ['ignore', logFd, logFd],
      cwd: options.dir,
      detached: true,
    });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));

  const queryUrl = `http://${hostPort(host, options.queryPort)}`;
  const describe = (): string => `Jaeger (${binary}, query API ${queryUrl})`;

  let stopped = false;
  const stop = async (): Promise<void> => {
    stopped = true;
    if (!running(child) || child.pid === undefined) return;
    signalGroup(child, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), STOP_GRACE_MS);
    });
    const killed = await Promise.race([exited.then(() => false), graceOver]);
    clearTimeout(timer);
    if (killed && running(child)) {
      signalGroup(child, 'SIGKILL');
      await exited;
    }
  };

  const notRunning = async (): Promise<Error> => {
    if (stopped) return new Error(`${describe()} is not running: it was stopped`);
    const how =
      spawnError !== undefined
        ? `failed to start: ${spawnError.message}`
        : `exited (${exitText(child)})`;
    return new Error(`${describe()} ${how}; end of ${logFile}:\n${await logTail(logFile)}`);
  };

  // Ready: the query API answers and the OTLP receivers, which start after it, accept connections.
  const deadline = Date.now() + (options.readyTimeoutMs ?? READY_TIMEOUT_MS);
  for (;;) {
    if (spawnError !== undefined || !running(child)) {
      await exited;
      throw await notRunning();
    }
    const ready =
      (await queryAnswers(queryUrl)) &&
      (await tcpOpen(host, options.otlpGrpcPort)) &&
      (await tcpOpen(host, options.otlpHttpPort));
    if (ready && running(child)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `${describe()} not ready within ${(options.readyTimeoutMs ?? READY_TIMEOUT_MS) / 1000}s; end of ${logFile}:\n${await logTail(logFile)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  /** GET of a query API path; undefined on 404. */
  const getJson = async (path: string): Promise<unknown> => {
    if (!running(child)) throw await notRunning();
    let response: Response;
    try {
      response = await fetch(`${queryUrl}${path}`, {
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      const reason = cause instanceof Error ? cause.message : (error as Error).message;
      throw new Error(`${describe()}: GET ${path} failed: ${reason}`);
    }
    const text = await response.text();
    if (response.status === 404) return undefined;
    if (response.status !== 200) {
      throw new Error(`${describe()}: GET ${path} answered ${response.status}: ${text}`);
    }
    return JSON.parse(text) as unknown;
  };

  return {
    queryUrl,
    otlpGrpc: { host, port: options.otlpGrpcPort },
    otlpHttp: { host, port: options.otlpHttpPort },
    stop,
    async getTrace(traceIdHex) {
      const id = normaliseId(traceIdHex, 32, 'trace id');
      const body = (await getJson(`/api/traces/${id}`)) as { data?: ApiTrace[] | null } | undefined;
      return (body?.data ?? []).flatMap((trace) =>
        (trace.spans ?? []).map((s) => toSpan(s, trace)),
      );
    },
    async findTraceIds(service, limit = 20) {
      const query = new URLSearchParams({ service, limit: String(limit) });
      const body = (await getJson(`/api/traces?${query.toString()}`)) as
        { data?: ApiTrace[] | null } | undefined;
      const ids = (body?.data ?? []).map((trace) => normaliseId(trace.traceID, 32, 'trace id'));
      return [...new Set(ids)];
    },
    async services() {
      const body = (await getJson('/api/services')) as { data?: string[] | null } | undefined;
      return [...(body?.data ?? [])].sort();
    },
  };
}
