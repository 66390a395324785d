// HTTPRouteGroup matches (specs.smi-spec.io/v1alpha3) and how policies name them. A match keeps
// its place in the group, since the order of rules is the user's. Methods are upper-cased and
// header names lower-cased, as nginx compares them. A match without a name, or with fields of the
// wrong shape, is a problem of the group and is left out, so a policy naming it finds no such
// match. Pure.
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
import { PolicyProblem, quoted } from './policy-problem';
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
    if (typeof method !== 'string' || method === '') {
      throw new PolicyProblem(
        'InvalidMatch',
        `${field}.methods[${position}] ${quoted(method)}: expected an HTTP method`,
      );
    }
    return method.toUpperCase();
  });
  const pathRegex = match.pathRegex;
  if (pathRegex !== undefined && typeof pathRegex !== 'string') {
    throw new PolicyProblem('InvalidMatch', `${field}.pathRegex: expected a string`);
  }
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
  const entries: [string, string][] = [];
  for (const [name, pattern] of Object.entries(objectOf(value))) {
    if (typeof pattern !== 'string') {
      throw new PolicyProblem('InvalidMatch', `${field}.headers.${name}: expected a string`);
    }
    entries.push([name.toLowerCase(), pattern]);
  }
  return sortedRecord(entries);
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
