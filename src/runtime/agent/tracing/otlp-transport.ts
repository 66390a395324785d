// How an encoded ExportTraceServiceRequest reaches a collector: OTLP/gRPC (an HTTP/2 stream in
// cleartext, gRPC's length-prefixed framing, the answer in grpc-status) or OTLP/HTTP (a POST of
// the protobuf bytes to /v1/traces). Node's http2 and http only; one request per send, never a
// rejection: every failure comes back as an outcome that says whether sending again may help.
import { connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { request } from 'node:http';
import type { IncomingHttpHeaders as HttpHeaders } from 'node:http';
import { describeError } from '../../../errors';

/** Where a collector listens for OTLP, and in which of its two protocols. */
export interface OtlpEndpoint {
  readonly host: string;
  readonly port: number;
  readonly protocol: 'grpc' | 'http';
}

/** What became of one request. */
export type ExportOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** Whether the same request may succeed later: the collector or network was busy or away. */
      readonly retryable: boolean;
      readonly error: string;
      /** How long the collector asked us to wait (HTTP's Retry-After), when it did. */
      readonly retryAfterMs?: number;
    };

/** One endpoint's connection, reused from send to send. */
export interface OtlpTransport {
  /** Sends one request body; resolves once answered, failed or aborted, never rejects. */
  send(body: Uint8Array, signal: AbortSignal): Promise<ExportOutcome>;
  /** Lets a request in flight finish, then lets go of the connection. */
  close(): void;
}

/** The gRPC method of OTLP's trace service. */
const GRPC_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
/** OTLP/HTTP's path for traces. */
const HTTP_TRACES_PATH = '/v1/traces';

/**
 * gRPC status codes worth a retry, as OTLP's specification lists them: CANCELLED,
 * DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS.
 */
const RETRYABLE_GRPC_CODES: ReadonlySet<number> = new Set([1, 4, 8, 10, 11, 14, 15]);
/** HTTP statuses worth a retry (OTLP/HTTP), and from a proxy in front of a gRPC collector. */
const RETRYABLE_HTTP_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

const failure = (retryable: boolean, error: string, retryAfterMs?: number): ExportOutcome => ({
  ok: false,
  retryable,
  error,
  ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
});

/** "host:port", with an IPv6 address in brackets. */
function authority(endpoint: OtlpEndpoint): string {
  return endpoint.host.includes(':')
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`;
}

/** Why a request ended early: the signal's reason when it was aborted, else the error. */
function abortedOrError(signal: AbortSignal, error: unknown): string {
  return describeError(signal.aborted ? signal.reason : error);
}

/** A gRPC message: a zero compression flag, the length as four bytes big-endian, the bytes. */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Headers or trailers of an HTTP/2 response (':status' is a number). */
export type ResponseHeaders = Readonly<
  Record<string, string | readonly string[] | number | undefined>
>;

const header = (headers: ResponseHeaders | undefined, name: string): string | undefined => {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  return typeof value === 'object' ? value[0] : String(value);
};

/** grpc-message is percent-encoded; one that does not decode is shown as sent. */
function grpcMessage(text: string | undefined): string {
  if (text === undefined || text === '') return '';
  try {
    return `: ${decodeURIComponent(text)}`;
  } catch {
    return `: ${text}`;
  }
}

/**
 * The outcome of a gRPC call from its response headers and trailers: grpc-status from the
 * trailers, or from the headers of a trailers-only response; an HTTP status other than 200
 * (a proxy's answer) retryable as OTLP/HTTP's are.
 */
export function grpcOutcome(
  headers: ResponseHeaders | undefined,
  trailers: ResponseHeaders | undefined,
): ExportOutcome {
  if (headers === undefined) return failure(true, 'stream closed before a response');
  const status = Number(headers[':status']);
  const code = header(trailers, 'grpc-status') ?? header(headers, 'grpc-status');
  if (code === undefined) {
    if (status !== 200) return failure(RETRYABLE_HTTP_STATUSES.has(status), `HTTP ${status}`);
    return failure(true, 'response without grpc-status');
  }
  if (code === '0') return { ok: true };
  const message = grpcMessage(header(trailers, 'grpc-message') ?? header(headers, 'grpc-message'));
  return failure(RETRYABLE_GRPC_CODES.has(Number(code)), `grpc-status ${code}${message}`);
}

/** OTLP/gRPC over one HTTP/2 connection in cleartext, made again after it fails or closes. */
class GrpcTransport implements OtlpTransport {
  private session: ClientHttp2Session | undefined;

  constructor(private readonly endpoint: OtlpEndpoint) {}

  private openSession(): ClientHttp2Session {
    const current = this.session;
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const session = connect(`http://${authority(this.endpoint)}`);
    // Its streams fail with the session's error as their cause; the session closes after.
    session.on('error', () => undefined);
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    // The exporter runs in the background: its connection never keeps the process alive.
    session.unref();
    this.session = session;
    return session;
  }

  send(body: Uint8Array, signal: AbortSignal): Promise<ExportOutcome> {
    return new Promise((resolve) => {
      let session: ClientHttp2Session;
      try {
        session = this.openSession();
      } catch (error) {
        resolve(failure(true, describeError(error)));
        return;
      }
      let headers: ResponseHeaders | undefined;
      let trailers: ResponseHeaders | undefined;
      const stream = session.request(
        {
          ':method': 'POST',
          ':path': GRPC_EXPORT_PATH,
          'content-type': 'application/grpc',
          te: 'trailers',
        },
        { signal },
      );
      stream.on('response', (received) => {
        headers = received;
      });
      stream.on('trailers', (received: ResponseHeaders) => {
        trailers = received;
      });
      // The answer's message (ExportTraceServiceResponse) says nothing the status does not.
      stream.resume();
      stream.on('error', (error) => resolve(failure(true, abortedOrError(signal, error))));
      stream.on('close', () => resolve(grpcOutcome(headers, trailers)));
      stream.end(grpcFrame(body));
    });
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}

/** Retry-After in seconds as milliseconds; an HTTP date, or nothing, is undefined. */
function retryAfterMs(headers: HttpHeaders): number | undefined {
  const value = headers['retry-after']?.trim();
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value) * 1000;
}

/** The outcome of an OTLP/HTTP answer: 2xx success; 429, 502, 503 and 504 retryable. */
export function httpOutcome(status: number, headers: HttpHeaders): ExportOutcome {
  if (status >= 200 && status < 300) return { ok: true };
  const retryable = RETRYABLE_HTTP_STATUSES.has(status);
  return failure(retryable, `HTTP ${status}`, retryable ? retryAfterMs(headers) : undefined);
}

/**
 * OTLP/HTTP with protobuf bodies, a connection per request: at most one batch a flush interval
 * goes out, and no idle connection is left to keep or close.
 */
class HttpTransport implements OtlpTransport {
  constructor(private readonly endpoint: OtlpEndpoint) {}

  send(body: Uint8Array, signal: AbortSignal): Promise<ExportOutcome> {
    return new Promise((resolve) => {
      const req = request(
        {
          host: this.endpoint.host,
          port: this.endpoint.port,
          method: 'POST',
          path: HTTP_TRACES_PATH,
          agent: false,
          signal,
          headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length },
        },
        (res) => {
          // The answer's body (a partial success, or a Status) says nothing the status does not.
          res.resume();
          res.on('end', () => resolve(httpOutcome(res.statusCode ?? 0, res.headers)));
          res.on('error', (error) => resolve(failure(true, abortedOrError(signal, error))));
        },
      );
      req.on('error', (error) => resolve(failure(true, abortedOrError(signal, error))));
      req.end(body);
    });
  }

  close(): void {}
}

/** The transport for an endpoint's protocol; it connects on its first send. */
export function createOtlpTransport(endpoint: OtlpEndpoint): OtlpTransport {
  switch (endpoint.protocol) {
    case 'grpc':
      return new GrpcTransport(endpoint);
    case 'http':
      return new HttpTransport(endpoint);
  }
}
