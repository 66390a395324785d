// Stage 2 for Gateway API HTTPRoutes (routes.ts decides): how the outbound HTTP server (8889)
// routes a request to a routed Service port, and a gateway's listeners to theirs. Mechanical.
// Pure.
//
// - One map turns the request into the id of the first match that takes it ($mesh_route_match):
//   its source is the text routes.ts describes, its entries the matches' regexes in order. A
//   table's dispatch (RouteDispatch) names the key of that text and its http-level variables, so
//   a gateway's table ($mesh_gateway_…) sits beside the sidecar's own in one http block.
// - The server's rewrite phase, for a routed Service port only, keeps that id ($mesh_rule) and
//   moves the request to the id's location ("/.mesh/rule/<id>"; "/.mesh/rule/" for no match:
//   404). The request URI sent on is given explicitly ($request_uri, or the rewritten one), so the
//   move is never seen by the backend. A location refuses a request whose $mesh_rule is not its
//   own, so a client cannot pick a rule by its path.
// - $mesh_outbound_upstream follows the rule: its backend, or a split_clients of its backends,
//   and the Service's own upstream otherwise; every map after it (URL, TLS name, fresh twin) is
//   the one unrouted requests use.
// - A RequestMirror is nginx's mirror subrequest to a location of its own, which proxies to the
//   mirror's upstream (mTLS with its peers' name when they are meshed); a share below 100% is a
//   split_clients on the request id, the rest answered 204 inside the sidecar.
// - timeouts.backendRequest (or request) bounds each connect, send and read of a try, the wait
//   for the response's first byte included; timeouts.request bounds every try together.
// - Values from routes are written with "$" as ${mesh_dollar}, so a header value or path can hold
//   a dollar sign and never names a variable.
import type { Directive } from '../agent-nginx';
import type { SnapshotHeaderModifier } from '../../manifests/snapshot/types';
import type { RouteActionModel, RouteRetryModel, RouteTableModel, RouteUri } from './routes';
import { regexLiteral } from './names';
import { block, d, map } from './stream-directives';

/** Where a routed request goes in the outbound server; the id follows. */
export const RULE_PATH = '/.mesh/rule/';

/** The port a URL of each scheme leaves out. */
const WELL_KNOWN_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** Where a rule's mirror subrequests go: "<id>/<n>" follows. */
const MIRROR_PATH = '/.mesh/mirror/';

/** A literal for an nginx value: "$" cannot start a variable. */
export function literal(text: string): string {
  return text.replace(/\$/g, '${mesh_dollar}');
}

/** What routes add to the http block, to the outbound server, and the rules' locations. */
export interface RouteDirectives {
  readonly http: Directive[];
  /** Server-level directives of the outbound HTTP server, before its locations. */
  readonly server: Directive[];
  readonly locations: Directive[];
}

/** How a rule proxies (TLS, headers, failures), shared by its locations; given per server. */
export interface RuleProxy {
  /** The directives of an unrouted request's proxying, with this Host header. */
  readonly base: (hostHeader: string) => Directive[];
  /** mTLS to a mirror's peers: the client certificate and this literal DNS SAN verified. */
  readonly mirrorTls: (tlsName: string) => Directive[];
  /** Directives of the upgrade detour and its 418 status, and the tunnel's timeouts. */
  readonly upgradeDetour: Directive;
  readonly upgradeStatus: string;
  readonly tunnelTimeouts: readonly Directive[];
}

/**
 * How a table's dispatch is named: what the key of its match text is, and the prefix of its
 * http-level variables (<prefix>routed, <prefix>route_match, <prefix>route_port), which nginx
 * lets one http block define once.
 */
export interface RouteDispatch {
  /** The variable whose value is a routed place's key (RoutedKey.key). */
  readonly key: string;
  readonly prefix: string;
}

/** The sidecar's outbound servers: the loopback address names the Service port. */
export const OUTBOUND_DISPATCH: RouteDispatch = { key: '$server_addr', prefix: '$mesh_' };

const headerVariable = (name: string): string =>
  `$http_${name.toLowerCase().replace(/[^a-z0-9]/g, '_')}`;

/** The text the match regexes read, fields separated by newlines. */
function matchText(table: RouteTableModel, key: string): string {
  return [key, '$request_method', '$args', ...table.headers.map(headerVariable), '$uri'].join('\n');
}

function mirrorVariable(action: RouteActionModel, index: number): string {
  return `$mesh_rule_${action.id}_mirror_${index}`;
}

function backendVariable(action: RouteActionModel): string {
  return `$mesh_rule_${action.id}_backend`;
}

/** The upstream a rule's requests go to, as $mesh_outbound_upstream's value. */
function upstreamValue(action: RouteActionModel): string {
  if (action.backends.length === 0) return '';
  if (action.backends.length === 1) return action.backends[0]?.upstream ?? '';
  return backendVariable(action);
}

function uriValue(action: RouteActionModel, uri: RouteUri): string {
  switch (uri.kind) {
    case 'request':
      return '$request_uri';
    case 'full':
      return `${literal(uri.path)}$is_args$args`;
    case 'prefix':
      return `$mesh_rule_${action.id}_uri`;
  }
}

/** The map that replaces a matched prefix in $request_uri (the query string kept). */
function prefixMap(action: RouteActionModel, prefix: string, replacement: string): Directive {
  const variable = `$mesh_rule_${action.id}_uri`;
  const trimmed = replacement.replace(/\/+$/, '');
  if (prefix === '/') {
    return map('$request_uri', variable, '$request_uri', [
      ['~^/([\\s\\S]*)$', `${literal(trimmed)}/$1`],
    ]);
  }
  const head = `~^${regexLiteral(prefix)}`;
  return map('$request_uri', variable, '$request_uri', [
    [`${head}(/[\\s\\S]*)$`, `${literal(trimmed)}$1`],
    [`${head}(\\?[\\s\\S]*)?$`, `${literal(trimmed === '' ? '/' : replacement)}$1`],
  ]);
}

function headerAddMaps(action: RouteActionModel): Directive[] {
  return (action.requestHeaders?.add ?? []).map((header, index) => {
    const source = headerVariable(header.name);
    return map(
      source,
      `$mesh_rule_${action.id}_add_${index}`,
      `${source},${literal(header.value)}`,
      [['', literal(header.value)]],
    );
  });
}

/** Which keys are routed, and the id of the match a request takes there. */
function dispatchMaps(
  table: RouteTableModel,
  key: string,
  routed: string,
  match: string,
): Directive[] {
  return [
    map(
      key,
      routed,
      '0',
      table.routed.map((entry) => [entry.key, '1']),
    ),
    map(
      matchText(table, key),
      match,
      '',
      table.entries.map((entry) => [`~${entry.regex}`, entry.action]),
    ),
  ];
}

/** The split_clients of a rule with several backends; none for one. */
function backendSplit(action: RouteActionModel): Directive[] {
  if (action.backends.length <= 1) return [];
  return [
    block(
      'split_clients',
      ['$request_id', backendVariable(action)],
      action.backends.map((backend) =>
        d(backend.percent === '*' ? '*' : `${backend.percent}%`, backend.upstream),
      ),
    ),
  ];
}

/** The http-level maps and splits of the route table. */
function httpDirectives(table: RouteTableModel, dispatch: RouteDispatch): Directive[] {
  const out: Directive[] = [
    ...dispatchMaps(
      table,
      dispatch.key,
      `${dispatch.prefix}routed`,
      `${dispatch.prefix}route_match`,
    ),
    map(
      dispatch.key,
      `${dispatch.prefix}route_port`,
      '',
      table.routed.flatMap((entry) =>
        entry.port === WELL_KNOWN_PORTS[entry.tls === true ? 'https' : 'http']
          ? []
          : [[entry.key, `:${entry.port}`] as const],
      ),
    ),
  ];
  for (const action of table.actions) {
    out.push(...backendSplit(action));
    action.mirrors.forEach((mirror, index) => {
      if (mirror.percent < 100)
        out.push(
          block(
            'split_clients',
            ['$request_id', mirrorVariable(action, index)],
            [d(`${mirror.percent}%`, '1'), d('*', '')],
          ),
        );
    });
    if (action.uri.kind === 'prefix')
      out.push(prefixMap(action, action.uri.prefix, action.uri.replacement));
    out.push(...headerAddMaps(action));
  }
  return out;
}

/** $mesh_dollar: "$", which a literal() value writes as ${mesh_dollar}. */
export const DOLLAR: Directive = block('geo', ['$mesh_dollar'], [d('default', '$')]);

/**
 * The $mesh_outbound_upstream map when routes exist: the rule's backend (HTTPRoute and
 * GRPCRoute rules alike: their ids differ), else the Service's.
 */
export function routedUpstreamMap(
  tables: readonly (RouteTableModel | undefined)[],
  serviceUpstream: string,
): Directive {
  return map(
    '$mesh_rule',
    '$mesh_outbound_upstream',
    serviceUpstream,
    tables
      .flatMap((table) => table?.actions ?? [])
      .filter((action) => action.redirect === undefined)
      .map((action) => [action.id, upstreamValue(action)]),
  );
}

/** How a GRPCRoute rule calls its backend: the outbound HTTP/2 server's grpc_pass settings. */
export interface GrpcRuleProxy {
  /** TLS, Host, trace header and timeouts of grpc_pass, with this Host header. */
  readonly base: (hostHeader: string) => Directive[];
}

/**
 * What GRPCRoutes add: the same dispatch as HTTPRoutes' in the outbound HTTP/2 server, with its
 * own match map. grpc_pass sends the request's path as it is then, so a rule's location first
 * puts the call's own path back. Calls stream, so they are neither mirrored nor retried.
 */
export function grpcRouteDirectives(
  table: RouteTableModel | undefined,
  proxy: GrpcRuleProxy,
): RouteDirectives {
  if (table === undefined) return { http: [], server: [], locations: [] };
  const http: Directive[] = [
    ...dispatchMaps(table, OUTBOUND_DISPATCH.key, '$mesh_grpc_routed', '$mesh_grpc_route_match'),
    ...table.actions.flatMap(backendSplit),
  ];
  const locations = table.actions.map((action) => {
    const own = touched(action.requestHeaders);
    const base = proxy
      .base('$mesh_outbound_host')
      .filter(
        (directive) =>
          directive.name !== 'grpc_set_header' || !own.has((directive.args[0] ?? '').toLowerCase()),
      );
    return block(
      'location',
      ['=', `${RULE_PATH}${action.id}`],
      [
        block('if', ['($mesh_rule', '!=', action.id, ')'], [d('return', '404')]),
        block('if', ['($mesh_outbound_upstream', '=', '', ')'], [d('return', '500')]),
        block('if', ['($mesh_outbound_url', '=', '', ')'], [d('return', '503')]),
        d('rewrite', '^', '$request_uri', 'break'),
        d('grpc_pass', '$mesh_outbound_url'),
        ...base,
        ...(action.requestHeaders?.set ?? []).map((h) =>
          d('grpc_set_header', h.name, literal(h.value)),
        ),
        ...(action.requestHeaders?.add ?? []).map((h, index) =>
          d('grpc_set_header', h.name, `$mesh_rule_${action.id}_add_${index}`),
        ),
        ...(action.requestHeaders?.remove ?? []).map((name) => d('grpc_set_header', name, '')),
        ...[
          ...(action.responseHeaders?.set ?? []).map((h) => h.name),
          ...(action.responseHeaders?.remove ?? []),
        ].map((name) => d('grpc_hide_header', name)),
        ...[...(action.responseHeaders?.set ?? []), ...(action.responseHeaders?.add ?? [])].map(
          (h) => d('add_header', h.name, literal(h.value), 'always'),
        ),
      ],
    );
  });
  return {
    http: [...http, ...table.actions.flatMap(headerAddMaps)],
    server: [...moveToRule('$mesh_grpc_routed', '$mesh_grpc_route_match')],
    locations: [block('location', ['=', RULE_PATH], [d('return', '404')]), ...locations],
  };
}

/**
 * Where a server's rule locations stand: its dispatch, and the scheme of its requests (a
 * redirect's scheme when it names none).
 */
interface ServerRoutes {
  readonly dispatch: RouteDispatch;
  readonly scheme: 'http' | 'https';
}

/** The Location of a RequestRedirect. */
function redirectUrl(action: RouteActionModel, server: ServerRoutes): string {
  const redirect = action.redirect;
  if (redirect === undefined) return '';
  const scheme = redirect.scheme ?? server.scheme;
  const host = redirect.hostname === undefined ? '$host' : literal(redirect.hostname);
  const port =
    redirect.port !== undefined
      ? redirect.port === WELL_KNOWN_PORTS[scheme]
        ? ''
        : `:${redirect.port}`
      : redirect.scheme !== undefined
        ? ''
        : `${server.dispatch.prefix}route_port`;
  return `${scheme}://${host}${port}${uriValue(action, redirect.uri)}`;
}

/** Header names a modifier touches, lower case. */
function touched(modifier: SnapshotHeaderModifier | undefined): Set<string> {
  if (modifier === undefined) return new Set();
  return new Set(
    [...modifier.set, ...modifier.add]
      .map((h) => h.name)
      .concat(modifier.remove)
      .map((n) => n.toLowerCase()),
  );
}

/** The request header directives of a rule. */
function requestHeaderDirectives(action: RouteActionModel): Directive[] {
  const request = action.requestHeaders;
  return [
    ...(request?.set ?? []).map((h) => d('proxy_set_header', h.name, literal(h.value))),
    ...(request?.add ?? []).map((h, index) =>
      d('proxy_set_header', h.name, `$mesh_rule_${action.id}_add_${index}`),
    ),
    ...(request?.remove ?? []).map((name) => d('proxy_set_header', name, '')),
  ];
}

/** The response header directives of a rule: hidden from the backend's answer, then added. */
function responseHeaderDirectives(action: RouteActionModel): Directive[] {
  const response = action.responseHeaders;
  return [
    ...[...(response?.set ?? []).map((h) => h.name), ...(response?.remove ?? [])].map((name) =>
      d('proxy_hide_header', name),
    ),
    ...[...(response?.set ?? []), ...(response?.add ?? [])].map((h) =>
      d('add_header', h.name, literal(h.value), 'always'),
    ),
  ];
}

/** A rule's proxying: the base without the headers the rule sets itself, then the rule's. */
function ruleProxy(action: RouteActionModel, proxy: RuleProxy): Directive[] {
  const own = touched(action.requestHeaders);
  const host = action.hostname === undefined ? '$mesh_outbound_host' : literal(action.hostname);
  const base = proxy
    .base(host)
    .filter(
      (directive) =>
        directive.name !== 'proxy_set_header' || !own.has((directive.args[0] ?? '').toLowerCase()),
    );
  return [
    ...base.map((directive) => timed(directive, action)),
    ...requestHeaderDirectives(action),
    ...responseHeaderDirectives(action),
    ...timeoutDirectives(action),
  ];
}

/** The base's connect timeout, shortened to the rule's backend timeout when that is shorter. */
function timed(directive: Directive, action: RouteActionModel): Directive {
  const backend = action.timeouts?.backend;
  if (directive.name !== 'proxy_connect_timeout' || backend === undefined) return directive;
  const current = directive.args[0] ?? '';
  return milliseconds(backend) < milliseconds(current) ? d(directive.name, backend) : directive;
}

const TIME_UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** An nginx time value ("2s", "500ms", "1h") in milliseconds. */
function milliseconds(value: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(value);
  if (match === null) return Number.POSITIVE_INFINITY;
  return Number(match[1]) * (TIME_UNIT_MS[match[2] ?? ''] ?? 1);
}

/**
 * timeouts.backendRequest (or request) bounds each send to and each read from the backend,
 * the wait for the response's first byte included; timeouts.request bounds the tries together.
 */
function timeoutDirectives(action: RouteActionModel): Directive[] {
  const timeouts = action.timeouts;
  if (timeouts === undefined) return [];
  return [
    ...(timeouts.backend === undefined
      ? []
      : [d('proxy_read_timeout', timeouts.backend), d('proxy_send_timeout', timeouts.backend)]),
    ...(timeouts.request === undefined ? [] : [d('proxy_next_upstream_timeout', timeouts.request)]),
  ];
}

/** The mirror directives of a rule's location, and each mirror's own location. */
function mirrorDirectives(
  action: RouteActionModel,
  uri: string,
  proxy: RuleProxy,
): { mirror: Directive[]; locations: Directive[] } {
  const mirror = action.mirrors.map((_, index) =>
    d('mirror', `${MIRROR_PATH}${action.id}/${index}`),
  );
  const host = action.hostname === undefined ? '$mesh_outbound_host' : literal(action.hostname);
  const locations = action.mirrors.map((target, index) =>
    block(
      'location',
      ['=', `${MIRROR_PATH}${action.id}/${index}`],
      [
        d('internal'),
        ...(target.percent < 100
          ? [block('if', [`(${mirrorVariable(action, index)}`, '=', '', ')'], [d('return', '204')])]
          : []),
        d(
          'proxy_pass',
          `${target.tlsName === undefined ? 'http' : 'https'}://${target.upstream}${uri}`,
        ),
        ...(target.tlsName === undefined ? [] : proxy.mirrorTls(target.tlsName)),
        d('proxy_set_header', 'Host', host),
        d('proxy_http_version', '1.1'),
        d('proxy_set_header', 'Connection', ''),
        ...requestHeaderDirectives(action),
        d('proxy_connect_timeout', '2s'),
      ],
    ),
  );
  return { mirror, locations };
}

function actionLocations(
  action: RouteActionModel,
  proxy: RuleProxy,
  server: ServerRoutes,
): Directive[] {
  const guard = block('if', ['($mesh_rule', '!=', action.id, ')'], [d('return', '404')]);
  if (action.redirect !== undefined) {
    return [
      block(
        'location',
        ['=', `${RULE_PATH}${action.id}`],
        [
          guard,
          ...responseHeaderDirectives(action),
          d('return', String(action.redirect.status), redirectUrl(action, server)),
        ],
      ),
    ];
  }
  const uri = uriValue(action, action.uri);
  if (action.retry !== undefined) return retryLocations(action, action.retry, uri, proxy);
  const fresh = `@mesh_rule_${action.id}_fresh`;
  const upgrade = `@mesh_rule_${action.id}_upgrade`;
  const proxied = ruleProxy(action, proxy);
  const mirrors = mirrorDirectives(action, uri, proxy);
  return [
    block(
      'location',
      ['=', `${RULE_PATH}${action.id}`],
      [
        guard,
        block('if', ['($mesh_outbound_upstream', '=', '', ')'], [d('return', '500')]),
        block('if', ['($mesh_outbound_url', '=', '', ')'], [d('return', '503')]),
        proxy.upgradeDetour,
        ...mirrors.mirror,
        d('proxy_pass', `$mesh_outbound_url${uri}`),
        ...proxied,
        d('error_page', '502', '=', fresh),
        d('error_page', proxy.upgradeStatus, '=', upgrade),
      ],
    ),
    block(
      'location',
      [fresh],
      [
        block('if', ['($mesh_outbound_retryable', '=', '0', ')'], [d('return', '502')]),
        d('proxy_pass', `$mesh_outbound_fresh_url${uri}`),
        ...proxied,
      ],
    ),
    upgradeLocation(upgrade, uri, proxied, proxy),
    ...mirrors.locations,
  ];
}

/**
 * A rule with retries: its location and one named location per retry, each proxying once
 * (proxy_next_upstream off, so that a try is one request to one endpoint). A try answered with
 * one of the codes, or failing as nginx's own 502 (no connection, or a broken one) or 504 (a
 * timeout) when the codes name them, goes to the next retry, which waits the backoff first and
 * answers 504 instead when the request's deadline would pass; the last retry's answer is the
 * client's. The retries replace the fresh-connection retry of other rules.
 */
function retryLocations(
  action: RouteActionModel,
  retry: RouteRetryModel,
  uri: string,
  proxy: RuleProxy,
): Directive[] {
  const upgrade = `@mesh_rule_${action.id}_upgrade`;
  const name = (attempt: number): string => `@mesh_rule_${action.id}_retry_${attempt}`;
  const proxied = ruleProxy(action, proxy).map((directive) =>
    directive.name === 'proxy_next_upstream' ? d('proxy_next_upstream', 'off') : directive,
  );
  const onFailure = (attempt: number): Directive[] =>
    attempt > retry.attempts
      ? []
      : [
          d('proxy_intercept_errors', 'on'),
          d('recursive_error_pages', 'on'),
          d('error_page', ...retry.codes, '=', name(attempt)),
        ];
  const wait = d(
    'mesh_retry_backoff',
    retry.backoff,
    ...(retry.deadline === undefined ? [] : [`deadline=${retry.deadline}`]),
  );
  const mirrors = mirrorDirectives(action, uri, proxy);
  const retries = Array.from({ length: retry.attempts }, (_, index) =>
    block(
      'location',
      [name(index + 1)],
      [wait, d('proxy_pass', `$mesh_outbound_url${uri}`), ...proxied, ...onFailure(index + 2)],
    ),
  );
  return [
    block(
      'location',
      ['=', `${RULE_PATH}${action.id}`],
      [
        block('if', ['($mesh_rule', '!=', action.id, ')'], [d('return', '404')]),
        block('if', ['($mesh_outbound_upstream', '=', '', ')'], [d('return', '500')]),
        block('if', ['($mesh_outbound_url', '=', '', ')'], [d('return', '503')]),
        proxy.upgradeDetour,
        ...mirrors.mirror,
        d('proxy_pass', `$mesh_outbound_url${uri}`),
        ...proxied,
        ...onFailure(1),
        d('error_page', proxy.upgradeStatus, '=', upgrade),
      ],
    ),
    ...retries,
    upgradeLocation(upgrade, uri, proxied, proxy),
    ...mirrors.locations,
  ];
}

/** The server's rewrite phase: on a routed address, keep the match's id and go to its location. */
function moveToRule(routed: string, match: string): Directive[] {
  return [
    d('set', '$mesh_rule', ''),
    block(
      'if',
      [`(${routed})`],
      [d('set', '$mesh_rule', match), d('rewrite', '^', `${RULE_PATH}$mesh_rule`, 'break')],
    ),
  ];
}

/** Where a rule's WebSocket or other upgrade goes: its proxying, with the tunnel's timeouts. */
function upgradeLocation(
  name: string,
  uri: string,
  proxied: readonly Directive[],
  proxy: RuleProxy,
): Directive {
  return block(
    'location',
    [name],
    [
      d('proxy_pass', `$mesh_outbound_url${uri}`),
      ...proxied.filter(
        (directive) => !proxy.tunnelTimeouts.some((tunnel) => tunnel.name === directive.name),
      ),
      ...proxy.tunnelTimeouts,
    ],
  );
}

/** What a server holding a table's rules is given. */
export interface RouteServerOptions {
  /** Absent: the sidecar's outbound servers' (OUTBOUND_DISPATCH). */
  readonly dispatch?: RouteDispatch;
  /** The scheme of the server's requests; absent: http. */
  readonly scheme?: 'http' | 'https';
  /** The ids of the actions whose locations the server holds; absent: every action. */
  readonly actions?: ReadonlySet<string>;
}

/** What the route table adds to the http block; none when there is no table. */
export function routeHttpDirectives(
  table: RouteTableModel | undefined,
  dispatch: RouteDispatch = OUTBOUND_DISPATCH,
): Directive[] {
  return table === undefined ? [] : httpDirectives(table, dispatch);
}

/** What the route table adds to one server: its dispatch and its rules' locations. */
export function routeServerDirectives(
  table: RouteTableModel | undefined,
  proxy: RuleProxy,
  options: RouteServerOptions = {},
): Omit<RouteDirectives, 'http'> {
  if (table === undefined) return { server: [], locations: [] };
  const server: ServerRoutes = {
    dispatch: options.dispatch ?? OUTBOUND_DISPATCH,
    scheme: options.scheme ?? 'http',
  };
  const held = options.actions;
  const actions = table.actions.filter((action) => held === undefined || held.has(action.id));
  return {
    server: [
      // A mirror's subrequest starts in this phase too, and shares its request's variables: it
      // goes straight to its location, leaving $mesh_rule as the request set it.
      ...(actions.some((action) => action.mirrors.length > 0)
        ? [block('if', ['($uri', '~', `^${regexLiteral(MIRROR_PATH)}`, ')'], [d('break')])]
        : []),
      ...moveToRule(`${server.dispatch.prefix}routed`, `${server.dispatch.prefix}route_match`),
    ],
    locations: [
      block('location', ['=', RULE_PATH], [d('return', '404')]),
      ...actions.flatMap((action) => actionLocations(action, proxy, server)),
    ],
  };
}

/** Everything the route table adds to the configuration; empty parts when there is none. */
export function routeDirectives(
  table: RouteTableModel | undefined,
  proxy: RuleProxy,
): RouteDirectives {
  return { http: routeHttpDirectives(table), ...routeServerDirectives(table, proxy) };
}
