// Stage 1 for Gateway API HTTPRoutes attached to Services (GAMMA): which routes act on this pod's
// outbound requests, in which order their matches are tried, and what each matched rule does.
// Stage 2 (http-directives.ts) prints it. Pure.
//
// Decisions:
// - A route applies to a Service port when a parent names the Service and that port (or no port).
//   A consumer route (in the client's namespace, for a Service of another namespace) applies to
//   this pod's requests in place of the producer routes (in the Service's namespace); other
//   namespaces' consumer routes do not apply here at all.
// - Routes go on the HTTP/1 ports (appProtocol http or a name that says so). HTTP/2 ports (gRPC,
//   h2c) keep their Service's upstream.
// - A routed Service port answers 404 to a request no match takes, as the Gateway API requires.
// - Matches are tried in the Gateway API's order: an Exact path before any prefix, a longer prefix
//   before a shorter one. The API leaves regular expressions to the implementation: here they
//   come after Exact paths and before every prefix (one is written to be specific, and "/" would
//   otherwise hide it). Then a match with a
//   method before one without, more header matches before fewer, more query matches before fewer;
//   then the older route, then the route's namespace/name, then the rule's and the match's order.
// - Every match becomes one PCRE over one text nginx builds per request, "key\nmethod\nargs\n
//   <each header>\npath": the key naming the routed place (here the loopback address naming the
//   Service port; a gateway names its listener's server), the method, the query string as sent,
//   the values of every header some match names (sorted by name), and the normalized path last.
//   Header values and query strings cannot hold a newline and the path is last, so a field never
//   bleeds into the next.
// - A rule's share of requests for a backend that could not be resolved is answered 500; a rule
//   without backends is answered 500; a backend whose Service has no endpoints here answers 503.
import type {
  SnapshotHeaderModifier,
  SnapshotHttpRoute,
  SnapshotPathModifier,
  SnapshotRouteMatch,
  SnapshotRouteRule,
  SnapshotService,
  SnapshotServicePort,
} from '../../manifests/snapshot/types';
import type { UpstreamModel } from './model';
import { IDLE_TIMEOUT } from './stream-directives';
import { regexLiteral, upstreamName } from './names';

/** The URI a rule sends on: the request's, a full replacement, or its matched prefix replaced. */
export type RouteUri =
  | { readonly kind: 'request' }
  | { readonly kind: 'full'; readonly path: string }
  | { readonly kind: 'prefix'; readonly prefix: string; readonly replacement: string };

/** A RequestRedirect, ready to print. */
export interface RouteRedirectModel {
  readonly status: number;
  /**
   * Absent: the request's own scheme (http where the app spoke plaintext to its sidecar, https
   * on a gateway's HTTPS listener).
   */
  readonly scheme?: 'http' | 'https';
  /** Absent: the request's host. */
  readonly hostname?: string;
  /**
   * The port written after the host. Absent: the Gateway API's default (the well-known port of
   * a scheme given, else the port called: the Service's, or the gateway listener's), left out of
   * the Location when it is the scheme's well-known one.
   */
  readonly port?: number;
  readonly uri: RouteUri;
}

/** A copy of each request (or a share of them) sent to a Service's upstream. */
export interface RouteMirrorModel {
  readonly upstream: string;
  /** The upstream's peers are meshed: mTLS with this DNS SAN. */
  readonly tlsName?: string;
  /** Share of requests, in percent ("25", "33.33"); 100 mirrors every request. */
  readonly percent: number;
}

/** A rule's timeouts, ready to print (nginx time values); absent: the server's. */
export interface RouteTimeoutsModel {
  /** Each connect, send and read to a backend. */
  readonly backend?: string;
  /** Every try of the request together. */
  readonly request?: string;
}

/** A rule's retries, ready to print. */
export interface RouteRetryModel {
  /** Tries after the first. */
  readonly attempts: number;
  /** Status codes ("503") that make a try fail; nginx's own 502 and 504 count as their codes. */
  readonly codes: readonly string[];
  /** nginx time values: the wait before each retry, and the request's deadline if any. */
  readonly backoff: string;
  readonly deadline?: string;
}

/** What one matched (route, rule, match) does; its id names its location. */
export interface RouteActionModel {
  readonly id: string;
  /** "HTTPRoute <namespace>/<name>", for warnings. */
  readonly route: string;
  readonly redirect?: RouteRedirectModel;
  readonly uri: RouteUri;
  /**
   * The backends with their share, in percent (the last "*"); an upstream "" is a backend that
   * could not be resolved (answered 500). Empty: every request is answered 500.
   */
  readonly backends: readonly { readonly upstream: string; readonly percent: string }[];
  /** URLRewrite hostname: the Host header sent. */
  readonly hostname?: string;
  readonly requestHeaders?: SnapshotHeaderModifier;
  readonly responseHeaders?: SnapshotHeaderModifier;
  readonly mirrors: readonly RouteMirrorModel[];
  readonly timeouts?: RouteTimeoutsModel;
  readonly retry?: RouteRetryModel;
}

/**
 * A routed place: a Service port of this pod's outbound destinations (its loopback address is the
 * key), or a server of a gateway's listener (its port and name).
 */
export interface RoutedKey {
  /** The first field of the match text there. */
  readonly key: string;
  /** The port a client called, which a redirect without a port keeps. */
  readonly port: number;
  /** Requests arrive over TLS (https): a redirect's default scheme and well-known port. */
  readonly tls?: true;
}

/** A routed place of a table, and the ids of the actions its matches take. */
export interface RoutedPlace extends RoutedKey {
  readonly actions: readonly string[];
}

/** The routed places of this pod and their ordered matches. */
export interface RouteTableModel {
  /** Lower-case header names some match reads, sorted: the header fields of the match text. */
  readonly headers: readonly string[];
  /** Every routed place, sorted by key. */
  readonly routed: readonly RoutedPlace[];
  /** In the order nginx tries them: the first regex that matches the text picks the action. */
  readonly entries: readonly { readonly regex: string; readonly action: string }[];
  readonly actions: readonly RouteActionModel[];
}

/** A routable Service port of this pod's outbound destinations. */
export interface RoutablePort {
  readonly loopback: string;
  readonly service: SnapshotService;
  readonly port: SnapshotServicePort;
}

/** A route as the table reads it: on Service ports (GAMMA), or on a Gateway's listeners. */
export interface TableRoute {
  readonly namespace: string;
  readonly name: string;
  /** RFC 3339: older routes win ties between equal matches. */
  readonly created: string;
  readonly rules: readonly SnapshotRouteRule[];
}

interface Candidate {
  readonly key: string;
  readonly route: TableRoute;
  readonly match: SnapshotRouteMatch;
  readonly action: string;
  readonly order: readonly number[];
}

const keyOf = (route: { namespace: string; name: string }): string =>
  `${route.namespace}/${route.name}`;

/** The routes that act on `port` for a client in `namespace`: consumer routes, else producer. */
function routesFor(
  routes: readonly SnapshotHttpRoute[],
  port: RoutablePort,
  namespace: string,
): SnapshotHttpRoute[] {
  const key = keyOf(port.service);
  const attached = routes.filter((route) =>
    route.parents.some(
      (parent) =>
        parent.service === key && (parent.port === undefined || parent.port === port.port.port),
    ),
  );
  const consumer = attached.filter(
    (route) => route.namespace === namespace && namespace !== port.service.namespace,
  );
  if (consumer.length > 0) return consumer;
  return attached.filter((route) => route.namespace === port.service.namespace);
}

/** Sort key of a match: lower sorts first (see the header's order). */
function precedence(match: SnapshotRouteMatch): number[] {
  const { path } = match;
  const pathRank =
    path.type === 'Exact'
      ? [0, 0]
      : path.type === 'RegularExpression'
        ? [1, 0]
        : [2, -path.value.length];
  return [
    ...pathRank,
    match.method === undefined ? 1 : 0,
    -match.headers.length,
    -match.queryParams.length,
  ];
}

function compareNumbers(a: readonly number[], b: readonly number[]): number {
  for (let index = 0; index < Math.max(a.length, b.length); index += 1) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The regex of a header or query value: the whole value, or the expression. */
function valuePattern(match: { type: 'Exact' | 'RegularExpression'; value: string }): string {
  return match.type === 'Exact' ? regexLiteral(match.value) : `(?:${match.value})`;
}

function pathPattern(match: SnapshotRouteMatch): string {
  const { type, value } = match.path;
  if (type === 'Exact') return `${regexLiteral(value)}\\z`;
  if (type === 'RegularExpression') return `(?:${value})\\z`;
  if (value === '/') return '/[\\s\\S]*\\z';
  return `${regexLiteral(value)}(?:/[\\s\\S]*)?\\z`;
}

/** The PCRE of one match at one routed key, over the text the header describes. */
export function matchRegex(
  key: string,
  match: SnapshotRouteMatch,
  headers: readonly string[],
): string {
  const field = '[^\\n]*';
  const method = match.method === undefined ? field : regexLiteral(match.method);
  const queries = match.queryParams
    .map((query) => `(?=(?:${field}&)?${regexLiteral(query.name)}=${valuePattern(query)}(?:&|\\n))`)
    .join('');
  const headerFields = headers.map((name) => {
    const condition = match.headers.find((header) => header.name === name);
    return condition === undefined ? field : valuePattern(condition);
  });
  return [
    `^${regexLiteral(key)}`,
    method,
    `${queries}${field}`,
    ...headerFields,
    pathPattern(match),
  ].join('\\n');
}

/** The URI a rule's path modifier makes of a request that matched `match`. */
function modifiedUri(
  modifier: SnapshotPathModifier | undefined,
  match: SnapshotRouteMatch,
): RouteUri {
  if (modifier === undefined) return { kind: 'request' };
  if (modifier.type === 'ReplaceFullPath') return { kind: 'full', path: modifier.value };
  return { kind: 'prefix', prefix: match.path.value, replacement: modifier.value };
}

/**
 * Percent shares of the rule's backends, the last "*". A backend whose Service has no endpoints
 * keeps its upstream's name: the outbound maps know no URL for it, which answers 503.
 */
function shares(
  rule: SnapshotRouteRule,
  percentages: (weights: readonly number[]) => string[],
): { upstream: string; percent: string }[] {
  const backends = rule.backends.map((backend) => ({
    upstream: backend.invalid === true ? '' : upstreamName(backend.service, backend.port),
    weight: backend.weight,
  }));
  const percents = percentages(backends.map((backend) => backend.weight));
  return backends
    .map((backend, index) => ({ upstream: backend.upstream, percent: percents[index] ?? '0' }))
    .filter((backend) => backend.percent !== '0')
    .map((backend, index, all) =>
      index === all.length - 1 ? { ...backend, percent: '*' } : backend,
    );
}

/** The rule's mirrors to upstreams this sidecar has (HTTP/1; a Service without endpoints, none). */
function mirrorsOf(
  rule: SnapshotRouteRule,
  upstreams: ReadonlyMap<string, UpstreamModel>,
): RouteMirrorModel[] {
  return (rule.mirrors ?? []).flatMap((mirror) => {
    const upstream = upstreams.get(upstreamName(mirror.service, mirror.port));
    if (upstream === undefined || upstream.http2 === true) return [];
    return [
      {
        upstream: upstream.name,
        ...(upstream.tlsName === undefined ? {} : { tlsName: upstream.tlsName }),
        percent: mirror.percent,
      },
    ];
  });
}

/** A timeout as nginx reads it; "0s" (none) is the longest any hop of the sidecar waits. */
const msText = (ms: number): string => (ms === 0 ? IDLE_TIMEOUT : `${ms}ms`);

function retryOf(rule: SnapshotRouteRule): { retry?: RouteRetryModel } {
  const retry = rule.retry;
  if (retry === undefined) return {};
  const deadline = rule.timeouts?.requestMs;
  return {
    retry: {
      attempts: retry.attempts,
      codes: retry.codes.map(String),
      backoff: `${retry.backoffMs}ms`,
      ...(deadline === undefined || deadline === 0 ? {} : { deadline: `${deadline}ms` }),
    },
  };
}

function timeoutsOf(rule: SnapshotRouteRule): { timeouts?: RouteTimeoutsModel } {
  const timeouts = rule.timeouts;
  if (timeouts === undefined) return {};
  const backendMs = timeouts.backendRequestMs ?? timeouts.requestMs;
  return {
    timeouts: {
      ...(backendMs === undefined ? {} : { backend: msText(backendMs) }),
      ...(timeouts.requestMs === undefined ? {} : { request: msText(timeouts.requestMs) }),
    },
  };
}

/** What the route table is built for: the pod, its upstreams, and how weights become shares. */
export interface RouteTableInput {
  /** The client pod's namespace. */
  readonly namespace: string;
  readonly upstreams: ReadonlyMap<string, UpstreamModel>;
  /** Weights as split_clients percentages (the last "*"). */
  readonly percentages: (weights: readonly number[]) => string[];
  /** Called with every route the table uses. */
  readonly use: (route: SnapshotHttpRoute) => void;
  /**
   * HTTPRoutes act on HTTP/1 ports ("http"), GRPCRoutes on HTTP/2 ports ("http2", gRPC and h2c);
   * action ids start with "r" and "g" respectively, so both tables share one $mesh_rule.
   */
  readonly kind?: 'http' | 'http2';
}

/** What a rule does for a request its `match` took; the caller adds id and route. */
function toAction(
  rule: SnapshotRouteRule,
  match: SnapshotRouteMatch,
  input: Pick<RouteTableInput, 'upstreams' | 'percentages'>,
): Omit<RouteActionModel, 'id' | 'route'> {
  const uri = modifiedUri(rule.redirect?.path ?? rule.rewrite?.path, match);
  const redirect = rule.redirect;
  return {
    ...(redirect === undefined
      ? {}
      : {
          redirect: {
            status: redirect.statusCode,
            ...(redirect.scheme === undefined ? {} : { scheme: redirect.scheme }),
            ...(redirect.hostname === undefined ? {} : { hostname: redirect.hostname }),
            ...(redirect.port === undefined ? {} : { port: redirect.port }),
            uri,
          },
        }),
    uri,
    backends: shares(rule, input.percentages),
    ...(rule.rewrite?.hostname === undefined ? {} : { hostname: rule.rewrite.hostname }),
    ...(rule.requestHeaders === undefined ? {} : { requestHeaders: rule.requestHeaders }),
    ...(rule.responseHeaders === undefined ? {} : { responseHeaders: rule.responseHeaders }),
    mirrors: mirrorsOf(rule, input.upstreams),
    ...timeoutsOf(rule),
    ...retryOf(rule),
  };
}

/** How a table names and records its routes' actions. */
export interface TableOptions<R extends TableRoute> {
  readonly upstreams: ReadonlyMap<string, UpstreamModel>;
  /** Weights as split_clients percentages (the last "*"). */
  readonly percentages: (weights: readonly number[]) => string[];
  /** Called with every route the table uses, at each place it acts. */
  readonly use: (route: R) => void;
  /** What action ids start with: one letter per table sharing $mesh_rule. */
  readonly idPrefix: string;
  /** The routes' kind, as warnings name it ("HTTPRoute"). */
  readonly kindName: string;
}

/**
 * The route table of routed places, each with the routes acting there (in key order), or
 * undefined when there is none. A (route, rule, match) has one action wherever it acts.
 */
export function assembleRouteTable<R extends TableRoute>(
  places: readonly (RoutedKey & { readonly routes: readonly R[] })[],
  { upstreams, percentages, use, idPrefix, kindName }: TableOptions<R>,
): RouteTableModel | undefined {
  const candidates: Candidate[] = [];
  const actions = new Map<string, RouteActionModel>();
  const routed: RoutedPlace[] = [];
  for (const { routes, ...place } of places) {
    if (routes.length === 0) continue;
    const held = new Set<string>();
    for (const route of routes) {
      use(route);
      route.rules.forEach((rule, ruleIndex) => {
        rule.matches.forEach((match, matchIndex) => {
          const id = `${keyOf(route)} ${ruleIndex} ${matchIndex}`;
          if (!actions.has(id)) {
            const action = toAction(rule, match, { upstreams, percentages });
            actions.set(id, {
              ...action,
              id: `${idPrefix}${actions.size + 1}`,
              route: `${kindName} ${keyOf(route)}`,
            });
          }
          const actionId = actions.get(id)?.id ?? '';
          held.add(actionId);
          candidates.push({
            key: place.key,
            route,
            match,
            action: actionId,
            order: [ruleIndex, matchIndex],
          });
        });
      });
    }
    routed.push({ ...place, actions: [...held] });
  }
  if (routed.length === 0) return undefined;
  const headers = [
    ...new Set(candidates.flatMap((candidate) => candidate.match.headers.map((h) => h.name))),
  ].sort(compareText);
  const sorted = [...candidates].sort(
    (a, b) =>
      compareText(a.key, b.key) ||
      compareNumbers(precedence(a.match), precedence(b.match)) ||
      compareText(a.route.created, b.route.created) ||
      compareText(keyOf(a.route), keyOf(b.route)) ||
      compareNumbers(a.order, b.order),
  );
  return {
    headers,
    routed: routed.sort((a, b) => compareText(a.key, b.key)),
    entries: sorted.map((candidate) => ({
      regex: matchRegex(candidate.key, candidate.match, headers),
      action: candidate.action,
    })),
    actions: [...actions.values()],
  };
}

/**
 * The route table of a pod calling `ports` (its outbound Service ports), or undefined when no
 * route acts on them. `routes` in key order.
 */
export function buildRouteTable(
  routes: readonly SnapshotHttpRoute[],
  ports: readonly RoutablePort[],
  { namespace, upstreams, percentages, use, kind = 'http' }: RouteTableInput,
): RouteTableModel | undefined {
  const places = ports
    .filter((port) => port.port.kind === kind)
    .map((port) => ({
      key: port.loopback,
      port: port.port.port,
      routes: routesFor(routes, port, namespace),
    }));
  return assembleRouteTable(places, {
    upstreams,
    percentages,
    use,
    idPrefix: kind === 'http' ? 'r' : 'g',
    kindName: kind === 'http' ? 'HTTPRoute' : 'GRPCRoute',
  });
}
