// The sidecar's access log: one line per HTTP request and per TCP connection a traffic server
// proxied, written to context.accessLog (the FIFO the agent copies to the container's stdout) in
// the format the mesh configuration names (spec.nginxLogFormat). default is nginx's combined
// format for HTTP and the stream module's documented example for TCP, each followed by the mesh's
// own fields as name="value"; json is one object per line with the same names. Every field is
// listed once, in HTTP_LOG_FIELDS or TCP_LOG_FIELDS, and both formats print every field listed
// (docs/access-log.md describes them). Without context.accessLog nothing is logged and no format
// is printed. The probe, stats and internal hops never log: each server that logs says so. Pure.
import { EGRESS_SERVICE } from '../../manifests/constants';
import type { NginxLogFormat } from '../../manifests/mesh-config/deploy-flags';
import type { Directive } from '../agent-nginx';
import type { SidecarContext } from './context';

/**
 * The kind of server a line comes from: inbound (the pod served the request or connection),
 * outbound (the pod's app sent it), egress (refused: it was for a destination outside the mesh,
 * under strict mTLS). Some fields' values depend on it.
 */
export type LogSite = 'inbound' | 'outbound' | 'egress';

/**
 * The sites of TCP: TCP that leaves the mesh is outbound, with the service egress (under strict
 * mTLS, the refusing server of the http block logs it instead).
 */
export type TcpLogSite = Exclude<LogSite, 'egress'>;

/** One field of the access log, as both formats print it. */
export interface LogField {
  /** Its key in json, and its name in default's name="value" pairs. */
  readonly name: string;
  /**
   * nginx's text for it (variables and literals): one for every site, or one per site (egress
   * takes outbound's unless it has its own). Empty: the field does not apply there.
   */
  readonly value:
    string | { readonly inbound: string; readonly outbound: string; readonly egress?: string };
  /** nginx always prints a number for it: bare in json and in default's pairs. */
  readonly number?: true;
  /** json's text where it differs from value. */
  readonly json?: string;
  /** Printed in its place by the fixed part of the default format, not as a pair. */
  readonly fixed?: true;
}

/**
 * Who opened the connection: inbound, the peer's address from the PROXY protocol header the
 * inbound redirect adds; outbound, the connection's source (for HTTP and mTLS TCP, the sidecar's
 * own hop from the outbound redirect, 127.0.0.1).
 */
const CLIENT = { inbound: '$proxy_protocol_addr', outbound: '$remote_addr' } as const;

/**
 * Per HTTP request, in the order json prints them. A field added here is printed by both formats,
 * on every server that logs.
 */
export const HTTP_LOG_FIELDS: readonly LogField[] = [
  { name: 'time', value: '$time_iso8601', fixed: true },
  { name: 'direction', value: { inbound: 'inbound', outbound: 'outbound' } },
  { name: 'client', value: CLIENT, fixed: true },
  { name: 'peer_id', value: { inbound: '$mesh_peer_spiffe_id', outbound: '' } },
  { name: 'method', value: '$request_method', fixed: true },
  { name: 'uri', value: '$request_uri', fixed: true },
  { name: 'protocol', value: '$server_protocol', fixed: true },
  { name: 'host', value: '$host' },
  // $status is "000" for a request that ended before it had a status, which is no JSON number.
  { name: 'status', value: '$status', json: '$mesh_log_status', number: true, fixed: true },
  { name: 'bytes_sent', value: '$body_bytes_sent', number: true, fixed: true },
  { name: 'referer', value: '$http_referer', fixed: true },
  { name: 'user_agent', value: '$http_user_agent', fixed: true },
  { name: 'duration', value: '$request_time', number: true },
  {
    name: 'service',
    value: { inbound: '', outbound: '$mesh_outbound_service', egress: EGRESS_SERVICE },
  },
  { name: 'upstream', value: '$upstream_addr' },
  { name: 'upstream_status', value: '$upstream_status' },
  { name: 'upstream_duration', value: '$upstream_response_time' },
];

/**
 * The request's trace id while the mesh traces (docs/tracing.md): the trace it joined or started,
 * sampled or not, so that a line leads to its trace. Empty when the mesh does not trace, and on
 * the egress server, which refuses without tracing.
 */
const TRACE_ID: LogField = {
  name: 'trace_id',
  value: { inbound: '$mesh_trace_id', outbound: '$mesh_trace_id', egress: '' },
};
const NO_TRACE_ID: LogField = { name: 'trace_id', value: '' };

/** Per TCP connection, in the order json prints them; as HTTP_LOG_FIELDS. */
export const TCP_LOG_FIELDS: readonly LogField[] = [
  { name: 'time', value: '$time_iso8601', fixed: true },
  { name: 'direction', value: { inbound: 'inbound', outbound: 'outbound' } },
  { name: 'client', value: CLIENT, fixed: true },
  { name: 'peer_id', value: { inbound: '$mesh_peer_spiffe_id', outbound: '' } },
  { name: 'protocol', value: '$protocol', fixed: true },
  { name: 'status', value: '$mesh_tcp_status', number: true, fixed: true },
  { name: 'bytes_sent', value: '$bytes_sent', number: true, fixed: true },
  { name: 'bytes_received', value: '$bytes_received', number: true, fixed: true },
  { name: 'duration', value: '$session_time', number: true, fixed: true },
  { name: 'service', value: { inbound: '', outbound: '$mesh_outbound_tcp_service' } },
  { name: 'upstream', value: '$upstream_addr' },
];

const clientAt = (site: LogSite): string => CLIENT[site === 'inbound' ? 'inbound' : 'outbound'];

/** default's fixed part for HTTP: nginx's combined format, with the site's client. */
const combined = (site: LogSite): string =>
  `${clientAt(site)} - $remote_user [$time_local] "$request" $status $body_bytes_sent ` +
  '"$http_referer" "$http_user_agent"';

/** default's fixed part for TCP: the stream log module's documented example, with our status. */
const streamBasic = (site: LogSite): string =>
  `${clientAt(site)} [$time_local] $protocol $mesh_tcp_status $bytes_sent $bytes_received ` +
  '$session_time';

function valueAt(field: LogField, site: LogSite): string {
  const value = field.value;
  if (typeof value === 'string') return value;
  return site === 'egress' ? (value.egress ?? value.outbound) : value[site];
}

/**
 * The format's text: json's object, or default's fixed part and then a pair per other field
 * (nginx prints an empty variable as "-" there; a field that does not apply is "-" too).
 */
function formatText(
  fields: readonly LogField[],
  site: LogSite,
  format: NginxLogFormat,
  fixed: (site: LogSite) => string,
): string {
  if (format === 'json') {
    const members = fields.map((field) => {
      const value = field.json ?? valueAt(field, site);
      return `"${field.name}":${field.number === true ? value : `"${value}"`}`;
    });
    return `{${members.join(',')}}`;
  }
  const pairs = fields
    .filter((field) => field.fixed !== true)
    .map((field) => {
      const value = valueAt(field, site);
      return field.number === true ? `${field.name}=${value}` : `${field.name}="${value || '-'}"`;
    });
  return [fixed(site), ...pairs].join(' ');
}

const formatName = (protocol: 'http' | 'tcp', site: LogSite): string => `mesh_${protocol}_${site}`;

/**
 * Each worker gathers lines and writes them at most 4 KiB at a time, and at least every second:
 * the agent wakes up for one write of some fifteen lines instead of one per request, which cut
 * its CPU per request about fivefold (npm run bench -- access-log). No more than 4 KiB: a pipe
 * never interleaves writes up to PIPE_BUF (4096 bytes) with another writer's, so the lines of
 * old and new workers stay whole during a reload. The http and stream servers share the
 * buffer (nginx keeps one per file, and both modules' buffers are the same structure). A worker
 * writes what it holds when it exits; one killed outright loses it.
 */
const BUFFERING = ['buffer=4k', 'flush=1s'] as const;

function logFormat(
  protocol: 'http' | 'tcp',
  site: LogSite,
  format: NginxLogFormat,
  fields: readonly LogField[],
): Directive {
  const text = formatText(fields, site, format, protocol === 'http' ? combined : streamBasic);
  return {
    name: 'log_format',
    args: [formatName(protocol, site), ...(format === 'json' ? ['escape=json'] : []), text],
  };
}

/**
 * The http block's formats, one per site that logs (egress only where it is refused), and the
 * status json prints; none without an access log.
 */
export function buildHttpLogFormats(
  format: NginxLogFormat,
  egressRefused: boolean,
  tracing: boolean,
  context: SidecarContext,
): Directive[] {
  if (context.accessLog === undefined) return [];
  const sites: LogSite[] = egressRefused
    ? ['inbound', 'outbound', 'egress']
    : ['inbound', 'outbound'];
  const fields = [...HTTP_LOG_FIELDS, tracing ? TRACE_ID : NO_TRACE_ID];
  return [
    ...sites.map((site) => logFormat('http', site, format, fields)),
    ...(format === 'json'
      ? [
          {
            name: 'map',
            args: ['$status', '$mesh_log_status'],
            children: [
              { name: 'default', args: ['$status'] },
              { name: '~^0+([0-9]+)$', args: ['$1'] },
            ],
          },
        ]
      : []),
  ];
}

/** The stream block's formats; none without an access log. */
export function buildTcpLogFormats(format: NginxLogFormat, context: SidecarContext): Directive[] {
  if (context.accessLog === undefined) return [];
  return (['inbound', 'outbound'] as const).map((site) =>
    logFormat('tcp', site, format, TCP_LOG_FIELDS),
  );
}

/** A traffic server's access_log: nothing without an access log (the http block's is off). */
export function httpAccessLog(context: SidecarContext, site: LogSite): Directive[] {
  if (context.accessLog === undefined) return [];
  return [
    { name: 'access_log', args: [context.accessLog, formatName('http', site), ...BUFFERING] },
  ];
}

/**
 * A TCP traffic server's access_log (stream logs nothing unless told); with a condition, only the
 * connections for which that variable is neither empty nor "0".
 */
export function tcpAccessLog(
  context: SidecarContext,
  site: TcpLogSite,
  condition?: string,
): Directive[] {
  if (context.accessLog === undefined) return [];
  return [
    {
      name: 'access_log',
      args: [
        context.accessLog,
        formatName('tcp', site),
        ...BUFFERING,
        ...(condition === undefined ? [] : [`if=${condition}`]),
      ],
    },
  ];
}
