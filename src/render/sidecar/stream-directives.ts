// Stage 2, stream half: the TCP entry points of the sidecar. 8900 classifies every redirected
// outbound connection by its original destination (HTTP → the outbound HTTP server, meshed TCP
// → the mTLS client server 8906, other mesh TCP → its upstream in plaintext, anything else →
// passed through); 8901 classifies inbound connections by original port and, in permissive
// mode, by whether they speak TLS, then hands them with a PROXY protocol header (carrying the
// client's address) to the TLS terminators (8888 HTTP, 8904 TCP), the plaintext servers (8890,
// 8907) or the deny sink (8905). The destination crosses each internal hop as a loopback
// address (names.ts). The TCP traffic servers (8904, 8907, 8906, and 8900 for plaintext mesh
// TCP and egress) count every connection apart from HTTP requests (mesh_stats) and, with an
// access log, log it (access-log.ts). Mechanical: every decision is in the model. Pure.
import {
  EGRESS_SERVICE,
  SIDECAR_EGRESS_REFUSED_PORT,
  SIDECAR_INBOUND_HTTP2_PLAIN_PORT,
  SIDECAR_INBOUND_HTTP2_PORT,
  SIDECAR_INBOUND_HTTP_PLAIN_PORT,
  SIDECAR_INBOUND_HTTP_PORT,
  SIDECAR_INBOUND_REDIRECT_PORT,
  SIDECAR_INBOUND_TCP_DENY_PORT,
  SIDECAR_INBOUND_TCP_PLAIN_PORT,
  SIDECAR_INBOUND_TCP_PORT,
  SIDECAR_OUTBOUND_HTTP2_PORT,
  SIDECAR_OUTBOUND_HTTP_PORT,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
  SIDECAR_OUTBOUND_TCP_PORT,
  SIDECAR_STATS_TCP_ZONE,
  SIDECAR_STATS_ZONE_SIZE,
} from '../../manifests/constants';
import { printArg } from '../agent-nginx';
import type { Directive } from '../agent-nginx';
import { buildTcpLogFormats, tcpAccessLog } from './access-log';
import type { SidecarContext } from './context';
import type { InboundPort, OutboundHttp, OutboundTcp, SidecarModel, UpstreamModel } from './model';
import { regexLiteral } from './names';
import {
  MEMBERS_OUTBOUND_TABLE,
  MEMBERS_PLAIN_SERVICE_TABLE,
  membersPath,
  slotServers,
} from './upstream-slots';

export const d = (name: string, ...args: string[]): Directive => ({ name, args });
export const block = (
  name: string,
  args: readonly string[],
  children: readonly Directive[],
): Directive => ({ name, args, children });

/** A map block: entries in the given order (keys quoted as needed), default first. */
export function map(
  source: string,
  variable: string,
  fallback: string | undefined,
  entries: readonly (readonly [string, string])[],
): Directive {
  return block(
    'map',
    [source, variable],
    [
      ...(fallback === undefined ? [] : [d('default', fallback)]),
      ...entries.map(([key, value]) => d(printArg(key), value)),
    ],
  );
}

export const DENY_SINK = `127.0.0.1:${SIDECAR_INBOUND_TCP_DENY_PORT}`;
/** Where strict mTLS sends traffic for destinations outside the mesh (http-directives.ts). */
export const EGRESS_REFUSED = `127.0.0.1:${SIDECAR_EGRESS_REFUSED_PORT}`;

/**
 * How long a proxied connection may stay idle, on every hop: WebSockets, gRPC streams and
 * long-lived TCP (database pools, brokers) live as long as their peers keep them, up to this.
 * nginx's defaults (10 min for TCP, 60 s between reads for HTTP) cut them; one hour is what
 * Istio's sidecars allow too.
 */
export const IDLE_TIMEOUT = '1h';
/**
 * How long an inbound connection under permissive mTLS waits for the client's first byte, which
 * tells TLS from plaintext, before it goes on as plaintext. A TLS client (another sidecar) sends
 * its ClientHello at once; a client that sends nothing is waiting for a server that speaks first.
 */
const PEEK_CLIENT_TIMEOUT = '5s';

/** Internal listeners accept only the sidecar's own hops. */
export const LOOPBACK_ONLY: readonly Directive[] = [d('allow', '127.0.0.0/8'), d('deny', 'all')];

export function listens(port: number, ipv6: boolean): Directive[] {
  return ipv6
    ? [d('listen', String(port)), d('listen', `[::]:${port}`, 'ipv6only=on')]
    : [d('listen', String(port))];
}

/**
 * The series the agent counts TCP connections under (src/runtime/agent/metrics): nginx's
 * ngx_mesh module adds each connection, when it closes, to the series of this key in the
 * SIDECAR_STATS_TCP_ZONE zone, with its duration and the bytes to and from the client of the
 * server (the peer inbound, the app outbound); the agent takes the series over loopback. The
 * status is nginx's, except that a connection handed to the deny sink is 403.
 */
const TCP_STATS_KEYS = {
  inbound:
    '{"proto":"tcp","dir":"in","status":$mesh_tcp_status,' +
    '"peer":"$proxy_protocol_addr","peer_id":"$mesh_peer_spiffe_id"}',
  outbound:
    '{"proto":"tcp","dir":"out","status":$mesh_tcp_status,' +
    '"upstream":"$upstream_addr","service":"$mesh_outbound_tcp_service"}',
} as const;

/**
 * Counting for a TCP traffic server; with a condition, only the connections for which that
 * variable is neither empty nor "0".
 */
function tcpStats(direction: keyof typeof TCP_STATS_KEYS, condition?: string): Directive {
  return d(
    'mesh_stats',
    SIDECAR_STATS_TCP_ZONE,
    TCP_STATS_KEYS[direction],
    ...(condition === undefined ? [] : [`if=${condition}`]),
  );
}

/**
 * The zone, and the status the keys report: nginx's $status, but 403 for a connection the server
 * handed to the deny sink (access control refused it, or it named no known port), which nginx
 * itself reports as a successful session.
 */
function tcpStatsDirectives(): Directive[] {
  return [
    d('mesh_stats_zone', SIDECAR_STATS_TCP_ZONE, SIDECAR_STATS_ZONE_SIZE),
    map('$upstream_addr', '$mesh_tcp_status', '$status', [[DENY_SINK, '403']]),
  ];
}

/** Certificate directives of a TLS server; the SVID path is a variable so rotation needs no reload. */
export function serverTls(context: SidecarContext): Directive[] {
  return [
    d('ssl_certificate', '$mesh_svid'),
    d('ssl_certificate_key', '$mesh_svid'),
    d('ssl_client_certificate', context.bundleFile),
    d('ssl_verify_client', 'on'),
    d('ssl_verify_depth', '3'),
  ];
}

/**
 * Client-side mTLS of a proxy to a meshed upstream, verifying the identity's DNS SAN: of nginx's
 * proxy module (stream and http), or of its gRPC module (module 'grpc').
 */
export function clientTls(
  context: SidecarContext,
  nameVariable: string,
  module: 'proxy' | 'grpc' = 'proxy',
): Directive[] {
  return [
    d(`${module}_ssl_certificate`, '$mesh_svid'),
    d(`${module}_ssl_certificate_key`, '$mesh_svid'),
    d(`${module}_ssl_trusted_certificate`, context.bundleFile),
    d(`${module}_ssl_verify`, 'on'),
    d(`${module}_ssl_verify_depth`, '3'),
    d(`${module}_ssl_name`, nameVariable),
  ];
}

/**
 * How long a connect to one endpoint may take before the request or connection moves on to the
 * next. nginx's default, 60 s, outlasts every client's patience: when a pod is replaced, its
 * address is gone before every sidecar has heard that its endpoint was removed, and a connect to
 * it waits for an answer that never comes. Between pods a connect takes milliseconds.
 */
export const OUTBOUND_CONNECT_TIMEOUT = '2s';

/**
 * An upstream block. Only a CircuitBreaker takes servers out after failures: every other server
 * has max_fails=0, since nginx's default (one failure takes a server out for 10 s) turned one
 * failed request into ten seconds of 502 "no live upstreams" for every caller of that endpoint.
 * A failed request still moves on to the next server (proxy_next_upstream).
 */
export function upstreamBlock(upstream: UpstreamModel): Directive {
  const lines =
    upstream.slots === undefined ? upstream.servers : slotServers(upstream, upstream.slots);
  const servers = lines.map((server) =>
    d(
      'server',
      server.address,
      `max_fails=${server.maxFails ?? 0}`,
      ...(server.failTimeoutSeconds === undefined
        ? []
        : [`fail_timeout=${server.failTimeoutSeconds}s`]),
      ...(server.backup ? ['backup'] : []),
      ...(server.down === true ? ['down'] : []),
    ),
  );
  return block(
    'upstream',
    [upstream.name],
    [
      ...(upstream.method.length === 0
        ? []
        : [d(upstream.method[0] ?? '', ...upstream.method.slice(1))]),
      // After the method, which it wraps; before keepalive, which wraps it.
      ...(upstream.slots === undefined ? [] : [d('mesh_upstream_slots')]),
      ...servers,
      // After the method and servers: nginx requires the balancing method before keepalive.
      ...(upstream.keepalive === undefined ? [] : [d('keepalive', String(upstream.keepalive))]),
      ...(upstream.keepaliveTimeout === undefined
        ? []
        : [d('keepalive_timeout', upstream.keepaliveTimeout)]),
    ],
  );
}

/** Where the outbound redirect server sends an HTTP destination: its loopback address. */
export function outboundHttpHop(http: OutboundHttp): string {
  return `${http.loopback}:${http.http2 ? SIDECAR_OUTBOUND_HTTP2_PORT : SIDECAR_OUTBOUND_HTTP_PORT}`;
}

/** Where it sends a TCP destination: the outbound TCP server (mTLS), or the upstream itself. */
export function outboundTcpHop(tcp: OutboundTcp): string {
  return tcp.tlsName !== undefined ? `${tcp.loopback}:${SIDECAR_OUTBOUND_TCP_PORT}` : tcp.upstream;
}

function outboundDirectives(model: SidecarModel, context: SidecarContext): Directive[] {
  const entries: [string, string][] = [];
  for (const http of model.outboundHttp)
    for (const destination of http.destinations) entries.push([destination, outboundHttpHop(http)]);
  for (const tcp of model.outboundTcp)
    for (const destination of tcp.destinations) entries.push([destination, outboundTcpHop(tcp)]);
  const tls = model.outboundTcp.filter((tcp) => tcp.tlsName !== undefined);
  // A destination the mesh does not know leaves directly, or goes to the server that refuses it.
  const outside = model.egress === 'refused' ? EGRESS_REFUSED : '$mesh_original_dst';
  const out: Directive[] = [
    ...model.tcpUpstreams.map(upstreamBlock),
    // A Service's endpoints, addressed directly, are in the members file (upstream-slots.ts).
    d(
      'mesh_members_map',
      MEMBERS_OUTBOUND_TABLE,
      '$mesh_original_dst',
      '$mesh_outbound_endpoint',
      outside,
    ),
    map('$mesh_original_dst', '$mesh_outbound', '$mesh_outbound_endpoint', entries),
    ...outboundServiceMaps(model),
    block(
      'server',
      [],
      [
        ...listens(SIDECAR_OUTBOUND_REDIRECT_PORT, context.ipv6),
        // Only plaintext mesh TCP and traffic leaving the mesh are counted and logged here: HTTP
        // by the http servers, mTLS by the outbound TCP server.
        tcpStats('outbound', '$mesh_outbound_passed_service'),
        ...tcpAccessLog(context, 'outbound', '$mesh_outbound_passed_service'),
        // A connection bound for one of this nginx's own servers goes to it in the same worker,
        // without a loopback connection; anything else is proxied.
        d('mesh_handoff', '$mesh_outbound'),
        d('proxy_pass', '$mesh_outbound'),
      ],
    ),
  ];
  if (tls.length === 0) return out;
  return [
    ...out,
    map(
      '$server_addr',
      '$mesh_outbound_tcp',
      DENY_SINK,
      tls.map((tcp) => [tcp.loopback, tcp.upstream]),
    ),
    map(
      '$server_addr',
      '$mesh_outbound_tcp_name',
      undefined,
      tls.map((tcp) => [tcp.loopback, tcp.tlsName ?? '']),
    ),
    block(
      'server',
      [],
      [
        d('listen', String(SIDECAR_OUTBOUND_TCP_PORT)),
        ...LOOPBACK_ONLY,
        tcpStats('outbound'),
        ...tcpAccessLog(context, 'outbound'),
        d('proxy_pass', '$mesh_outbound_tcp'),
        // A connect to a replaced pod's address moves on to the next endpoint after this.
        d('proxy_connect_timeout', OUTBOUND_CONNECT_TIMEOUT),
        d('proxy_ssl', 'on'),
        ...clientTls(context, '$mesh_outbound_tcp_name'),
      ],
    ),
  ];
}

/**
 * $mesh_outbound_tcp_service, the Service an outbound TCP connection addressed, for its series
 * and the access log: on the outbound TCP server (mTLS) by the loopback address the redirect
 * server chose, on the redirect server itself (plaintext) by the original destination, and
 * EGRESS_SERVICE for a connection that leaves the mesh; empty for a hop to another of the
 * sidecar's servers, which counts and logs it itself.
 */
function outboundServiceMaps(model: SidecarModel): Directive[] {
  const plain: [string, string][] = [];
  for (const tcp of model.outboundTcp.filter((candidate) => candidate.tlsName === undefined))
    for (const destination of tcp.destinations) plain.push([destination, tcp.service]);
  return [
    d(
      'mesh_members_map',
      MEMBERS_PLAIN_SERVICE_TABLE,
      '$mesh_original_dst',
      '$mesh_outbound_endpoint_service',
    ),
    map(
      '$server_addr',
      '$mesh_outbound_tls_service',
      '',
      model.outboundTcp
        .filter((tcp) => tcp.tlsName !== undefined)
        .map((tcp) => [tcp.loopback, tcp.service]),
    ),
    map(
      '$mesh_original_dst',
      '$mesh_outbound_plain_service',
      '$mesh_outbound_endpoint_service',
      plain,
    ),
    // Neither a hop nor egress: a connection made to the redirect server itself, which has no
    // original destination (the supervisor's probe that nginx listens).
    map(
      '$mesh_outbound_plain_service|$mesh_outbound',
      '$mesh_outbound_passed_service',
      EGRESS_SERVICE,
      [
        ['|', ''],
        ['~^([^|]+)\\|', '$1'],
        ['~^\\|127\\.', ''],
      ],
    ),
    map('$server_port', '$mesh_outbound_tcp_service', '$mesh_outbound_passed_service', [
      [String(SIDECAR_OUTBOUND_TCP_PORT), '$mesh_outbound_tls_service'],
    ]),
  ];
}

/** TCP admitted under deny: "<port address> <peer id>" → the app, anything else → the sink. */
function tcpAccessMap(model: SidecarModel): Directive {
  const tcpPorts = model.inboundPorts.filter((port) => port.kind === 'tcp');
  const entries: [string, string][] = [];
  for (const rule of model.accessRules.filter((candidate) => candidate.tcp)) {
    if (rule.port === undefined) {
      entries.push([
        `~^127\\.1\\.\\d+\\.\\d+ ${regexLiteral(rule.identity)}$`,
        '$mesh_inbound_app',
      ]);
      continue;
    }
    const port = tcpPorts.find((candidate) => candidate.port === rule.port);
    if (port !== undefined)
      entries.push([`${port.loopback} ${rule.identity}`, '$mesh_inbound_app']);
  }
  // Exact keys win over regular expressions in nginx maps whatever the order.
  const unique = [...new Map(entries.map((entry) => [entry[0], entry])).values()];
  return map('$server_addr $mesh_peer_spiffe_id', '$mesh_inbound_tcp', DENY_SINK, unique);
}

/** The server that terminates an inbound port's mTLS, by what the port carries. */
const INBOUND_TLS_PORTS: Readonly<Record<InboundPort['kind'], number>> = {
  http: SIDECAR_INBOUND_HTTP_PORT,
  http2: SIDECAR_INBOUND_HTTP2_PORT,
  tcp: SIDECAR_INBOUND_TCP_PORT,
};
/** The server that takes an inbound port's plaintext connections. */
const INBOUND_PLAIN_PORTS: Readonly<Record<InboundPort['kind'], number>> = {
  http: SIDECAR_INBOUND_HTTP_PLAIN_PORT,
  http2: SIDECAR_INBOUND_HTTP2_PLAIN_PORT,
  tcp: SIDECAR_INBOUND_TCP_PLAIN_PORT,
};

function inboundDirectives(model: SidecarModel, context: SidecarContext): Directive[] {
  const deny = model.accessControl === 'deny';
  const tlsEntries = model.inboundPorts.map((port): [string, string] => [
    String(port.port),
    `${port.loopback}:${INBOUND_TLS_PORTS[port.kind]}`,
  ]);
  const plainEntries = model.inboundPorts.map((port): [string, string] => [
    String(port.port),
    `${port.loopback}:${INBOUND_PLAIN_PORTS[port.kind]}`,
  ]);
  const tcpPorts = model.inboundPorts.filter((port) => port.kind === 'tcp');
  const out: Directive[] = [];
  const mode = model.mtlsMode;
  if (mode !== 'off')
    out.push(map('$mesh_original_dst_port', '$mesh_inbound_tls', DENY_SINK, tlsEntries));
  if (mode !== 'strict')
    out.push(map('$mesh_original_dst_port', '$mesh_inbound_plain', DENY_SINK, plainEntries));
  if (mode === 'permissive')
    out.push(
      // The client's first byte, looked at without reading it (mesh_peek_client).
      map('$mesh_client_tls', '$mesh_inbound', '$mesh_inbound_tls', [['', '$mesh_inbound_plain']]),
    );
  const chosen =
    mode === 'permissive'
      ? '$mesh_inbound'
      : mode === 'strict'
        ? '$mesh_inbound_tls'
        : '$mesh_inbound_plain';
  out.push(
    map(
      '$server_addr',
      '$mesh_inbound_app',
      DENY_SINK,
      tcpPorts.map((port) => [port.loopback, `127.0.0.1:${port.port}`]),
    ),
    block(
      'server',
      [],
      [
        ...listens(SIDECAR_INBOUND_REDIRECT_PORT, context.ipv6),
        // Under permissive, TLS or plaintext is told by the client's first byte, which stays
        // unread; a server that speaks first gets its plaintext connection after the wait.
        ...(mode === 'permissive' ? [d('mesh_peek_client', PEEK_CLIENT_TIMEOUT)] : []),
        // The connection goes to the chosen server in the worker, without a loopback hop.
        d('mesh_handoff', chosen),
        d('proxy_protocol', 'on'),
        d('proxy_pass', chosen),
      ],
    ),
  );
  if (mode !== 'off') {
    if (deny) out.push(tcpAccessMap(model));
    out.push(
      block(
        'server',
        [],
        [
          d('listen', String(SIDECAR_INBOUND_TCP_PORT), 'ssl', 'proxy_protocol'),
          ...LOOPBACK_ONLY,
          tcpStats('inbound'),
          ...tcpAccessLog(context, 'inbound'),
          ...serverTls(context),
          d('proxy_pass', deny ? '$mesh_inbound_tcp' : '$mesh_inbound_app'),
        ],
      ),
    );
  }
  // Under deny a plaintext connection has no identity to admit: it still passes the plaintext
  // server, on its way to the sink, so that its refusal is counted with its peer.
  if (mode !== 'strict') {
    out.push(
      block(
        'server',
        [],
        [
          d('listen', String(SIDECAR_INBOUND_TCP_PLAIN_PORT), 'proxy_protocol'),
          ...LOOPBACK_ONLY,
          tcpStats('inbound'),
          ...tcpAccessLog(context, 'inbound'),
          d('proxy_pass', deny ? DENY_SINK : '$mesh_inbound_app'),
        ],
      ),
    );
  }
  out.push(block('server', [], [d('listen', DENY_SINK), d('return', '')]));
  return out;
}

/**
 * The stream block's children. proxy_half_close keeps a connection open after one side shuts
 * down its writing half (a client that sends its request and then FIN still gets the answer);
 * without it nginx ends the whole session at the first FIN, on every internal hop.
 */
export function buildStreamDirectives(model: SidecarModel, context: SidecarContext): Directive[] {
  return [
    d('proxy_half_close', 'on'),
    d('proxy_timeout', IDLE_TIMEOUT),
    d('map_hash_max_size', '262144'),
    d('map_hash_bucket_size', '128'),
    d('variables_hash_max_size', '2048'),
    d('mesh_members', membersPath(context.runDir)),
    map('$server_port', '$mesh_svid', context.svidFile, []),
    ...tcpStatsDirectives(),
    ...buildTcpLogFormats(model.logFormat, context),
    ...outboundDirectives(model, context),
    ...inboundDirectives(model, context),
  ];
}
