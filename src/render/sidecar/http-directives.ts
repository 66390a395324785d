// Stage 2, http half: the outbound HTTP server (8889) routes on the loopback address the
// outbound redirect chose to a Service's upstream or TrafficSplit, over mTLS to meshed
// endpoints; the inbound HTTP server (8888 mTLS, 8890 plaintext, both behind PROXY protocol)
// applies access control (403), rate limits (503) and forwards to the app on loopback. HTTP
// matches become one 0/1 variable each, combined by maps. Mechanical: every decision is in the
// model. Pure.
import {
  DEFAULT_EGRESS_ALLOWED_ANNOTATION,
  EGRESS_SERVICE,
  SIDECAR_HEALTH_HTTP_PORT,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_INBOUND_HTTP2_PLAIN_PORT,
  SIDECAR_INBOUND_HTTP2_PORT,
  SIDECAR_INBOUND_HTTP_PLAIN_PORT,
  SIDECAR_INBOUND_HTTP_PORT,
  SIDECAR_OUTBOUND_HTTP2_PORT,
  SIDECAR_OUTBOUND_HTTP_PORT,
  SIDECAR_STATS_DIR,
  SIDECAR_STATS_HTTP_ZONE,
  SIDECAR_STATS_PATH,
  SIDECAR_STATS_SOCKET,
  SIDECAR_MEMBERS_PATH,
  SIDECAR_STATS_TCP_ZONE,
  SIDECAR_STATS_ZONE_SIZE,
  SIDECAR_TRACE_PATH,
  SIDECAR_TRACE_ZONE,
  SIDECAR_TRACE_ZONE_SIZE,
} from '../../manifests/constants';
import { buildHealthServers } from '../agent-nginx';
import type { Directive } from '../agent-nginx';
import { buildHttpLogFormats, httpAccessLog } from './access-log';
import type { SidecarContext } from './context';
import type {
  AccessRule,
  HttpTarget,
  MatchModel,
  RateLimitModel,
  SidecarModel,
  UpstreamModel,
} from './model';
import { INBOUND_UPSTREAM_PREFIX, freshUpstreamName, regexLiteral } from './names';
import {
  DOLLAR,
  grpcRouteDirectives,
  routeDirectives,
  routedUpstreamMap,
} from './route-directives';
import type { RouteDirectives, RuleProxy } from './route-directives';
import type { RouteTableModel } from './routes';
import { membersPath } from './upstream-slots';
import {
  EGRESS_REFUSED,
  IDLE_TIMEOUT,
  LOOPBACK_ONLY,
  OUTBOUND_CONNECT_TIMEOUT,
  block,
  clientTls,
  d,
  map,
  serverTls,
  upstreamBlock,
} from './stream-directives';

/**
 * The series the agent counts HTTP requests under (src/runtime/agent/metrics): nginx's ngx_mesh
 * module adds each request, when it completes, to the series of this key in the
 * SIDECAR_STATS_HTTP_ZONE zone with its duration; the agent takes the series over its socket.
 * Inbound names the peer by the PROXY protocol address the redirect passed on and by the SPIFFE
 * ID of its client certificate (empty in plaintext); outbound names the Service addressed and the
 * endpoint that answered last ($upstream_addr lists every try).
 */
const HTTP_STATS_KEYS = {
  inbound:
    '{"dir":"in","status":$status,"peer":"$proxy_protocol_addr","peer_id":"$mesh_peer_spiffe_id"}',
  outbound:
    '{"dir":"out","status":$status,"upstream":"$upstream_addr","service":"$mesh_outbound_service"}',
  // HTTP/2 servers add the gRPC status ($mesh_grpc_status): a gRPC call that fails answers
  // HTTP 200 and says so in grpc-status.
  inbound2:
    '{"dir":"in","status":$status,"grpc":"$mesh_grpc_status","peer":"$proxy_protocol_addr","peer_id":"$mesh_peer_spiffe_id"}',
  outbound2:
    '{"dir":"out","status":$status,"grpc":"$mesh_grpc_status","upstream":"$upstream_addr","service":"$mesh_outbound_service"}',
  egress: `{"dir":"out","status":$status,"upstream":"","service":"${EGRESS_SERVICE}"}`,
} as const;

/**
 * What a traced server records with each sampled request's span (ngx_mesh's mesh_trace_span), as
 * the agent reads it (src/runtime/agent/tracing/nginx-spans.ts): the Service addressed and the
 * endpoint that answered (client spans), the caller's address and identity (server spans), and
 * the gRPC status on the HTTP/2 servers.
 */
const SPAN_ATTRIBUTES = {
  inbound: ['server', '{"peer":"$proxy_protocol_addr","peer_id":"$mesh_peer_spiffe_id"}'],
  outbound: ['client', '{"service":"$mesh_outbound_service","upstream":"$upstream_addr"}'],
  inbound2: [
    'server',
    '{"grpc":"$mesh_grpc_status","peer":"$proxy_protocol_addr","peer_id":"$mesh_peer_spiffe_id"}',
  ],
  outbound2: [
    'client',
    '{"grpc":"$mesh_grpc_status","service":"$mesh_outbound_service","upstream":"$upstream_addr"}',
  ],
} as const;

/**
 * Counting for a traffic server and, when the mesh traces, its spans: each request joins the
 * trace of its traceparent (or starts one, sampled at the mesh's ratio) and is recorded when
 * sampled.
 */
export function httpStats(kind: keyof typeof HTTP_STATS_KEYS, model?: SidecarModel): Directive[] {
  const stats = d('mesh_stats', SIDECAR_STATS_HTTP_ZONE, HTTP_STATS_KEYS[kind]);
  if (model?.tracing === undefined || kind === 'egress') return [stats];
  const [spanKind, attributes] = SPAN_ATTRIBUTES[kind];
  return [stats, d('mesh_trace_span', SIDECAR_TRACE_ZONE, spanKind, attributes)];
}

/**
 * The traceparent each hop sends on names its own span (the trace's id and sampled flag kept), so
 * the next hop's span, or the app's, is its child. Without tracing the header passes untouched.
 */
function traceHeader(model: SidecarModel, module: 'proxy' | 'grpc'): Directive[] {
  return model.tracing === undefined
    ? []
    : [d(`${module}_set_header`, 'traceparent', '$mesh_traceparent')];
}

/**
 * The gRPC status of a response: from the trailers, or from the headers of a trailers-only
 * response (a call that fails at once); empty when the response carried none.
 */
const grpcStatus: Directive = map(
  '$upstream_trailer_grpc_status',
  '$mesh_grpc_status',
  '$upstream_trailer_grpc_status',
  [['', '$upstream_http_grpc_status']],
);

/**
 * The server the agent takes the counters from: both zones, HTTP's and TCP's, on a unix socket in
 * a directory only the sidecar's uid enters (SIDECAR_STATS_DIR), never on the loopback the app
 * containers share, since a take empties the counters.
 */
function statsServer(runDir: string, tracing: boolean): Directive {
  return block(
    'server',
    [],
    [
      d('listen', `unix:${runDir}/${SIDECAR_STATS_DIR}/${SIDECAR_STATS_SOCKET}`),
      block(
        'location',
        ['=', SIDECAR_STATS_PATH],
        [d('mesh_stats_dump', SIDECAR_STATS_HTTP_ZONE, SIDECAR_STATS_TCP_ZONE)],
      ),
      ...(tracing
        ? [block('location', ['=', SIDECAR_TRACE_PATH], [d('mesh_trace_dump', SIDECAR_TRACE_ZONE)])]
        : []),
      block('location', ['=', SIDECAR_MEMBERS_PATH], [d('mesh_members_update')]),
    ],
  );
}

const matchVariable = (id: number): string => `$mesh_match_${id}`;

/**
 * Variables one map may combine: nginx refuses a token longer than its 4 KiB parse buffer, and a
 * policy may name hundreds of matches.
 */
const ANY_OF_MAX = 64;

/**
 * "$a$b…" → 1 when any is 1; more than ANY_OF_MAX variables are combined in a tree of maps
 * ("<variable>_<n>" for the inner ones), so the source of each stays short.
 */
function anyOf(variables: readonly string[], variable: string): Directive[] {
  if (variables.length <= ANY_OF_MAX)
    return [map(variables.join(''), variable, '0', [['~1', '1']])];
  const inner: Directive[] = [];
  const parts: string[] = [];
  for (let start = 0; start < variables.length; start += ANY_OF_MAX) {
    const part = `${variable}_${parts.length + 1}`;
    inner.push(...anyOf(variables.slice(start, start + ANY_OF_MAX), part));
    parts.push(part);
  }
  return [...inner, ...anyOf(parts, variable)];
}

function matchDirectives(match: MatchModel): Directive[] {
  const prefix = `$mesh_match_${match.id}`;
  const parts: Directive[] = [];
  if (match.methods.length > 0)
    parts.push(
      map(
        '$request_method',
        `${prefix}_method`,
        '0',
        match.methods.map((method) => [method, '1']),
      ),
    );
  if (match.pathRegex !== undefined)
    parts.push(map('$uri', `${prefix}_path`, '0', [[`~^(?:${match.pathRegex})$`, '1']]));
  for (const [name, regex] of match.headers)
    parts.push(map(`$http_${name}`, `${prefix}_header_${name}`, '0', [[`~${regex}`, '1']]));
  const variables = parts.map((part) => part.args[1] ?? '');
  const all =
    variables.length === 0
      ? map('$request_method', prefix, '1', [])
      : map(variables.join(''), prefix, '0', [['1'.repeat(variables.length), '1']]);
  return [...parts, all];
}

/** The Service's own upstream of an outbound request, when routes may pick another. */
const SERVICE_UPSTREAM = '$mesh_outbound_service_upstream';

function targetValue(target: HttpTarget): string {
  switch (target.kind) {
    case 'upstream':
      return target.upstream;
    case 'split':
      return `$${target.split}`;
    case 'none':
      return '';
  }
}

/**
 * What a pod serving more than its app's outbound calls (a gateway's listeners) adds to the
 * outbound HTTP half: its route tables pick $mesh_outbound_upstream beside the sidecar's own, so
 * every map after it (URL, TLS name, fresh twin) serves its requests too.
 */
export interface OutboundExtension {
  /** Tables whose action ids differ from the sidecar's ("r", "g"). */
  readonly routes: readonly RouteTableModel[];
  /** $mesh_outbound_service where the server's address names no Service port: a variable. */
  readonly service: string;
  /** Appended to the outbound half of the http block: the extension's maps and servers. */
  readonly directives: readonly Directive[];
}

/**
 * How a rule's location proxies from an outbound server: the sidecar's own, or (with `headers`
 * set after the base's) a gateway listener's.
 */
export function outboundRuleProxy(
  model: SidecarModel,
  context: SidecarContext,
  headers: readonly Directive[] = [],
): RuleProxy {
  return {
    base: (host) => [...outboundProxy(model, context, host), ...headers],
    mirrorTls: (tlsName) => clientTls(context, tlsName),
    upgradeDetour,
    upgradeStatus: UPGRADE_STATUS,
    tunnelTimeouts,
  };
}

function outboundDirectives(
  model: SidecarModel,
  context: SidecarContext,
  extension?: OutboundExtension,
): Directive[] {
  const splits = model.splits.flatMap((split) => {
    const choice = block(
      'split_clients',
      ['$request_id', `$${split.name}_choice`],
      split.backends.map((backend) =>
        d(backend.percent === '*' ? '*' : `${backend.percent}%`, backend.upstream),
      ),
    );
    if (split.matchIds.length === 0)
      return [choice, map(`$${split.name}_choice`, `$${split.name}`, `$${split.name}_choice`, [])];
    return [
      choice,
      ...anyOf(split.matchIds.map(matchVariable), `$${split.name}_matched`),
      map(`$${split.name}_matched`, `$${split.name}`, targetValue(split.root), [
        ['1', `$${split.name}_choice`],
      ]),
    ];
  });
  const kept = model.httpUpstreams.filter(hasFreshTwin);
  const http2 = model.outboundHttp.some((http) => http.http2);
  const routes = routeDirectives(model.routes, outboundRuleProxy(model, context));
  const grpcRoutes = grpcRouteDirectives(model.grpcRoutes, {
    base: (host) => grpcProxy(model, context, host),
  });
  const extraRoutes = extension?.routes ?? [];
  const routed =
    model.routes !== undefined || model.grpcRoutes !== undefined || extraRoutes.length > 0;
  return [
    ...model.httpUpstreams.map(upstreamBlock),
    ...kept.map((upstream) =>
      upstreamBlock({ ...upstream, name: freshUpstreamName(upstream.name), keepalive: undefined }),
    ),
    ...splits,
    ...(routed ? [DOLLAR] : []),
    ...routes.http,
    ...grpcRoutes.http,
    map(
      '$server_addr',
      routed ? SERVICE_UPSTREAM : '$mesh_outbound_upstream',
      '',
      model.outboundHttp.map((http) => [http.loopback, targetValue(http.target)]),
    ),
    ...(routed
      ? [routedUpstreamMap([model.routes, model.grpcRoutes, ...extraRoutes], SERVICE_UPSTREAM)]
      : []),
    map(
      '$server_addr',
      '$mesh_outbound_service',
      extension?.service ?? '',
      model.outboundHttp.map((http) => [http.loopback, http.service]),
    ),
    map(
      '$mesh_outbound_upstream',
      '$mesh_outbound_url',
      '',
      model.httpUpstreams.map((upstream) => [upstream.name, upstreamUrl(upstream)]),
    ),
    map(
      '$mesh_outbound_upstream',
      '$mesh_outbound_fresh_url',
      '$mesh_outbound_url',
      kept.map((upstream) => [
        upstream.name,
        `${upstream.tlsName === undefined ? 'http' : 'https'}://${freshUpstreamName(upstream.name)}`,
      ]),
    ),
    retryableMethods,
    map(
      '$mesh_outbound_upstream',
      '$mesh_outbound_ssl_name',
      '',
      model.httpUpstreams.flatMap((upstream) =>
        upstream.tlsName === undefined ? [] : [[upstream.name, upstream.tlsName] as const],
      ),
    ),
    // A request without a Host header (HTTP/1.0) would reach the next nginx with an empty one,
    // which it refuses with 400: such a request names the upstream instead.
    map('$http_host', '$mesh_outbound_host', '$http_host', [['', '$proxy_host']]),
    block(
      'server',
      [],
      [
        d('listen', String(SIDECAR_OUTBOUND_HTTP_PORT)),
        ...LOOPBACK_ONLY,
        // A reload closes an idle keep-alive connection from the app only after answering one
        // more request on it, with "Connection: close" (ngx_mesh_drain.c), so a request the app
        // sent as nginx reloads is answered. Only here, where a request is routed: inbound, the
        // one more request would pass the old access rules, and the peer's nginx retries anyway.
        d('mesh_keepalive_drain', 'on'),
        ...httpStats('outbound', model),
        ...httpAccessLog(context, 'outbound'),
        ...ruleVariable(routes, routed),
        block(
          'location',
          ['/'],
          [
            block('if', ['($mesh_outbound_url', '=', '', ')'], [d('return', '503')]),
            upgradeDetour,
            d('proxy_pass', '$mesh_outbound_url'),
            ...outboundProxy(model, context),
            d('error_page', '502', '=', `@${FRESH_RETRY_LOCATION}`),
            d('error_page', UPGRADE_STATUS, '=', `@${OUTBOUND_UPGRADE_LOCATION}`),
          ],
        ),
        block(
          'location',
          [`@${FRESH_RETRY_LOCATION}`],
          [
            block('if', ['($mesh_outbound_retryable', '=', '0', ')'], [d('return', '502')]),
            d('proxy_pass', '$mesh_outbound_fresh_url'),
            ...outboundProxy(model, context),
          ],
        ),
        block(
          'location',
          [`@${OUTBOUND_UPGRADE_LOCATION}`],
          [
            d('proxy_pass', '$mesh_outbound_url'),
            ...outboundProxy(model, context),
            ...tunnelTimeouts,
          ],
        ),
        ...routes.locations,
      ],
    ),
    ...(http2 ? [outboundHttp2Server(model, context, grpcRoutes, routed)] : []),
    ...(extension?.directives ?? []),
  ];
}

/**
 * Whether an upstream has a twin that keeps no connections (freshUpstreamName), for the retry of
 * a request whose kept-alive connection closed under it: HTTP/1 upstreams that keep connections.
 */
export function hasFreshTwin(upstream: UpstreamModel): boolean {
  return upstream.keepalive !== undefined && upstream.http2 !== true;
}

/** An upstream as the outbound servers' proxy_pass or grpc_pass names it. */
function upstreamUrl(upstream: UpstreamModel): string {
  const scheme = upstream.http2 === true ? 'grpc' : 'http';
  return `${scheme}${upstream.tlsName === undefined ? '' : 's'}://${upstream.name}`;
}

/**
 * The outbound HTTP/2 server: the app speaks HTTP/2 in cleartext (gRPC, h2c) and nginx's gRPC
 * proxy carries each stream to the peer's sidecar as HTTP/2 over mTLS (ALPN h2), trailers, streams
 * in both directions and deadlines (the grpc-timeout header) included. A stream's body is not
 * limited (client_max_body_size is for HTTP/1 requests), and a stream may stay idle up to
 * IDLE_TIMEOUT. No fresh retry: gRPC calls are POSTs, which are never retried once sent.
 */
function outboundHttp2Server(
  model: SidecarModel,
  context: SidecarContext,
  routes: RouteDirectives,
  routed: boolean,
): Directive {
  return block(
    'server',
    [],
    [
      d('listen', String(SIDECAR_OUTBOUND_HTTP2_PORT), 'http2'),
      ...LOOPBACK_ONLY,
      ...httpStats('outbound2', model),
      ...httpAccessLog(context, 'outbound'),
      ...ruleVariable(routes, routed),
      ...http2Streams,
      block(
        'location',
        ['/'],
        [
          block('if', ['($mesh_outbound_url', '=', '', ')'], [d('return', '503')]),
          d('grpc_pass', '$mesh_outbound_url'),
          ...grpcProxy(model, context, '$mesh_outbound_host'),
        ],
      ),
      ...routes.locations,
    ],
  );
}

/**
 * A server's route dispatch, or, where only the other server routes, an empty $mesh_rule: the
 * shared $mesh_outbound_upstream map reads it in both servers.
 */
function ruleVariable(routes: RouteDirectives, routed: boolean): Directive[] {
  if (routes.server.length > 0) return routes.server;
  return routed ? [d('set', '$mesh_rule', '')] : [];
}

/** How the outbound HTTP/2 server calls a peer, with this Host header. */
function grpcProxy(model: SidecarModel, context: SidecarContext, host: string): Directive[] {
  return [
    ...clientTls(context, '$mesh_outbound_ssl_name', 'grpc'),
    d('grpc_set_header', 'Host', host),
    ...traceHeader(model, 'grpc'),
    d('grpc_connect_timeout', OUTBOUND_CONNECT_TIMEOUT),
    ...grpcTimeouts,
  ];
}

/**
 * Where the inbound HTTP/2 server sends a call its app could not take (502: refused, or the
 * connection broke): the stream is reset instead of answered. The caller's sidecar counts a reset
 * as a failure of this endpoint, as it counts a refused connection, so a CircuitBreaker opens;
 * an answered 502 it would count as a success, since nginx counts a failed answer only where it
 * may send the call again, and a gRPC call (a POST with a streamed body) is never sent twice.
 * The caller's app still sees UNAVAILABLE (its sidecar answers 502).
 */
const INBOUND_RESET_LOCATION = 'mesh_inbound_reset';

/** Server settings of the HTTP/2 servers: unbounded stream bodies, long-lived streams. */
const http2Streams: readonly Directive[] = [
  d('client_max_body_size', '0'),
  d('client_body_timeout', IDLE_TIMEOUT),
  d('keepalive_requests', '100000'),
];

const grpcTimeouts: readonly Directive[] = [
  d('grpc_read_timeout', IDLE_TIMEOUT),
  d('grpc_send_timeout', IDLE_TIMEOUT),
];

/**
 * WebSockets and other upgrades: a request with an Upgrade header leaves the normal location for
 * one (@…_upgrade) whose timeouts let the tunnel live as long as its peers keep it (up to
 * IDLE_TIMEOUT), instead of nginx's 60 s between reads. nginx has no other way to give one
 * request other timeouts than its location's. The status only routes: no client sees it.
 */
const UPGRADE_STATUS = '418';
const OUTBOUND_UPGRADE_LOCATION = 'mesh_outbound_upgrade';
const INBOUND_UPGRADE_LOCATION = 'mesh_inbound_upgrade';
const upgradeDetour: Directive = block(
  'if',
  ['($http_upgrade', '!=', '', ')'],
  [d('return', UPGRADE_STATUS)],
);
const tunnelTimeouts: readonly Directive[] = [
  d('proxy_read_timeout', IDLE_TIMEOUT),
  d('proxy_send_timeout', IDLE_TIMEOUT),
];

/** The Connection header each HTTP/1 hop sends: upgrade when the client asked for one. */
const connectionHeader: Directive = map('$http_upgrade', '$mesh_connection', 'upgrade', [['', '']]);

/** How the outbound server proxies a request, on its first try and on the fresh retry. */
function outboundProxy(
  model: SidecarModel,
  context: SidecarContext,
  host = '$mesh_outbound_host',
): Directive[] {
  return [
    ...clientTls(context, '$mesh_outbound_ssl_name'),
    d('proxy_set_header', 'Host', host),
    ...proxyHeaders,
    ...traceHeader(model, 'proxy'),
    outboundFailures,
    outboundConnectTimeout,
  ];
}

/**
 * The retry of a request that nginx itself answered 502: every endpoint it tried failed. A
 * sidecar that reloads (every sidecar does when the mesh configuration or the trust bundle
 * changes) closes its idle kept-alive connections, and a request already sent on one of them
 * fails; nginx moves it to the next endpoint, but never tries one endpoint twice, so when every
 * endpoint's sidecar reloaded at once each try meets a closed connection and the request got 502.
 * The retry goes once more through the Service's upstream twin that keeps no connections, so each
 * try opens a new one. Like nginx's own next-upstream, it leaves out methods that are not
 * idempotent: such a request may have reached the app.
 */
const FRESH_RETRY_LOCATION = 'mesh_outbound_fresh';

const retryableMethods: Directive = map('$request_method', '$mesh_outbound_retryable', '1', [
  ['POST', '0'],
  ['PATCH', '0'],
  ['LOCK', '0'],
]);

/**
 * HTTP/1.1 on every hop, so connections are kept alive; the client's Upgrade passes on (empty, it
 * is not sent), and Connection is "upgrade" for it, empty (keep-alive) otherwise.
 */
const proxyHeaders: readonly Directive[] = [
  d('proxy_http_version', '1.1'),
  d('proxy_set_header', 'Upgrade', '$http_upgrade'),
  d('proxy_set_header', 'Connection', '$mesh_connection'),
];

/**
 * What counts as a failed attempt at an upstream server (for max_fails, so for circuit breakers)
 * and moves the request to the next server or the fallback. A meshed endpoint is reached through
 * its sidecar, which turns the app's refused or timed-out connection into 502 or 504: those are
 * the failures that `error timeout` catches on a direct connection. 503 stays a plain answer, so a
 * rate-limited endpoint is never marked down.
 */
const outboundFailures: Directive = d(
  'proxy_next_upstream',
  'error',
  'timeout',
  'http_502',
  'http_504',
);

/** A connect to a replaced pod's address gives up in time for the next endpoint. */
const outboundConnectTimeout: Directive = d('proxy_connect_timeout', OUTBOUND_CONNECT_TIMEOUT);

/** "<port> <peer id>" → 1 (admitted), a rule set's variable, or 0 (default). */
function accessDirectives(model: SidecarModel): Directive[] {
  const ruleSets = new Map<string, string>();
  const out: Directive[] = [];
  const valueOf = (rule: AccessRule): string => {
    if (rule.tcp || rule.matchIds.length === 0) return rule.tcp ? '1' : '0';
    const key = rule.matchIds.join(',');
    let variable = ruleSets.get(key);
    if (variable === undefined) {
      variable = `$mesh_rules_${ruleSets.size + 1}`;
      ruleSets.set(key, variable);
      out.push(...anyOf(rule.matchIds.map(matchVariable), variable));
    }
    return variable;
  };
  // A peer can be named by several targets: their rules add up.
  const grouped = new Map<string, AccessRule[]>();
  for (const rule of model.accessRules) {
    const key = `${rule.port ?? '*'} ${rule.identity}`;
    grouped.set(key, [...(grouped.get(key) ?? []), rule]);
  }
  const entries: [string, string][] = [];
  for (const [key, rules] of [...grouped].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const [port = '*', identity = ''] = key.split(' ');
    const portless = model.accessRules.filter(
      (rule) => rule.port === undefined && rule.identity === identity,
    );
    const all = port === '*' ? rules : [...rules, ...portless];
    const merged: AccessRule = {
      identity,
      tcp: all.some((rule) => rule.tcp),
      matchIds: [...new Set(all.flatMap((rule) => rule.matchIds))].sort((a, b) => a - b),
    };
    entries.push([
      port === '*' ? `~^\\d+ ${regexLiteral(identity)}$` : `${port} ${identity}`,
      valueOf(merged),
    ]);
  }
  return [...out, map('$mesh_inbound_port $mesh_peer_spiffe_id', '$mesh_access', '0', entries)];
}

function rateLimitDirectives(limit: RateLimitModel): { zone: Directive[]; location: Directive } {
  const prefix = `$${limit.zone}`;
  const zone: Directive[] = [];
  const parts: string[] = [];
  if (limit.sourceIps.length > 0) {
    zone.push(
      block(
        'geo',
        ['$proxy_protocol_addr', `${prefix}_source`],
        [d('default', '0'), ...limit.sourceIps.map((ip) => d(ip, '1'))],
      ),
    );
    parts.push(`${prefix}_source`);
  }
  if (limit.matchIds.length > 0) {
    zone.push(...anyOf(limit.matchIds.map(matchVariable), `${prefix}_matched`));
    parts.push(`${prefix}_matched`);
  }
  let key = '$proxy_protocol_addr';
  if (parts.length > 0) {
    // An empty key is not limited.
    zone.push(
      map(parts.join(''), `${prefix}_key`, '', [
        ['1'.repeat(parts.length), '$proxy_protocol_addr'],
      ]),
    );
    key = `${prefix}_key`;
  }
  zone.push(d('limit_req_zone', key, `zone=${limit.zone}:1m`, `rate=${limit.rate}r/${limit.per}`));
  // nginx refuses burst=0 and delay=0, which are its defaults: both are left out then.
  const pace =
    limit.delay === 'nodelay' ? ['nodelay'] : limit.delay > 0 ? [`delay=${limit.delay}`] : [];
  const burst = limit.burst > 0 ? [`burst=${limit.burst}`] : [];
  return { zone, location: d('limit_req', `zone=${limit.zone}`, ...burst, ...pace) };
}

function inboundDirectives(model: SidecarModel, context: SidecarContext): Directive[] {
  const deny = model.accessControl === 'deny';
  const limits = model.rateLimits.map(rateLimitDirectives);
  const http = model.inboundPorts.filter((port) => port.kind !== 'tcp');
  const listen: Directive[] = [];
  if (model.mtlsMode !== 'off')
    listen.push(d('listen', String(SIDECAR_INBOUND_HTTP_PORT), 'ssl', 'proxy_protocol'));
  if (model.mtlsMode !== 'strict')
    listen.push(d('listen', String(SIDECAR_INBOUND_HTTP_PLAIN_PORT), 'proxy_protocol'));
  const listen2: Directive[] = [];
  if (model.mtlsMode !== 'off')
    listen2.push(d('listen', String(SIDECAR_INBOUND_HTTP2_PORT), 'ssl', 'http2', 'proxy_protocol'));
  if (model.mtlsMode !== 'strict')
    listen2.push(d('listen', String(SIDECAR_INBOUND_HTTP2_PLAIN_PORT), 'http2', 'proxy_protocol'));
  // What every request meets before the app: unknown port (502), access control (403).
  const checks: Directive[] = [
    block('if', ['($mesh_inbound_port', '=', '', ')'], [d('return', '502')]),
    ...(deny ? [block('if', ['($mesh_access', '!=', '1)'], [d('return', '403')])] : []),
  ];
  const limiting: Directive[] = [
    ...limits.map((limit) => limit.location),
    ...(limits.length > 0 ? [d('limit_req_status', '503')] : []),
  ];
  // Names one of the inbound upstreams, so connections to the app are kept alive.
  const toApp: Directive[] = [
    d('proxy_pass', `http://${INBOUND_UPSTREAM_PREFIX}$mesh_inbound_port`),
    d('proxy_set_header', 'Host', '$mesh_inbound_host'),
    ...proxyHeaders,
    ...traceHeader(model, 'proxy'),
  ];
  const http2 = http.some((port) => port.kind === 'http2');
  return [
    ...model.inboundHttpUpstreams.map(upstreamBlock),
    map(
      '$server_addr',
      '$mesh_inbound_port',
      '',
      http.map((port) => [port.loopback, String(port.port)]),
    ),
    // As outbound: an HTTP/1.0 request without Host reached the app as HTTP/1.1 without one,
    // which apps refuse with 400 (a plaintext client, or a pod whose proxy is still transparent);
    // such a request names the app's address instead.
    map('$http_host', '$mesh_inbound_host', '$http_host', [['', '127.0.0.1:$mesh_inbound_port']]),
    ...(deny ? accessDirectives(model) : []),
    ...limits.flatMap((limit) => limit.zone),
    block(
      'server',
      [],
      [
        ...listen,
        ...LOOPBACK_ONLY,
        ...httpStats('inbound', model),
        ...httpAccessLog(context, 'inbound'),
        ...(model.mtlsMode === 'off' ? [] : serverTls(context)),
        block(
          'location',
          ['/'],
          [
            ...checks,
            upgradeDetour,
            ...limiting,
            ...toApp,
            d('error_page', UPGRADE_STATUS, '=', `@${INBOUND_UPGRADE_LOCATION}`),
          ],
        ),
        // Checked already: the detour leaves only after the checks passed.
        block(
          'location',
          [`@${INBOUND_UPGRADE_LOCATION}`],
          [...limiting, ...toApp, ...tunnelTimeouts],
        ),
      ],
    ),
    ...(http2
      ? [
          block(
            'server',
            [],
            [
              ...listen2,
              ...LOOPBACK_ONLY,
              ...httpStats('inbound2', model),
              ...httpAccessLog(context, 'inbound'),
              ...(model.mtlsMode === 'off' ? [] : serverTls(context)),
              ...http2Streams,
              block(
                'location',
                ['/'],
                [
                  ...checks,
                  ...limiting,
                  d('grpc_pass', `grpc://${INBOUND_UPSTREAM_PREFIX}$mesh_inbound_port`),
                  d('grpc_set_header', 'Host', '$mesh_inbound_host'),
                  ...traceHeader(model, 'grpc'),
                  ...grpcTimeouts,
                  d('error_page', '502', '=', `@${INBOUND_RESET_LOCATION}`),
                ],
              ),
              block('location', [`@${INBOUND_RESET_LOCATION}`], [d('return', '444')]),
            ],
          ),
        ]
      : []),
  ];
}

/**
 * The server that refuses traffic for destinations outside the mesh under strict mTLS (the
 * outbound redirect sends it here): an HTTP request gets 403 naming the reason; anything that is
 * not HTTP (TLS, a database protocol) is closed without an answer, at once when it sends first,
 * after a few seconds when it waits for the server to speak.
 */
function egressRefusedServer(context: SidecarContext): Directive {
  const closed = '/.mesh-egress-closed';
  return block(
    'server',
    [],
    [
      d('listen', EGRESS_REFUSED),
      ...httpStats('egress'),
      ...httpAccessLog(context, 'egress'),
      d('client_header_timeout', '5s'),
      d('keepalive_timeout', '0'),
      d('default_type', 'text/plain'),
      d('error_page', '400', closed),
      block(
        'location',
        ['/'],
        [
          d(
            'return',
            '403',
            `egress refused: mTLS is strict and this pod's annotation ${DEFAULT_EGRESS_ALLOWED_ANNOTATION} is not "true"\n`,
          ),
        ],
      ),
      block('location', ['=', closed], [d('internal'), d('return', '444')]),
    ],
  );
}

/** The http block's children; an extension's (a gateway's) among the outbound half's. */
export function buildHttpDirectives(
  model: SidecarModel,
  context: SidecarContext,
  extension?: OutboundExtension,
): Directive[] {
  const temp = (name: string): Directive => d(`${name}_temp_path`, `${context.runDir}/${name}`);
  // Only the traffic servers log (httpAccessLog), where the agent relays it; the rest never do.
  // Metrics are counted in nginx's shared memory (mesh_stats), not logged.
  return [
    d('access_log', 'off'),
    d('mesh_stats_zone', SIDECAR_STATS_HTTP_ZONE, SIDECAR_STATS_ZONE_SIZE),
    d('mesh_members', membersPath(context.runDir)),
    ...(model.tracing === undefined
      ? []
      : [
          d('mesh_trace_zone', SIDECAR_TRACE_ZONE, SIDECAR_TRACE_ZONE_SIZE),
          d('mesh_trace_ratio', model.tracing.ratio),
        ]),
    temp('client_body'),
    temp('proxy'),
    temp('fastcgi'),
    temp('uwsgi'),
    temp('scgi'),
    d('client_max_body_size', model.clientMaxBodySize),
    d('map_hash_max_size', '262144'),
    d('map_hash_bucket_size', '128'),
    d('variables_hash_max_size', '8192'),
    d('variables_hash_bucket_size', '128'),
    // After the hash sizes: a map before them (json's status has one) would fix them unset.
    ...buildHttpLogFormats(
      model.logFormat,
      model.egress === 'refused',
      model.tracing !== undefined,
      context,
    ),
    map('$server_port', '$mesh_svid', context.svidFile, []),
    connectionHeader,
    ...(model.outboundHttp.some((http) => http.http2) ||
    model.inboundPorts.some((port) => port.kind === 'http2')
      ? [grpcStatus]
      : []),
    ...model.matches.flatMap(matchDirectives),
    ...outboundDirectives(model, context, extension),
    ...inboundDirectives(model, context),
    ...(model.egress === 'refused' ? [egressRefusedServer(context)] : []),
    statsServer(context.runDir, model.tracing !== undefined),
    ...buildHealthServers({
      ipv6: context.ipv6,
      healthHttpPort: SIDECAR_HEALTH_HTTP_PORT,
      healthHttpsPort: SIDECAR_HEALTH_HTTPS_PORT,
      healthRedirects: context.healthRedirects,
    }),
  ];
}
