// Tells users what became of their policies, where kubectl shows it: a Warning Event per problem
// the snapshot builder found (kubectl describe), and an Accepted condition in the object's
// status (kubectl get -o yaml, and tools that wait for conditions). A snapshot is rebuilt on
// every cluster change, so both are written only when they would say something new: one Event
// per (object generation, reason), and a status patch only when the condition changed.
import { objectOf } from '../../manifests/snapshot/kube-objects';
import {
  CONTROLLER_NAME,
  MESH_CONFIG_API_VERSION,
  MESH_CONFIG_RESOURCE_NAME,
} from '../../manifests/constants';
import { collectionPath, objectPath, resourceType } from '../../manifests/install/resources';
import type { SnapshotProblem } from '../../manifests/snapshot/types';
import type { Clock } from '../clock';
import type { KubeClient } from '../kube/client';
import { KubeApiError } from '../kube/client';
import type { Logger } from '../role/log';

/** The condition type this controller owns on every policy object. */
export const ACCEPTED_CONDITION = 'Accepted';

/** A policy object as the cache holds it (raw JSON). */
export type PolicyObject = Readonly<Record<string, unknown>>;

export interface PolicyStatusOptions {
  readonly client: KubeClient;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Namespace of the control plane, where MeshConfig nginx-mesh-config lives. */
  readonly meshNamespace: string;
  /** This controller's pod name, as the Events' reportingInstance. */
  readonly instance: string;
}

/** What one report wrote. */
export interface PolicyStatusReport {
  readonly eventsCreated: number;
  readonly statusPatched: number;
}

export interface PolicyStatusWriter {
  /**
   * Brings the Events and Accepted conditions of every policy in `policies` in line with
   * `problems` (an object without problems is Accepted). Failures are logged, never thrown: one
   * object's failure does not stop the others, and the next report tries again.
   */
  report(
    problems: readonly SnapshotProblem[],
    policies: readonly PolicyObject[],
  ): Promise<PolicyStatusReport>;
  /** Sets status.transparent of MeshConfig nginx-mesh-config, unless it was set so already. */
  setMeshConfigTransparent(value: boolean): Promise<void>;
}

interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime?: string;
}

interface PolicyRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
  readonly conditions: readonly Record<string, unknown>[];
}

const MAX_NAME_LENGTH = 253;

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function refOf(object: PolicyObject): PolicyRef {
  const metadata = objectOf(object.metadata);
  const conditions = objectOf(object.status).conditions;
  return {
    apiVersion: text(object.apiVersion),
    kind: text(object.kind),
    namespace: text(metadata.namespace),
    name: text(metadata.name),
    uid: text(metadata.uid),
    generation: typeof metadata.generation === 'number' ? metadata.generation : 0,
    conditions: Array.isArray(conditions) ? conditions.map((condition) => objectOf(condition)) : [],
  };
}

/** Problems are matched by kind, namespace and name: a v1alpha1 RateLimit is read as v1alpha2. */
const problemKey = (kind: string, namespace: string, name: string): string =>
  `${kind}/${namespace}/${name}`;

/** The Accepted condition a policy should carry, without its transition time. */
export function acceptedCondition(
  problems: readonly SnapshotProblem[],
  generation: number,
): Condition {
  if (problems.length === 0) {
    return {
      type: ACCEPTED_CONDITION,
      status: 'True',
      reason: 'Accepted',
      message: `accepted by ${CONTROLLER_NAME}`,
      observedGeneration: generation,
    };
  }
  const sorted = [...problems].sort(
    (a, b) => a.reason.localeCompare(b.reason) || a.message.localeCompare(b.message),
  );
  return {
    type: ACCEPTED_CONDITION,
    status: 'False',
    reason: sorted[0]?.reason ?? 'Invalid',
    message: [...new Set(sorted.map((problem) => problem.message))].join('; '),
    observedGeneration: generation,
  };
}

const sameCondition = (
  a: Readonly<Partial<Record<keyof Condition, unknown>>>,
  b: Condition,
): boolean =>
  a.status === b.status &&
  a.reason === b.reason &&
  a.message === b.message &&
  a.observedGeneration === b.observedGeneration;

/** A stable Event name: the same problem of the same generation is never recorded twice. */
function eventName(policy: PolicyRef, reason: string): string {
  const suffix = `.${policy.uid.slice(0, 8)}.${policy.generation}.${reason.toLowerCase()}`;
  return `${policy.name.slice(0, MAX_NAME_LENGTH - suffix.length)}${suffix}`;
}

function statusPath(policy: PolicyRef): string {
  return `${objectPath(policy)}/status`;
}

export function createPolicyStatusWriter(options: PolicyStatusOptions): PolicyStatusWriter {
  const { client, logger } = options;
  /** uid → "generation/reason" of the Events already recorded. */
  const recorded = new Map<string, Set<string>>();
  /** uid → the condition last written, while the cache may still show the one before. */
  const written = new Map<string, Condition>();
  const missingStatus = new Set<string>();
  let transparent: boolean | undefined;

  const recordEvent = async (policy: PolicyRef, problem: SnapshotProblem): Promise<boolean> => {
    const seen = recorded.get(policy.uid) ?? new Set<string>();
    recorded.set(policy.uid, seen);
    const key = `${policy.generation}/${problem.reason}`;
    if (seen.has(key)) return false;
    const now = options.clock.now().toISOString();
    try {
      await client.create(collectionPath(resourceType('v1', 'Event'), policy.namespace), {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: eventName(policy, problem.reason), namespace: policy.namespace },
        involvedObject: {
          apiVersion: policy.apiVersion,
          kind: policy.kind,
          namespace: policy.namespace,
          name: policy.name,
          uid: policy.uid,
        },
        type: 'Warning',
        reason: problem.reason,
        message: problem.message,
        source: { component: CONTROLLER_NAME },
        reportingComponent: CONTROLLER_NAME,
        reportingInstance: options.instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
    } catch (error) {
      // 409: recorded before this process started.
      if (!(error instanceof KubeApiError && error.status === 409)) throw error;
      seen.add(key);
      return false;
    }
    seen.add(key);
    return true;
  };

  const patchCondition = async (policy: PolicyRef, wanted: Condition): Promise<boolean> => {
    const current = policy.conditions.find((each) => each.type === ACCEPTED_CONDITION);
    const last = written.get(policy.uid);
    if (current !== undefined && sameCondition(current, wanted)) return false;
    if (last !== undefined && sameCondition(last, wanted)) return false;
    const kept = current?.status === wanted.status ? text(current.lastTransitionTime) : '';
    const condition: Condition = {
      ...wanted,
      lastTransitionTime: kept === '' ? options.clock.now().toISOString() : kept,
    };
    const conditions = [
      ...policy.conditions.filter((each) => each.type !== ACCEPTED_CONDITION),
      condition,
    ];
    try {
      await client.mergePatch(statusPath(policy), { status: { conditions } });
    } catch (error) {
      if (!(error instanceof KubeApiError && error.status === 404)) throw error;
      if (!missingStatus.has(policy.kind)) {
        logger.warn('policy has no status to write to', { kind: policy.kind, name: policy.name });
      }
      missingStatus.add(policy.kind);
      return false;
    }
    written.set(policy.uid, condition);
    return true;
  };

  const reportOne = async (
    policy: PolicyRef,
    problems: readonly SnapshotProblem[],
  ): Promise<PolicyStatusReport> => {
    let eventsCreated = 0;
    for (const problem of problems) {
      if (await recordEvent(policy, problem)) eventsCreated += 1;
    }
    const patched = await patchCondition(policy, acceptedCondition(problems, policy.generation));
    return { eventsCreated, statusPatched: patched ? 1 : 0 };
  };

  return {
    async report(problems, policies) {
      const byObject = new Map<string, SnapshotProblem[]>();
      for (const problem of problems) {
        const key = problemKey(problem.kind, problem.namespace, problem.name);
        byObject.set(key, [...(byObject.get(key) ?? []), problem]);
      }
      const refs = policies.map(refOf).filter((ref) => ref.uid !== '' && ref.name !== '');
      const live = new Set(refs.map((ref) => ref.uid));
      for (const uid of [...recorded.keys(), ...written.keys()]) {
        if (!live.has(uid)) {
          recorded.delete(uid);
          written.delete(uid);
        }
      }
      let eventsCreated = 0;
      let statusPatched = 0;
      for (const policy of refs) {
        const mine = byObject.get(problemKey(policy.kind, policy.namespace, policy.name)) ?? [];
        try {
          const done = await reportOne(policy, mine);
          eventsCreated += done.eventsCreated;
          statusPatched += done.statusPatched;
        } catch (error) {
          logger.warn('could not report policy status', {
            kind: policy.kind,
            namespace: policy.namespace,
            name: policy.name,
            error,
          });
        }
      }
      return { eventsCreated, statusPatched };
    },

    async setMeshConfigTransparent(value) {
      if (transparent === value) return;
      const path = objectPath({
        apiVersion: MESH_CONFIG_API_VERSION,
        kind: 'MeshConfig',
        namespace: options.meshNamespace,
        name: MESH_CONFIG_RESOURCE_NAME,
      });
      await client.mergePatch(`${path}/status`, { status: { transparent: value } });
      transparent = value;
    },
  };
}
