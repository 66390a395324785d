// The matches and filters of one Gateway API HTTPRouteRule (gateway.networking.k8s.io/v1), read
// into the snapshot's shape. Everything here either becomes part of a SnapshotRouteRule or throws
// an UnsupportedValue PolicyProblem naming the field, which makes the whole route not Accepted:
// a route is applied as written or not at all, never with a part silently left out. Decisions:
// - A rule without matches has one, PathPrefix "/"; a match without a path has PathPrefix "/"; a
//   path without a type is a PathPrefix (the CRD's defaults, for objects that skipped them).
// - Exact and PathPrefix values are absolute paths in the Gateway API's character set, without
//   "//", "/./", "/../", "%2f" or a trailing "/." or "/.."; a PathPrefix loses its trailing "/"
//   ("/" stays "/"). RegularExpression paths, header and query values are the PCRE2 subset of
//   safe-regex.ts, as HTTPRouteGroup patterns are (http-matches.ts): nginx refuses the whole
//   configuration over one pattern it cannot compile.
// - Header and query matches are Exact (the default) or RegularExpression. Header names are
//   letters, digits and "-" (nginx reads request headers by name through $http_ variables, which
//   cannot name others), compared without case, lower-cased; query parameter names are letters,
//   digits, "-", "_" and ".", kept as written. Of two matches on one name the first counts, as the
//   spec says; both lists are sorted by name. At most HTTP_MATCH_MAX_HEADERS of each per match.
//   The method is upper-cased.
// - Filters: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect and URLRewrite, each
//   at most once, RequestMirror any number of times, and not RequestRedirect with URLRewrite.
//   ExtensionRef, CORS, ExternalAuth and any other type are refused. A header modifier's names are letters, digits,
//   "-" and "_"; a name given twice (without case) keeps its first entry.
// - A redirect's statusCode defaults to 302 and is 301, 302, 303, 307 or 308; ReplacePrefixMatch
//   (redirect or rewrite) needs every match of the rule to be a PathPrefix.
// - RequestMirror may be given several times; its backendRef is resolved like a backend's
//   (gamma-routes.ts), its share is `percent` or `fraction` (default all requests).
// - rules[].timeouts: Durations as GEP-2257 writes them, "0s" for none; backendRequest may not
//   be longer than request. retry (in the experimental channel's CRD): attempts 1 to
//   RETRY_MAX_ATTEMPTS (1 when left out), codes 500-599 (500, 502, 503 and 504 when left out),
//   backoff a Duration. sessionPersistence is refused: this mesh does not implement it.
// - Values that reach nginx as text (Exact values, header values, hostnames) hold no control
//   characters.
// Pure.
import {
  HTTP_HEADER_NAME_MAX_LENGTH,
  HTTP_MATCH_MAX_HEADERS,
  HTTP_METHOD_MAX_LENGTH,
} from '../constants';
import {
  arrayOf,
  compareText,
  countOf,
  isObject,
  objectOf,
  portOf,
  stringOf,
} from './kube-objects';
import type { Json } from './kube-objects';
import { PolicyProblem, quoted } from './policy-problem';
import { findRegexProblem } from './safe-regex';
import type {
  SnapshotHeader,
  SnapshotHeaderModifier,
  SnapshotPathModifier,
  SnapshotRouteMatch,
  SnapshotRoutePathMatch,
  SnapshotRouteRedirect,
  SnapshotRouteRewrite,
  SnapshotRouteRetry,
  SnapshotRouteRule,
  SnapshotRouteTimeouts,
  SnapshotRouteValueMatch,
} from './types';

/** The reason of every refusal here, as the Gateway API names it. */
export const UNSUPPORTED_VALUE = 'UnsupportedValue';

/** The Gateway API's longest path, header value and hostname. */
const PATH_MAX_LENGTH = 1024;
const HEADER_VALUE_MAX_LENGTH = 4096;
const HOSTNAME_MAX_LENGTH = 253;
/** Most entries of each list of a header modifier (the CRD's bound). */
const HEADER_MODIFIER_MAX_ENTRIES = 16;
const REDIRECT_STATUS_CODES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const DEFAULT_REDIRECT_STATUS_CODE = 302;
const ROOT_PATH = '/';

const PATH_CHARACTERS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+$/;
const PATH_FORBIDDEN = /\/\/|\/\.\/|\/\.\.\/|%2[fF]|\/\.\.?$/;
const MATCH_HEADER_NAME = new RegExp(`^[A-Za-z0-9-]{1,${HTTP_HEADER_NAME_MAX_LENGTH}}$`);
const QUERY_NAME = new RegExp(`^[A-Za-z0-9._-]{1,${HTTP_HEADER_NAME_MAX_LENGTH}}$`);
const MODIFIER_HEADER_NAME = new RegExp(`^[A-Za-z0-9_-]{1,${HTTP_HEADER_NAME_MAX_LENGTH}}$`);
const METHOD = new RegExp(`^[A-Za-z]{1,${HTTP_METHOD_MAX_LENGTH}}$`);
const HOSTNAME = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
// eslint-disable-next-line no-control-regex -- the point is to find control characters
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Characters of a pattern quoted in a message; the offset points into the whole of it. */
const QUOTED_PATTERN_MAX = 64;

const SUPPORTED_FILTERS = new Set([
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestRedirect',
  'URLRewrite',
  'RequestMirror',
]);
/** Filters a rule may hold more than once. */
const REPEATABLE_FILTERS = new Set(['RequestMirror']);
const UNSUPPORTED_RULE_FIELDS = ['sessionPersistence'] as const;
/** The codes a retry defaults to: those the Gateway API says every implementation supports. */
const DEFAULT_RETRY_CODES = [500, 502, 503, 504];
/** Most retries of one request: each is a location of the sidecar's configuration. */
export const RETRY_MAX_ATTEMPTS = 10;
/** A Gateway API Duration (GEP-2257): up to four "<1-5 digits><h|m|s|ms>" parts. */
const DURATION = /^(?:[0-9]{1,5}(?:h|ms|m|s)){1,4}$/;
const DURATION_PART = /([0-9]{1,5})(h|ms|m|s)/g;
const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
};

function unsupported(message: string): PolicyProblem {
  return new PolicyProblem(UNSUPPORTED_VALUE, message);
}

/** Whether the rule answers with a redirect, so that its backendRefs are not used. */
export function isRedirectRule(rule: Json): boolean {
  return arrayOf(rule.filters).some((filter) => objectOf(filter).type === 'RequestRedirect');
}

/** The rule without its backends; throws an UnsupportedValue PolicyProblem naming the field. */
export function toRuleShape(rule: Json, field: string): Omit<SnapshotRouteRule, 'backends'> {
  for (const name of UNSUPPORTED_RULE_FIELDS) {
    if (rule[name] !== undefined && rule[name] !== null) {
      throw unsupported(`${field}.${name}: not supported by this mesh`);
    }
  }
  const entries = arrayOf(rule.matches);
  const matches =
    entries.length === 0
      ? [defaultMatch()]
      : entries.map((entry, position) => toMatch(entry, `${field}.matches[${position}]`));
  const name = stringOf(rule.name);
  const timeouts = toTimeouts(rule.timeouts, `${field}.timeouts`);
  const retry = toRetry(rule.retry, `${field}.retry`);
  return {
    ...(name === undefined ? {} : { name }),
    matches,
    ...toFilters(rule, field, matches),
    ...(timeouts === undefined ? {} : { timeouts }),
    ...(retry === undefined ? {} : { retry }),
  };
}

/** rules[].retry: attempts 1 to RETRY_MAX_ATTEMPTS, codes 500-599, backoff a Duration. */
function toRetry(value: unknown, field: string): SnapshotRouteRetry | undefined {
  if (value === undefined || value === null) return undefined;
  const retry = objectOf(value);
  const attempts = retry.attempts === undefined ? 1 : countOf(retry.attempts);
  if (attempts === undefined || attempts < 1 || attempts > RETRY_MAX_ATTEMPTS) {
    throw unsupported(
      `${field}.attempts ${quoted(retry.attempts)}: expected an integer from 1 to ${RETRY_MAX_ATTEMPTS}`,
    );
  }
  const given = arrayOf(retry.codes);
  const codes = given.map((code, position) => {
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 500 || code > 599) {
      throw unsupported(
        `${field}.codes[${position}] ${quoted(code)}: expected a status from 500 to 599`,
      );
    }
    return code;
  });
  return {
    attempts,
    codes: [...new Set(codes.length === 0 ? DEFAULT_RETRY_CODES : codes)].sort((a, b) => a - b),
    backoffMs: retry.backoff === undefined ? 0 : durationMs(retry.backoff, `${field}.backoff`),
  };
}

/** A Gateway API Duration in milliseconds; throws naming the field when it is not one. */
export function durationMs(value: unknown, field: string): number {
  if (typeof value !== 'string' || !DURATION.test(value)) {
    throw unsupported(`${field} ${quoted(value)}: expected a duration such as "10s" or "1m30s"`);
  }
  let total = 0;
  for (const [, amount, unit] of value.matchAll(DURATION_PART)) {
    total += Number(amount) * (DURATION_UNIT_MS[unit ?? ''] ?? 0);
  }
  return total;
}

/** rules[].timeouts; backendRequest may not exceed request (both non-zero), as the CRD says. */
function toTimeouts(value: unknown, field: string): SnapshotRouteTimeouts | undefined {
  if (value === undefined || value === null) return undefined;
  const timeouts = objectOf(value);
  const requestMs =
    timeouts.request === undefined ? undefined : durationMs(timeouts.request, `${field}.request`);
  const backendRequestMs =
    timeouts.backendRequest === undefined
      ? undefined
      : durationMs(timeouts.backendRequest, `${field}.backendRequest`);
  if (
    requestMs !== undefined &&
    backendRequestMs !== undefined &&
    requestMs > 0 &&
    (backendRequestMs === 0 || backendRequestMs > requestMs)
  ) {
    throw unsupported(
      `${field}.backendRequest ${quoted(timeouts.backendRequest)}: longer than request ${quoted(timeouts.request)}`,
    );
  }
  if (requestMs === undefined && backendRequestMs === undefined) return undefined;
  return {
    ...(requestMs === undefined ? {} : { requestMs }),
    ...(backendRequestMs === undefined ? {} : { backendRequestMs }),
  };
}

/** GRPCRoute filters this mesh applies (a mirror would hold a streamed call's body). */
const GRPC_FILTERS = new Set(['RequestHeaderModifier', 'ResponseHeaderModifier']);
const GRPC_SERVICE = /^(?:[A-Za-z_][A-Za-z_0-9]*\.)*[A-Za-z_][A-Za-z_0-9]*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

/**
 * A GRPCRouteRule without its backends, its matches as the HTTP/2 paths of the calls they take
 * ("/<service>/<method>"): service and method Exact is an Exact path, a service alone a
 * PathPrefix "/<service>", anything else a RegularExpression path. Throws an UnsupportedValue
 * PolicyProblem naming the field.
 */
export function toGrpcRuleShape(rule: Json, field: string): Omit<SnapshotRouteRule, 'backends'> {
  if (rule.sessionPersistence !== undefined && rule.sessionPersistence !== null) {
    throw unsupported(`${field}.sessionPersistence: not supported by this mesh`);
  }
  const entries = arrayOf(rule.matches);
  const matches =
    entries.length === 0
      ? [defaultMatch()]
      : entries.map((entry, position) => toGrpcMatch(entry, `${field}.matches[${position}]`));
  arrayOf(rule.filters).forEach((entry, position) => {
    const type = objectOf(entry).type;
    if (typeof type !== 'string' || !GRPC_FILTERS.has(type)) {
      throw unsupported(
        `${field}.filters[${position}].type ${quoted(type)}: not supported by this mesh for GRPCRoutes`,
      );
    }
  });
  const name = stringOf(rule.name);
  return { ...(name === undefined ? {} : { name }), matches, ...toFilters(rule, field, matches) };
}

function toGrpcMatch(entry: unknown, field: string): SnapshotRouteMatch {
  const match = objectOf(entry);
  return {
    path: grpcPath(match.method, `${field}.method`),
    headers: toValueMatches(match.headers, `${field}.headers`, 'header'),
    queryParams: [],
  };
}

function grpcPath(value: unknown, field: string): SnapshotRoutePathMatch {
  if (value === undefined || value === null) return { type: 'PathPrefix', value: ROOT_PATH };
  const method = objectOf(value);
  const type = method.type ?? 'Exact';
  const service = stringOf(method.service);
  const name = stringOf(method.method);
  if (service === undefined && name === undefined) {
    throw unsupported(`${field}: expected a service, a method or both`);
  }
  if (type === 'Exact') return exactGrpcPath(service, name, field);
  if (type !== 'RegularExpression') {
    throw unsupported(`${field}.type ${quoted(type)}: expected Exact or RegularExpression`);
  }
  if (service !== undefined) checkRegex(service, `${field}.service`);
  if (name !== undefined) checkRegex(name, `${field}.method`);
  const part = (text: string | undefined): string => (text === undefined ? '[^/]+' : `(?:${text})`);
  return { type: 'RegularExpression', value: `/${part(service)}/${part(name)}` };
}

function exactGrpcPath(
  service: string | undefined,
  name: string | undefined,
  field: string,
): SnapshotRoutePathMatch {
  if (service !== undefined && !GRPC_SERVICE.test(service)) {
    throw unsupported(`${field}.service ${quoted(service)}: expected a gRPC service name`);
  }
  if (name !== undefined && !GRPC_METHOD.test(name)) {
    throw unsupported(`${field}.method ${quoted(name)}: expected a gRPC method name`);
  }
  if (service === undefined) return { type: 'RegularExpression', value: `/[^/]+/${name ?? ''}` };
  if (name === undefined) return { type: 'PathPrefix', value: `/${service}` };
  return { type: 'Exact', value: `/${service}/${name}` };
}

function defaultMatch(): SnapshotRouteMatch {
  return { path: { type: 'PathPrefix', value: ROOT_PATH }, headers: [], queryParams: [] };
}

function toMatch(entry: unknown, field: string): SnapshotRouteMatch {
  const match = objectOf(entry);
  const method = match.method;
  if (method !== undefined && (typeof method !== 'string' || !METHOD.test(method))) {
    throw unsupported(
      `${field}.method ${quoted(method)}: expected an HTTP method (letters, at most ${HTTP_METHOD_MAX_LENGTH})`,
    );
  }
  return {
    path: toPathMatch(match.path, `${field}.path`),
    headers: toValueMatches(match.headers, `${field}.headers`, 'header'),
    queryParams: toValueMatches(match.queryParams, `${field}.queryParams`, 'query'),
    ...(method === undefined ? {} : { method: method.toUpperCase() }),
  };
}

function toPathMatch(value: unknown, field: string): SnapshotRoutePathMatch {
  const path = objectOf(value);
  const type = path.type ?? 'PathPrefix';
  const text = path.value ?? ROOT_PATH;
  if (typeof text !== 'string') throw unsupported(`${field}.value: expected a string`);
  switch (type) {
    case 'Exact':
      checkPath(text, `${field}.value`);
      return { type: 'Exact', value: text };
    case 'PathPrefix':
      checkPath(text, `${field}.value`);
      return {
        type: 'PathPrefix',
        value: text.length > 1 && text.endsWith('/') ? text.slice(0, -1) : text,
      };
    case 'RegularExpression':
      checkRegex(text, `${field}.value`);
      return { type: 'RegularExpression', value: text };
    default:
      throw unsupported(
        `${field}.type ${quoted(type)}: expected Exact, PathPrefix or RegularExpression`,
      );
  }
}

/** Throws unless text is an absolute path nginx and the Gateway API both accept. */
function checkPath(text: string, field: string): void {
  if (
    !text.startsWith('/') ||
    text.length > PATH_MAX_LENGTH ||
    !PATH_CHARACTERS.test(text) ||
    PATH_FORBIDDEN.test(text)
  ) {
    throw unsupported(
      `${field} ${quoted(text)}: expected an absolute path of at most ${PATH_MAX_LENGTH} characters (letters, digits, -._~!$&'()*+,;=:@/ and %XX; no "//", "/./", "/../", "%2F")`,
    );
  }
}

/** Throws naming field when nginx must not be given pattern. */
function checkRegex(pattern: string, field: string): void {
  const problem = findRegexProblem(pattern);
  if (problem === undefined) return;
  const shown =
    pattern.length > QUOTED_PATTERN_MAX ? `${pattern.slice(0, QUOTED_PATTERN_MAX)}…` : pattern;
  throw unsupported(`${field} ${quoted(shown)}: ${problem.reason} at offset ${problem.offset}`);
}

/** Throws unless value is text nginx can be given: no control characters, at most max long. */
function checkText(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string') throw unsupported(`${field}: expected a string`);
  if (value.length > max || CONTROL.test(value)) {
    throw unsupported(
      `${field} ${quoted(value.slice(0, QUOTED_PATTERN_MAX))}: expected at most ${max} characters, no control characters`,
    );
  }
  return value;
}

function toValueMatches(
  value: unknown,
  field: string,
  of: 'header' | 'query',
): SnapshotRouteValueMatch[] {
  const entries = arrayOf(value);
  if (entries.length > HTTP_MATCH_MAX_HEADERS) {
    throw unsupported(
      `${field}: ${entries.length} entries, expected at most ${HTTP_MATCH_MAX_HEADERS}`,
    );
  }
  const byName = new Map<string, SnapshotRouteValueMatch>();
  entries.forEach((entry, position) => {
    const match = toValueMatch(objectOf(entry), `${field}[${position}]`, of);
    if (!byName.has(match.name)) byName.set(match.name, match);
  });
  return [...byName.values()].sort((a, b) => compareText(a.name, b.name));
}

function toValueMatch(match: Json, field: string, of: 'header' | 'query'): SnapshotRouteValueMatch {
  const name = match.name;
  const pattern = of === 'header' ? MATCH_HEADER_NAME : QUERY_NAME;
  if (typeof name !== 'string' || !pattern.test(name)) {
    const allowed =
      of === 'header' ? 'letters, digits and "-"' : 'letters, digits, "-", "_" and "."';
    throw unsupported(
      `${field}.name ${quoted(name)}: expected a ${of === 'header' ? 'header' : 'query parameter'} name (${allowed}, at most ${HTTP_HEADER_NAME_MAX_LENGTH})`,
    );
  }
  const type = match.type ?? 'Exact';
  if (type !== 'Exact' && type !== 'RegularExpression') {
    throw unsupported(`${field}.type ${quoted(type)}: expected Exact or RegularExpression`);
  }
  const value = checkText(match.value, `${field}.value`, HEADER_VALUE_MAX_LENGTH);
  if (type === 'RegularExpression') checkRegex(value, `${field}.value`);
  return { name: of === 'header' ? name.toLowerCase() : name, type, value };
}

type RuleFilters = Pick<
  SnapshotRouteRule,
  'requestHeaders' | 'responseHeaders' | 'redirect' | 'rewrite'
>;

function toFilters(rule: Json, field: string, matches: readonly SnapshotRouteMatch[]): RuleFilters {
  const seen = new Map<string, Json>();
  const fieldOf = new Map<string, string>();
  arrayOf(rule.filters).forEach((entry, position) => {
    const filter = objectOf(entry);
    const at = `${field}.filters[${position}]`;
    const type = filter.type;
    if (typeof type !== 'string' || type === '') throw unsupported(`${at}.type is missing`);
    if (!SUPPORTED_FILTERS.has(type)) {
      throw unsupported(`${at}.type ${quoted(type)}: not supported by this mesh`);
    }
    if (seen.has(type) && !REPEATABLE_FILTERS.has(type)) {
      throw unsupported(`${at}.type ${quoted(type)}: given twice in one rule`);
    }
    seen.set(type, filter);
    fieldOf.set(type, at);
  });
  if (seen.has('RequestRedirect') && seen.has('URLRewrite')) {
    throw unsupported(
      `${fieldOf.get('URLRewrite') ?? field}.type "URLRewrite": not allowed with a RequestRedirect in one rule`,
    );
  }
  const request = seen.get('RequestHeaderModifier');
  const response = seen.get('ResponseHeaderModifier');
  const redirect = seen.get('RequestRedirect');
  const rewrite = seen.get('URLRewrite');
  const at = (type: string): string => fieldOf.get(type) ?? field;
  return {
    ...(request === undefined
      ? {}
      : {
          requestHeaders: toHeaderModifier(
            request.requestHeaderModifier,
            `${at('RequestHeaderModifier')}.requestHeaderModifier`,
          ),
        }),
    ...(response === undefined
      ? {}
      : {
          responseHeaders: toHeaderModifier(
            response.responseHeaderModifier,
            `${at('ResponseHeaderModifier')}.responseHeaderModifier`,
          ),
        }),
    ...(redirect === undefined
      ? {}
      : {
          redirect: toRedirect(
            redirect.requestRedirect,
            `${at('RequestRedirect')}.requestRedirect`,
            matches,
          ),
        }),
    ...(rewrite === undefined
      ? {}
      : { rewrite: toRewrite(rewrite.urlRewrite, `${at('URLRewrite')}.urlRewrite`, matches) }),
  };
}

/** The filter's own object, which its type requires. */
function filterBody(value: unknown, field: string): Json {
  if (!isObject(value)) throw unsupported(`${field} is missing`);
  return value;
}

function toHeaderModifier(value: unknown, field: string): SnapshotHeaderModifier {
  const modifier = filterBody(value, field);
  const remove = new Map<string, string>();
  boundedList(modifier.remove, `${field}.remove`).forEach((name, position) => {
    const checked = headerName(name, `${field}.remove[${position}]`);
    if (!remove.has(checked.toLowerCase())) remove.set(checked.toLowerCase(), checked);
  });
  return {
    set: headerList(modifier.set, `${field}.set`),
    add: headerList(modifier.add, `${field}.add`),
    remove: [...remove.values()],
  };
}

function boundedList(value: unknown, field: string): readonly unknown[] {
  const entries = arrayOf(value);
  if (entries.length > HEADER_MODIFIER_MAX_ENTRIES) {
    throw unsupported(
      `${field}: ${entries.length} entries, expected at most ${HEADER_MODIFIER_MAX_ENTRIES}`,
    );
  }
  return entries;
}

function headerName(value: unknown, field: string): string {
  if (typeof value !== 'string' || !MODIFIER_HEADER_NAME.test(value)) {
    throw unsupported(
      `${field} ${quoted(value)}: expected a header name (letters, digits, "-" and "_", at most ${HTTP_HEADER_NAME_MAX_LENGTH})`,
    );
  }
  return value;
}

function headerList(value: unknown, field: string): SnapshotHeader[] {
  const byName = new Map<string, SnapshotHeader>();
  boundedList(value, field).forEach((entry, position) => {
    const header = objectOf(entry);
    const at = `${field}[${position}]`;
    const name = headerName(header.name, `${at}.name`);
    const text = checkText(header.value, `${at}.value`, HEADER_VALUE_MAX_LENGTH);
    if (!byName.has(name.toLowerCase())) byName.set(name.toLowerCase(), { name, value: text });
  });
  return [...byName.values()];
}

function toRedirect(
  value: unknown,
  field: string,
  matches: readonly SnapshotRouteMatch[],
): SnapshotRouteRedirect {
  const redirect = filterBody(value, field);
  const scheme = redirect.scheme;
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    throw unsupported(`${field}.scheme ${quoted(scheme)}: expected http or https`);
  }
  const port = optionalPort(redirect.port, `${field}.port`);
  const statusCode = redirect.statusCode ?? DEFAULT_REDIRECT_STATUS_CODE;
  if (typeof statusCode !== 'number' || !REDIRECT_STATUS_CODES.has(statusCode)) {
    throw unsupported(
      `${field}.statusCode ${quoted(statusCode)}: expected 301, 302, 303, 307 or 308`,
    );
  }
  const hostname = optionalHostname(redirect.hostname, `${field}.hostname`);
  const path = optionalPathModifier(redirect.path, `${field}.path`, matches);
  return {
    ...(scheme === undefined ? {} : { scheme }),
    ...(hostname === undefined ? {} : { hostname }),
    ...(port === undefined ? {} : { port }),
    ...(path === undefined ? {} : { path }),
    statusCode,
  };
}

function optionalPort(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  const port = portOf(value);
  if (port === undefined) throw unsupported(`${field} ${quoted(value)}: expected a port 1-65535`);
  return port;
}

function toRewrite(
  value: unknown,
  field: string,
  matches: readonly SnapshotRouteMatch[],
): SnapshotRouteRewrite {
  const rewrite = filterBody(value, field);
  const hostname = optionalHostname(rewrite.hostname, `${field}.hostname`);
  const path = optionalPathModifier(rewrite.path, `${field}.path`, matches);
  return {
    ...(hostname === undefined ? {} : { hostname }),
    ...(path === undefined ? {} : { path }),
  };
}

function optionalHostname(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > HOSTNAME_MAX_LENGTH || !HOSTNAME.test(value)) {
    throw unsupported(
      `${field} ${quoted(value)}: expected a lower-case DNS name (RFC 1123, at most ${HOSTNAME_MAX_LENGTH})`,
    );
  }
  return value;
}

function optionalPathModifier(
  value: unknown,
  field: string,
  matches: readonly SnapshotRouteMatch[],
): SnapshotPathModifier | undefined {
  if (value === undefined) return undefined;
  const path = objectOf(value);
  const type = path.type;
  if (type !== 'ReplaceFullPath' && type !== 'ReplacePrefixMatch') {
    throw unsupported(
      `${field}.type ${quoted(type)}: expected ReplaceFullPath or ReplacePrefixMatch`,
    );
  }
  const key = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const text = path[key];
  if (typeof text !== 'string') throw unsupported(`${field}.${key} is missing`);
  checkPath(text, `${field}.${key}`);
  if (type === 'ReplacePrefixMatch' && matches.some((match) => match.path.type !== 'PathPrefix')) {
    throw unsupported(
      `${field}.type "ReplacePrefixMatch": needs every match of the rule to be a PathPrefix`,
    );
  }
  return { type, value: text };
}
