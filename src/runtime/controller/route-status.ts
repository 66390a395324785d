// Tells users what the mesh made of their Gateway API routes, where the Gateway API says to:
// status.parents of each HTTPRoute, one entry per Service parentRef under this mesh's
// controllerName, with Accepted and ResolvedRefs conditions. Entries of other controllers are
// kept as they are; ours for parentRefs the route no longer has are dropped. A snapshot is
// rebuilt on every cluster change, so the status is written only when it would say something
// new, through the status subresource, with the object's resourceVersion so that a concurrent
// writer's entries are never overwritten unseen (a conflict is retried on the next report).
import { GATEWAY_CONTROLLER_NAME } from '../../manifests/constants';
import { objectPath } from '../../manifests/install/resources';
import { objectOf } from '../../manifests/snapshot/kube-objects';
import type { RouteCondition, RouteStatus } from '../../manifests/snapshot/types';
import type { Clock } from '../clock';
import type { KubeClient } from '../kube/client';
import type { Logger } from '../role/log';

/** A route as the cache holds it (raw JSON). */
export type RouteObject = Readonly<Record<string, unknown>>;

type Json = Readonly<Record<string, unknown>>;

/** The condition types this mesh writes on each of its parent entries, in order. */
export const ROUTE_CONDITION_TYPES = ['Accepted', 'ResolvedRefs'] as const;

export interface RouteStatusOptions {
  readonly client: KubeClient;
  readonly clock: Clock;
  readonly logger: Logger;
}

export interface RouteStatusWriter {
  /**
   * Brings status.parents of every route in `routes` in line with `statuses` (a route without an
   * entry there keeps no entry of ours). Failures are logged, never thrown: one route's failure
   * does not stop the others, and the next report tries again. Resolves how many it patched.
   */
  report(statuses: readonly RouteStatus[], routes: readonly RouteObject[]): Promise<number>;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Json)
      .filter(([, each]) => each !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, each]) => `${JSON.stringify(key)}:${canonical(each)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A parentRef as entries compare it: group "" and kind Service made explicit. */
function parentKey(parentRef: unknown): string {
  const ref = objectOf(parentRef);
  return canonical({ ...ref, group: text(ref.group), kind: text(ref.kind) || 'Service' });
}

/** HTTPRoutes and GRPCRoutes may share a name: the kind is part of the key. */
const routeKey = (kind: string, namespace: string, name: string): string =>
  `${kind} ${namespace}/${name}`;

/**
 * status.parents as it should be: the entries of other controllers in their order, then ours,
 * one per parent of `wanted`, keeping a condition's lastTransitionTime while its status holds.
 */
export function buildRouteParents(
  current: readonly Json[],
  wanted: RouteStatus | undefined,
  now: string,
): Json[] {
  const ours = current.filter((entry) => entry.controllerName === GATEWAY_CONTROLLER_NAME);
  const others = current.filter((entry) => entry.controllerName !== GATEWAY_CONTROLLER_NAME);
  const previous = new Map(ours.map((entry) => [parentKey(entry.parentRef), entry]));
  const entries = (wanted?.parents ?? []).map((parent) => {
    const before = previous.get(parentKey(parent.parentRef));
    const beforeConditions = Array.isArray(before?.conditions)
      ? (before.conditions as unknown[]).map((each) => objectOf(each))
      : [];
    const condition = (type: string, wantedCondition: RouteCondition): Json => {
      const old = beforeConditions.find((each) => each.type === type);
      const kept = old?.status === wantedCondition.status ? text(old.lastTransitionTime) : '';
      return {
        type,
        status: wantedCondition.status,
        reason: wantedCondition.reason,
        message: wantedCondition.message,
        observedGeneration: wanted?.generation ?? 0,
        lastTransitionTime: kept === '' ? now : kept,
      };
    };
    return {
      parentRef: parent.parentRef,
      controllerName: GATEWAY_CONTROLLER_NAME,
      conditions: [
        condition('Accepted', parent.accepted),
        condition('ResolvedRefs', parent.resolvedRefs),
      ],
    };
  });
  return [...others, ...entries];
}

export function createRouteStatusWriter(options: RouteStatusOptions): RouteStatusWriter {
  const { client, logger } = options;
  /**
   * uid → the resourceVersion a patch was made over and our entries it wrote (without times):
   * while the cache still shows that version, the same entries are not written again.
   */
  const written = new Map<string, string>();
  const withoutTimes = (entries: readonly Json[]): string =>
    canonical(
      entries
        .filter((entry) => entry.controllerName === GATEWAY_CONTROLLER_NAME)
        .map((entry) => ({
          ...entry,
          conditions: (entry.conditions as readonly Json[]).map(
            ({ lastTransitionTime: _time, ...rest }) => rest,
          ),
        })),
    );

  const reportOne = async (
    route: RouteObject,
    wanted: RouteStatus | undefined,
  ): Promise<boolean> => {
    const metadata = objectOf(route.metadata);
    const uid = text(metadata.uid);
    const parents = objectOf(route.status).parents;
    const current = Array.isArray(parents) ? parents.map((each) => objectOf(each)) : [];
    const next = buildRouteParents(current, wanted, options.clock.now().toISOString());
    if (canonical(next) === canonical(current)) return false;
    const stamp = `${text(metadata.resourceVersion)}/${withoutTimes(next)}`;
    if (written.get(uid) === stamp) return false;
    const path = `${objectPath({
      apiVersion: text(route.apiVersion),
      kind: text(route.kind),
      namespace: text(metadata.namespace),
      name: text(metadata.name),
    })}/status`;
    // The resourceVersion makes the API server refuse the patch (409) if the route changed
    // since the cache saw it, instead of dropping another controller's newer entries.
    await client.mergePatch(path, {
      metadata: { resourceVersion: text(metadata.resourceVersion) },
      status: { parents: next },
    });
    written.set(uid, stamp);
    return true;
  };

  return {
    async report(statuses, routes) {
      const wanted = new Map(
        statuses.map((each) => [routeKey(each.kind, each.namespace, each.name), each]),
      );
      const live = new Set<string>();
      let patched = 0;
      for (const route of routes) {
        const metadata = objectOf(route.metadata);
        const namespace = text(metadata.namespace);
        const name = text(metadata.name);
        if (name === '' || text(metadata.uid) === '') continue;
        live.add(text(metadata.uid));
        try {
          const status = wanted.get(routeKey(text(route.kind), namespace, name));
          if (await reportOne(route, status)) patched += 1;
        } catch (error) {
          logger.warn('could not write the route status', {
            kind: route.kind,
            namespace,
            name,
            error,
          });
        }
      }
      for (const uid of written.keys()) if (!live.has(uid)) written.delete(uid);
      return patched;
    },
  };
}
