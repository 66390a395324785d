// A small HTTP/1.1 load generator for the data-plane benchmark, run inside the client pod's
// network namespace. Keep-alive connections over raw sockets (no http.Agent in the way), GET
// requests, responses read to their Content-Length (or the last chunk). Two shapes:
//   closed: each connection sends its next request when the last one answered (the service-time
//           floor at one connection, saturation throughput at many);
//   paced:  an open loop at a fixed total rate, spread evenly over the connections; latency runs
//           from the scheduled send time, so a slow answer also charges the requests queued
//           behind it (no coordinated omission).
// A failed request (connection error, close, non-200, timeout) counts as an error; with retry on,
// it is sent once more on a fresh connection, as a client retries an idempotent GET.
// Every loop is bounded: the phase ends at its deadline, and every request has a timeout.
import { connect } from 'node:net';
import type { Socket } from 'node:net';

/** What one load phase sends, and how. */
export interface LoadSpec {
  readonly host: string;
  readonly port: number;
  readonly mode: 'closed' | 'paced';
  readonly connections: number;
  /** Requests per second over all connections (paced only). */
  readonly rate?: number;
  /** Requests before this are sent but not recorded. */
  readonly warmupMs: number;
  /** Length of the recorded part of the phase. */
  readonly durationMs: number;
  /** Retry a failed request once on a new connection. */
  readonly retry: boolean;
}

/** What one load phase measured; latencies in microseconds. */
export interface LoadResult {
  /** Requests answered 200 inside the recorded window. */
  readonly completed: number;
  readonly rps: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** Paced: how late the timer fired after the scheduled send time, median. */
  readonly sendLagP50Us: number;
  /** Requests that failed at their first attempt (whole phase, warm-up included). */
  readonly errors: number;
  /** Requests that failed again after one retry (retry on only). */
  readonly failedAfterRetry: number;
  readonly connectionsOpened: number;
  /** The first error seen, for the report. */
  readonly firstError: string;
}

const REQUEST_TIMEOUT_MS = 2_000;
const CONNECT_TIMEOUT_MS = 2_000;

/** One keep-alive connection that carries one request at a time. */
class Connection {
  private socket: Socket | undefined;
  private buffer = '';
  private waiting:
    { resolve: () => void; reject: (error: Error) => void; timer: NodeJS.Timeout } | undefined;

  constructor(
    private readonly spec: LoadSpec,
    private readonly opened: () => void,
  ) {}

  /** Sends one GET and resolves when its whole response has arrived with status 200. */
  async request(): Promise<void> {
    const socket = this.socket ?? (await this.open());
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.waiting = { resolve, reject, timer };
      socket.write(`GET /kb HTTP/1.1\r\nHost: server.bench\r\n\r\n`);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private open(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: this.spec.host, port: this.spec.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`));
      }, CONNECT_TIMEOUT_MS);
      socket.setEncoding('latin1');
      socket.once('connect', () => {
        clearTimeout(timer);
        this.opened();
        this.socket = socket;
        this.buffer = '';
        resolve(socket);
      });
      socket.on('data', (chunk: string) => this.onData(chunk));
      socket.on('error', (error) => {
        clearTimeout(timer);
        if (this.socket === socket) this.fail(error);
        else reject(error);
      });
      socket.on('close', () => {
        if (this.socket === socket) this.fail(new Error('connection closed by the server'));
      });
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    const end = responseEnd(this.buffer);
    if (end === undefined) return;
    const status = this.buffer.slice(9, 12);
    // nginx ends a keep-alive connection after keepalive_requests, saying so in the response.
    const closing = /\r\nconnection:\s*close\r\n/i.test(this.buffer.slice(0, end));
    this.buffer = this.buffer.slice(end);
    if (closing) this.close();
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting === undefined) return;
    clearTimeout(waiting.timer);
    if (status === '200') waiting.resolve();
    else waiting.reject(new Error(`status ${status}`));
  }

  private fail(error: Error): void {
    this.close();
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting === undefined) return;
    clearTimeout(waiting.timer);
    waiting.reject(error);
  }
}

/** The length of the first complete response in buffer, or undefined while it is partial. */
function responseEnd(buffer: string): number | undefined {
  const head = buffer.indexOf('\r\n\r\n');
  if (head < 0) return undefined;
  const headers = buffer.slice(0, head).toLowerCase();
  const length = /\r\ncontent-length:\s*(\d+)/.exec(headers);
  if (length !== null) {
    const end = head + 4 + Number(length[1]);
    return buffer.length >= end ? end : undefined;
  }
  if (headers.includes('\r\ntransfer-encoding: chunked')) {
    const last = buffer.indexOf('\r\n0\r\n\r\n', head);
    return last < 0 ? undefined : last + 7;
  }
  return head + 4;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
}

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
/** Never early: a timer rounds to whole milliseconds, so the wait rounds up. */
const sleepUntil = (us: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.ceil((us - nowUs()) / 1000))));

/** Runs one phase and resolves to its figures. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const start = nowUs();
  const recordFrom = start + spec.warmupMs * 1000;
  const end = recordFrom + spec.durationMs * 1000;
  const latencies: number[] = [];
  const lags: number[] = [];
  let opened = 0;
  let errors = 0;
  let failedAfterRetry = 0;
  let firstError = '';
  const onOpen = (): void => {
    opened += 1;
  };

  /** Sends one request (retrying once when asked); true when it was answered 200. */
  const attempt = async (connection: Connection): Promise<boolean> => {
    try {
      await connection.request();
      return true;
    } catch (error) {
      errors += 1;
      if (firstError === '') firstError = (error as Error).message;
      connection.close();
      if (!spec.retry) return false;
      try {
        await connection.request();
        return true;
      } catch {
        failedAfterRetry += 1;
        connection.close();
        return false;
      }
    }
  };

  const closedLoop = async (connection: Connection): Promise<void> => {
    while (nowUs() < end) {
      const sent = nowUs();
      const ok = await attempt(connection);
      const done = nowUs();
      if (ok && sent >= recordFrom && done <= end) latencies.push(done - sent);
    }
  };

  const pacedLoop = async (connection: Connection, index: number): Promise<void> => {
    const rate = spec.rate ?? 1000;
    const intervalUs = (1e6 * spec.connections) / rate;
    let due = start + (index * 1e6) / rate;
    while (due < end) {
      await sleepUntil(due);
      const sent = nowUs();
      const ok = await attempt(connection);
      const done = nowUs();
      if (ok && due >= recordFrom) {
        latencies.push(done - due);
        lags.push(sent - due);
      }
      due += intervalUs;
    }
  };

  const connections = Array.from({ length: spec.connections }, () => new Connection(spec, onOpen));
  await Promise.all(
    connections.map((connection, index) =>
      spec.mode === 'closed' ? closedLoop(connection) : pacedLoop(connection, index),
    ),
  );
  for (const connection of connections) connection.close();
  latencies.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  return {
    completed: latencies.length,
    rps: latencies.length / (spec.durationMs / 1000),
    p50Us: percentile(latencies, 50),
    p90Us: percentile(latencies, 90),
    p99Us: percentile(latencies, 99),
    maxUs: latencies.at(-1) ?? Number.NaN,
    sendLagP50Us: percentile(lags, 50),
    errors,
    failedAfterRetry,
    connectionsOpened: opened,
    firstError,
  };
}
