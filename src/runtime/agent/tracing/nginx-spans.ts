// The spans the sidecar's nginx records (images/sidecar/ngx_mesh/ngx_mesh_trace.c), as the agent
// takes them: a header line, then one line per span,
//   zone <name> spans <n> dropped <n> bytes <used>/<capacity>
//   <trace> <span> <parent|-> <client|server> <start µs> <duration µs> <status> <method> <path> <attrs>
// where attrs is the JSON object the renderer wrote (src/render/sidecar/http-directives.ts) with
// nginx's variables in it. Turned into OpenTelemetry spans with the HTTP, RPC and network
// attributes of its semantic conventions. Pure: text in, spans out; the caller counts what it
// cannot read.
import type { MeshSpan, SpanAttribute } from './span';

/** One span line as nginx wrote it. */
export interface NginxSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly kind: 'client' | 'server';
  readonly startUs: bigint;
  readonly durationUs: bigint;
  /** The response status; 0 when none was sent. */
  readonly status: number;
  readonly method: string;
  /** The request target before "?", decoded. */
  readonly path: string;
  /** The renderer's attributes object; {} when nginx's text was not a JSON object. */
  readonly attrs: Readonly<Record<string, unknown>>;
}

/** A take of one zone: its spans, the spans nginx dropped (zone full), lines not readable. */
export interface NginxSpanTake {
  readonly zone: string;
  readonly spans: readonly NginxSpan[];
  readonly dropped: number;
  readonly unreadable: number;
}

const HEADER = /^zone (\S+) spans (\d+) dropped (\d+) bytes (\d+)\/(\d+)$/;
const LINE =
  /^([0-9a-f]{32}) ([0-9a-f]{16}) ([0-9a-f]{16}|-) (client|server) (\d{1,19}) (\d{1,19}) (\d{1,3}) (\S+) (\S+) ?(.*)$/;

function decodePath(text: string): string {
  if (text === '-') return '';
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function parseAttrs(text: string): Record<string, unknown> {
  if (text === '') return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** Parses one take (a POST to mesh_trace_dump); a text without the header reads as unreadable. */
export function parseSpanTake(text: string): NginxSpanTake {
  const lines = text.split('\n').filter((line) => line !== '');
  const header = HEADER.exec(lines[0] ?? '');
  if (header === null) return { zone: '', spans: [], dropped: 0, unreadable: lines.length || 1 };
  const spans: NginxSpan[] = [];
  let unreadable = 0;
  for (const line of lines.slice(1)) {
    const match = LINE.exec(line);
    if (match === null) {
      unreadable += 1;
      continue;
    }
    const group = (index: number): string => match[index] ?? '';
    spans.push({
      traceId: group(1),
      spanId: group(2),
      ...(group(3) === '-' ? {} : { parentSpanId: group(3) }),
      kind: group(4) === 'client' ? 'client' : 'server',
      startUs: BigInt(group(5)),
      durationUs: BigInt(group(6)),
      status: Number(group(7)),
      method: group(8),
      path: decodePath(group(9)),
      attrs: parseAttrs(group(10)),
    });
  }
  return { zone: header[1] ?? '', spans, dropped: Number(header[3]), unreadable };
}

/** gRPC status codes a server reports as its own failure (OpenTelemetry's RPC conventions). */
const GRPC_SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** The last address nginx tried ($upstream_addr lists every try: "a, b : c"). */
function lastUpstream(value: unknown): string {
  const tries = text(value)
    .split(/[,:]\s+|\s+:\s+/)
    .map((each) => each.trim())
    .filter((each) => each !== '' && each !== '-');
  return tries.at(-1) ?? '';
}

function splitHostPort(address: string): { host: string; port?: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  return match === null ? { host: address } : { host: match[1] ?? '', port: Number(match[2]) };
}

/** The gRPC method of a call ("/pkg.Service/Method"), or undefined when it is not a gRPC call. */
interface RpcCall {
  readonly service?: string;
  readonly method?: string;
  /** grpc-status; undefined when the response carried none. */
  readonly status?: number;
}

function rpcCall(span: NginxSpan): RpcCall | undefined {
  const status = text(span.attrs.grpc);
  if (status === '' && text(span.attrs.proto) !== 'grpc') return undefined;
  const path = /^\/([^/]+)\/([^/]+)$/.exec(span.path);
  const code = Number(status);
  return {
    ...(path === null ? {} : { service: path[1], method: path[2] }),
    ...(status !== '' && Number.isInteger(code) ? { status: code } : {}),
  };
}

function rpcAttributes(rpc: RpcCall): Record<string, SpanAttribute> {
  return {
    'rpc.system': 'grpc',
    ...(rpc.service === undefined ? {} : { 'rpc.service': rpc.service }),
    ...(rpc.method === undefined ? {} : { 'rpc.method': rpc.method }),
    ...(rpc.status === undefined ? {} : { 'rpc.grpc.status_code': rpc.status }),
  };
}

/** Who the span talked to: the Service and endpoint (client), the caller (server). */
function peerAttributes(span: NginxSpan): Record<string, SpanAttribute> {
  const attributes: Record<string, SpanAttribute> = {};
  if (span.kind === 'client') {
    // "<namespace>/<name>" of the Service addressed: its DNS name, as the app called it
    const [namespace, name] = text(span.attrs.service).split('/');
    if (namespace && name) attributes['server.address'] = `${name}.${namespace}.svc`;
    const upstream = splitHostPort(lastUpstream(span.attrs.upstream));
    if (upstream.host !== '') attributes['network.peer.address'] = upstream.host;
    if (upstream.port !== undefined) attributes['network.peer.port'] = upstream.port;
  } else {
    const peer = text(span.attrs.peer);
    if (peer !== '') attributes['client.address'] = peer;
  }
  const peerId = text(span.attrs.peer_id);
  if (peerId !== '') attributes['nsm.peer.spiffe_id'] = peerId;
  return attributes;
}

/**
 * The span's failure, or undefined: no response, a 5xx, a 4xx seen by the client, a gRPC status
 * other than OK seen by the client or one of the server's own failures.
 */
function failure(span: NginxSpan, rpc: RpcCall | undefined): string | undefined {
  const grpc = rpc?.status ?? 0;
  if (grpc !== 0 && (span.kind === 'client' || GRPC_SERVER_ERRORS.has(grpc))) {
    return `grpc-status ${grpc}`;
  }
  if (span.status === 0) return 'no response';
  const failed = span.status >= 500 || (span.kind === 'client' && span.status >= 400);
  return failed ? `HTTP ${span.status}` : undefined;
}

/** The span in OpenTelemetry's terms. */
export function toMeshSpan(span: NginxSpan): MeshSpan {
  const rpc = rpcCall(span);
  const attributes: Record<string, SpanAttribute> = {
    'http.request.method': span.method,
    'url.path': span.path,
    ...(span.status > 0 ? { 'http.response.status_code': span.status } : {}),
    ...(rpc === undefined ? {} : rpcAttributes(rpc)),
    ...peerAttributes(span),
  };
  const failed = failure(span, rpc);
  const start = span.startUs * 1000n;
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    ...(span.parentSpanId === undefined ? {} : { parentSpanId: span.parentSpanId }),
    kind: span.kind,
    name:
      rpc?.service !== undefined && rpc.method !== undefined
        ? `${rpc.service}/${rpc.method}`
        : span.method,
    startUnixNano: start,
    endUnixNano: start + span.durationUs * 1000n,
    status: failed === undefined ? 'unset' : 'error',
    ...(failed === undefined ? {} : { statusMessage: failed }),
    attributes,
  };
}
