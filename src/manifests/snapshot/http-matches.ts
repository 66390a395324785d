// HTTPRouteGroup matches (specs.smi-spec.io/v1alpha3) and how policies name them. A match keeps
// its place in the group, since the order of rules is the user's. Methods are upper-cased and
// header names lower-cased, as nginx compares them. A match without a name, or with a field of the
// wrong shape or value, is a problem of the group and is left out, so a policy naming it finds no
// such match. Every value a match hands to nginx is checked here, because one that nginx refuses
// fails `nginx -t` for every sidecar whose configuration holds it:
// - methods: letters, "-" and "_", starting with a letter (so never a map keyword or a "~"
//   regex key), at most HTTP_METHOD_MAX_LENGTH; or "*";
// - header names: letters, digits and "-" (nginx's $http_ variables; it ignores names with "_"),
//   at most HTTP_HEADER_NAME_MAX_LENGTH, each name once whatever its case, at most
//   HTTP_MATCH_MAX_HEADERS per match;
// - pathRegex and header values: the PCRE2 subset of safe-regex.ts.
// Pure.
import {
  arrayOf,
  indexByKey,
  isObject,
  keyOf,
  objectOf,
  refOf,
  sortedRecord,
  stringOf,
} from './kube-objects';
import type { Json, KubeObject, PolicyType, ProblemLog } from './kube-objects';
import {
  HTTP_HEADER_NAME_MAX_LENGTH,
  HTTP_MATCH_MAX_HEADERS,
  HTTP_METHOD_MAX_LENGTH,
} from '../constants';
import { PolicyProblem, quoted } from './policy-problem';
import { findRegexProblem } from './safe-regex';
import type { SnapshotHttpMatch } from './types';

export const HTTP_ROUTE_GROUP: PolicyType = {
  apiVersion: 'specs.smi-spec.io/v1alpha3',
  kind: 'HTTPRouteGroup',
};

/** The usable matches of one group, in their order, and by name. */
export interface RouteGroup {
  readonly matches: readonly SnapshotHttpMatch[];
  readonly byName: ReadonlyMap<string, SnapshotHttpMatch>;
}

/** Groups by "<namespace>/<name>", outside the ignored namespaces. */
export function buildRouteGroups(
  groups: readonly KubeObject[],
  ignored: ReadonlySet<string>,
  log: ProblemLog,
): Map<string, RouteGroup> {
  const index = new Map<string, RouteGroup>();
  for (const [key, object] of indexByKey(groups)) {
    const ref = refOf(object);
    if (ref === undefined || ignored.has(ref.namespace)) continue;
    const matches: SnapshotHttpMatch[] = [];
    arrayOf(objectOf(object.spec).matches).forEach((entry, position) => {
      try {
        matches.push(toHttpMatch(entry, `spec.matches[${position}]`));
      } catch (error) {
        if (!(error instanceof PolicyProblem)) throw error;
        log.add(object, HTTP_ROUTE_GROUP, error.reason, error.message);
      }
    });
    const byName = new Map<string, SnapshotHttpMatch>();
    for (const match of matches) if (!byName.has(match.name)) byName.set(match.name, match);
    index.set(key, { matches, byName });
  }
  return index;
}

function toHttpMatch(entry: unknown, field: string): SnapshotHttpMatch {
  const match = objectOf(entry);
  const name = stringOf(match.name);
  if (name === undefined) throw new PolicyProblem('InvalidMatch', `${field}.name is missing`);
  const methods = arrayOf(match.methods).map((method, position) => {
    if (typeof method !== 'string' || !(method === '*' || METHOD.test(method))) {
      throw new PolicyProblem(
        'InvalidMatch',
        `${field}.methods[${position}] ${quoted(method)}: expected an HTTP method (letters, "-", "_", at most ${HTTP_METHOD_MAX_LENGTH}) or "*"`,
      );
    }
    return method.toUpperCase();
  });
  const pathRegex = match.pathRegex;
  if (pathRegex !== undefined && typeof pathRegex !== 'string') {
    throw new PolicyProblem('InvalidMatch', `${field}.pathRegex: expected a string`);
  }
  if (pathRegex !== undefined) checkRegex(pathRegex, `${field}.pathRegex`);
  return {
    name,
    methods,
    ...(pathRegex === undefined || pathRegex === '' ? {} : { pathRegex }),
    headers: headersOf(match.headers, field),
  };
}

function headersOf(value: unknown, field: string): Record<string, string> {
  if (value !== undefined && !isObject(value)) {
    throw new PolicyProblem('InvalidMatch', `${field}.headers: expected a map of name to regex`);
  }
  const entries = new Map<string, string>();
  const names = Object.entries(objectOf(value));
  if (names.length > HTTP_MATCH_MAX_HEADERS) {
    throw new PolicyProblem(
      'InvalidMatch',
      `${field}.headers: ${names.length} headers, expected at most ${HTTP_MATCH_MAX_HEADERS}`,
    );
  }
  for (const [name, pattern] of names) {
    const at = `${field}.headers[${quoted(name)}]`;
    if (!HEADER_NAME.test(name)) {
      throw new PolicyProblem(
        'InvalidMatch',
        `${at}: expected a header name (letters, digits and "-", at most ${HTTP_HEADER_NAME_MAX_LENGTH})`,
      );
    }
    if (typeof pattern !== 'string') {
      throw new PolicyProblem('InvalidMatch', `${at}: expected a string`);
    }
    if (entries.has(name.toLowerCase())) {
      throw new PolicyProblem('InvalidMatch', `${at}: header named twice (names ignore case)`);
    }
    checkRegex(pattern, at);
    entries.set(name.toLowerCase(), pattern);
  }
  return sortedRecord(entries);
}

const METHOD = new RegExp(`^[A-Za-z][A-Za-z_-]{0,${HTTP_METHOD_MAX_LENGTH - 1}}$`);
const HEADER_NAME = new RegExp(`^[A-Za-z0-9-]{1,${HTTP_HEADER_NAME_MAX_LENGTH}}$`);
/** Characters of a pattern quoted in a message; the offset points into the whole of it. */
const QUOTED_PATTERN_MAX = 64;

/** Throws an InvalidRegex PolicyProblem naming field when nginx must not be given pattern. */
function checkRegex(pattern: string, field: string): void {
  const problem = findRegexProblem(pattern);
  if (problem === undefined) return;
  const shown =
    pattern.length > QUOTED_PATTERN_MAX ? `${pattern.slice(0, QUOTED_PATTERN_MAX)}…` : pattern;
  throw new PolicyProblem(
    'InvalidRegex',
    `${field} ${quoted(shown)}: ${problem.reason} at offset ${problem.offset}`,
  );
}

/**
 * The matches a rule `{kind: HTTPRouteGroup, name, matches}` selects from a group in `namespace`:
 * the named ones in the rule's order, or every match of the group when none is named. Throws a
 * PolicyProblem naming `field` when the group or a match does not exist.
 */
export function resolveRouteGroupRule(
  groups: ReadonlyMap<string, RouteGroup>,
  namespace: string,
  rule: Json,
  field: string,
): readonly SnapshotHttpMatch[] {
  const name = stringOf(rule.name);
  if (name === undefined) throw new PolicyProblem('InvalidField', `${field}.name is missing`);
  const group = groups.get(keyOf(namespace, name));
  if (group === undefined) {
    throw new PolicyProblem(
      'UnknownRouteGroup',
      `${field}.name "${name}": no HTTPRouteGroup ${keyOf(namespace, name)}`,
    );
  }
  const named = arrayOf(rule.matches);
  if (named.length === 0) return group.matches;
  return named.map((entry, position) => {
    const match = typeof entry === 'string' ? group.byName.get(entry) : undefined;
    if (match === undefined) {
      throw new PolicyProblem(
        'UnknownMatch',
        `${field}.matches[${position}] ${quoted(entry)}: no such match in HTTPRouteGroup ${keyOf(namespace, name)}`,
      );
    }
    return match;
  });
}
