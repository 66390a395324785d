// How a policy that cannot be used turns into a SnapshotProblem: its builder throws a
// PolicyProblem at the first field it cannot use, and the loop over policies records it and goes
// on with the next object. One bad object never affects another. Pure.
import { compareText, indexByKey, refOf } from './kube-objects';
import type { KubeObject, ObjectRef, PolicyType, ProblemLog } from './kube-objects';

/** Why a policy was dropped: a CamelCase reason and a one-line message naming field and value. */
export class PolicyProblem extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'PolicyProblem';
  }
}

/**
 * Builds every policy outside the ignored namespaces, in "<namespace>/<name>" order; objects
 * without a name or namespace are skipped, objects whose build throws a PolicyProblem are logged.
 */
export function buildPolicies<T>(
  objects: readonly KubeObject[],
  type: PolicyType,
  ignored: ReadonlySet<string>,
  log: ProblemLog,
  build: (object: KubeObject, ref: ObjectRef) => T,
): [string, T][] {
  const index = indexByKey(objects);
  const built: [string, T][] = [];
  for (const key of [...index.keys()].sort(compareText)) {
    const object = index.get(key) as KubeObject;
    const ref = refOf(object) as ObjectRef;
    if (ignored.has(ref.namespace)) continue;
    try {
      built.push([key, build(object, ref)]);
    } catch (error) {
      if (!(error instanceof PolicyProblem)) throw error;
      log.add(object, type, error.reason, error.message);
    }
  }
  return built;
}

/** A value quoted for a message: strings in double quotes, anything else as JSON. */
export function quoted(value: unknown): string {
  return JSON.stringify(value) ?? 'undefined';
}
