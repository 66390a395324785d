// The access-log records nginx sends the agent (src/render/sidecar/http-directives.ts prints their
// format, and stream-directives.ts the TCP one): one syslog line per request or TCP connection,
// "<pri>Mmm dd hh:mm:ss <tag>: {json}" (RFC 3164 without the host name); a TCP record carries
// "proto":"tcp" and its bytes. Pure: a line in, a record or undefined out; the caller counts what
// it drops.

/** The bytes of one TCP connection, each way, as nginx counted them. */
export interface ConnectionBytes {
  /** To the client of the sidecar's server ($bytes_sent). */
  readonly sent: number;
  /** From that client ($bytes_received). */
  readonly received: number;
}

/** A request (or TCP connection) the pod served. */
export interface InboundRecord {
  readonly direction: 'inbound';
  /** Set for a TCP connection, absent for an HTTP request. */
  readonly tcp?: ConnectionBytes;
  readonly status: number;
  readonly durationMs: number;
  /** The peer's address from the PROXY protocol header, or '' when nginx had none. */
  readonly peer: string;
  /** The peer's SPIFFE ID from its client certificate, or '' in plaintext. */
  readonly peerId: string;
}

/** A request (or TCP connection) the pod's app sent. */
export interface OutboundRecord {
  readonly direction: 'outbound';
  /** Set for a TCP connection, absent for an HTTP request. */
  readonly tcp?: ConnectionBytes;
  readonly status: number;
  readonly durationMs: number;
  /** The address of the endpoint that answered last, or '' when no endpoint was tried. */
  readonly upstream: string;
  /** "<namespace>/<name>" of the Service addressed, or '' for none. */
  readonly service: string;
}

export type AccessRecord = InboundRecord | OutboundRecord;

const text = (value: unknown): string | undefined =>
  typeof value === 'string' ? (value === '-' ? '' : value) : undefined;

/**
 * The host of the last address in nginx's $upstream_addr, which lists every server tried
 * ("a:80, b:80") and every internal redirect ("a:80 : b:80"); IPv6 hosts come in brackets.
 */
export function lastUpstreamHost(upstreamAddr: string): string {
  const separator = Math.max(upstreamAddr.lastIndexOf(', '), upstreamAddr.lastIndexOf(' : '));
  const last = separator < 0 ? upstreamAddr : upstreamAddr.slice(separator + 2).trim();
  if (last.startsWith('[')) {
    const end = last.indexOf(']');
    return end < 0 ? '' : last.slice(1, end);
  }
  const colon = last.lastIndexOf(':');
  return colon < 0 ? last : last.slice(0, colon);
}

/** The JSON object after "<tag>: " in a syslog line, or undefined. */
function payloadOf(line: string, tag: string): Record<string, unknown> | undefined {
  if (!line.startsWith('<')) return undefined;
  const marker = ` ${tag}: `;
  const start = line.indexOf(marker);
  if (start < 0) return undefined;
  try {
    const json: unknown = JSON.parse(line.slice(start + marker.length));
    return typeof json === 'object' && json !== null
      ? (json as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const byteCount = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;

/**
 * The protocol part of a record: {} for HTTP, { tcp } for a TCP connection with both byte counts;
 * undefined for an unknown protocol or missing counts.
 */
function protocolOf(
  fields: Record<string, unknown>,
): { readonly tcp?: ConnectionBytes } | undefined {
  if (fields.proto === undefined) return {};
  if (fields.proto !== 'tcp') return undefined;
  const sent = byteCount(fields.sent);
  const received = byteCount(fields.received);
  if (sent === undefined || received === undefined) return undefined;
  return { tcp: { sent, received } };
}

function directionOf(
  fields: Record<string, unknown>,
  status: number,
  durationMs: number,
): AccessRecord | undefined {
  const protocol = protocolOf(fields);
  if (protocol === undefined) return undefined;
  if (fields.dir === 'in') {
    const peer = text(fields.peer);
    const peerId = text(fields.peer_id);
    if (peer === undefined || peerId === undefined) return undefined;
    return { direction: 'inbound', ...protocol, status, durationMs, peer, peerId };
  }
  if (fields.dir === 'out') {
    const upstream = text(fields.upstream);
    const service = text(fields.service);
    if (upstream === undefined || service === undefined) return undefined;
    return { direction: 'outbound', ...protocol, status, durationMs, upstream, service };
  }
  return undefined;
}

/** The record in one syslog line with this tag; undefined when the line is not one. */
export function parseAccessLogLine(line: string, tag: string): AccessRecord | undefined {
  const fields = payloadOf(line, tag);
  if (fields === undefined) return undefined;
  const { status, time } = fields;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599)
    return undefined;
  if (typeof time !== 'number' || !(time >= 0)) return undefined;
  return directionOf(fields, status, Math.round(time * 1000));
}
