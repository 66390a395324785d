// What the sidecar's nginx counts for the agent (images/sidecar/ngx_mesh/ngx_mesh_stats.c): a
// take of its counters is one line per zone, then one per series,
//   zone <name> series <n> lost <n> buckets <b1>,...,<b14>
//   <count> <sum_ms> <sent> <received> <c1>,...,<c15> <key>
// and each key is the JSON object the renderer wrote (src/render/sidecar/*-directives.ts) with
// nginx's variables in it: direction, status and peer, and "proto":"tcp" for TCP connections.
// Pure: text in, series and keys out; the caller counts what it cannot read.

/** A series of requests (or TCP connections) since the last take. */
export interface StatsSeries {
  readonly count: number;
  readonly sumMs: number;
  /** Bytes to the client of the server (TCP; 0 for HTTP). */
  readonly sent: number;
  /** Bytes from that client (TCP; 0 for HTTP). */
  readonly received: number;
  /** Observations per bucket, not cumulative: one per bound, then the longer ones. */
  readonly buckets: readonly number[];
  readonly key: string;
}

/** One zone of a take. */
export interface StatsZone {
  readonly name: string;
  /** Requests nginx could not count since the last take: its zone was full. */
  readonly lost: number;
  /** The histogram's upper bounds, ms, ascending. */
  readonly boundsMs: readonly number[];
  readonly series: readonly StatsSeries[];
}

/** A take: its zones, and how many of its lines were not readable. */
export interface StatsTake {
  readonly zones: readonly StatsZone[];
  readonly unreadable: number;
}

const COUNT = /^\d+$/;

/** The words as numbers, or undefined when one is missing or not a count. */
function counts(words: readonly (string | undefined)[]): number[] | undefined {
  const values: number[] = [];
  for (const word of words) {
    if (word === undefined || !COUNT.test(word)) return undefined;
    values.push(Number(word));
  }
  return values;
}

/** A comma-separated list of counts, or undefined. */
const countList = (word: string | undefined): number[] | undefined =>
  word === undefined ? undefined : counts(word.split(','));

/** The zone header "zone <name> series <n> lost <n> buckets <b,...>", or undefined. */
function zoneHeader(line: string): Omit<StatsZone, 'series'> | undefined {
  const words = line.split(' ');
  if (words.length !== 8 || words[0] !== 'zone' || words[2] !== 'series') return undefined;
  if (words[4] !== 'lost' || words[6] !== 'buckets') return undefined;
  const [lost] = counts([words[5]]) ?? [];
  const boundsMs = countList(words[7]);
  if (lost === undefined || boundsMs === undefined) return undefined;
  return { name: words[1] ?? '', lost, boundsMs };
}

/** A series line of a zone with buckets + 1 counts, or undefined. */
function seriesLine(line: string, bounds: number): StatsSeries | undefined {
  const words = line.split(' ');
  if (words.length < 6) return undefined;
  const numbers = counts(words.slice(0, 4));
  const buckets = countList(words[4]);
  if (numbers === undefined || buckets?.length !== bounds + 1) return undefined;
  const [count = 0, sumMs = 0, sent = 0, received = 0] = numbers;
  return { count, sumMs, sent, received, buckets, key: words.slice(5).join(' ') };
}

/** Reads a take; a line that is neither a zone header nor a series of one is unreadable. */
export function parseStatsTake(text: string): StatsTake {
  const zones: { header: Omit<StatsZone, 'series'>; series: StatsSeries[] }[] = [];
  let unreadable = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const header = line.startsWith('zone ') ? zoneHeader(line) : undefined;
    if (header !== undefined) {
      zones.push({ header, series: [] });
      continue;
    }
    const zone = zones.at(-1);
    const series = zone === undefined ? undefined : seriesLine(line, zone.header.boundsMs.length);
    if (zone === undefined || series === undefined) unreadable += 1;
    else zone.series.push(series);
  }
  return { zones: zones.map(({ header, series }) => ({ ...header, series })), unreadable };
}

/** What a series key says of the requests it counts: who the peer was, and how it ended. */
export type StatsKey =
  | {
      readonly direction: 'inbound';
      readonly tcp: boolean;
      readonly status: number;
      /** The gRPC status of an HTTP/2 response ('' when it carried none or was not HTTP/2). */
      readonly grpcStatus: string;
      /** The peer's address from the PROXY protocol header, or '' when nginx had none. */
      readonly peer: string;
      /** The peer's SPIFFE ID from its client certificate, or '' in plaintext. */
      readonly peerId: string;
    }
  | {
      readonly direction: 'outbound';
      readonly tcp: boolean;
      readonly status: number;
      /** The gRPC status of an HTTP/2 response ('' when it carried none or was not HTTP/2). */
      readonly grpcStatus: string;
      /** The address of the endpoint that answered last, or '' when no endpoint was tried. */
      readonly upstream: string;
      /** "<namespace>/<name>" of the Service addressed, or '' for none. */
      readonly service: string;
    };

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

function fieldsOf(key: string): Record<string, unknown> | undefined {
  try {
    const json: unknown = JSON.parse(key);
    return typeof json === 'object' && json !== null && !Array.isArray(json)
      ? (json as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** What every key says: protocol, status, gRPC status; undefined when one is malformed. */
function commonOf(
  fields: Record<string, unknown>,
): { tcp: boolean; status: number; grpcStatus: string } | undefined {
  const { status, proto } = fields;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599)
    return undefined;
  if (proto !== undefined && proto !== 'tcp') return undefined;
  const grpcStatus = fields.grpc === undefined ? '' : text(fields.grpc);
  if (grpcStatus === undefined) return undefined;
  return { tcp: proto === 'tcp', status, grpcStatus };
}

/** The key's meaning; undefined when it is not one the renderer writes. */
export function parseStatsKey(key: string): StatsKey | undefined {
  const fields = fieldsOf(key);
  const common = fields === undefined ? undefined : commonOf(fields);
  if (fields === undefined || common === undefined) return undefined;
  if (fields.dir === 'in') {
    const peer = text(fields.peer);
    const peerId = text(fields.peer_id);
    if (peer === undefined || peerId === undefined) return undefined;
    return { direction: 'inbound', ...common, peer, peerId };
  }
  if (fields.dir === 'out') {
    const upstream = text(fields.upstream);
    const service = text(fields.service);
    if (upstream === undefined || service === undefined) return undefined;
    return { direction: 'outbound', ...common, upstream, service };
  }
  return undefined;
}
