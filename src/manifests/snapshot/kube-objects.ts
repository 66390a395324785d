// The Kubernetes objects the snapshot is built from, as the API server returns them (raw JSON),
// and total readers over them: a field of the wrong shape reads as absent, never throws. Also the
// small sorting helpers every part of the builder shares, so that output never depends on the
// order objects arrived in. Pure.
import type { SnapshotProblem } from './types';

/** A Kubernetes object as JSON; every field may be missing or of the wrong shape. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly ownerReferences?: readonly { kind?: string; name?: string; controller?: boolean }[];
    readonly resourceVersion?: string;
    readonly generation?: number;
    readonly uid?: string;
  };
  readonly [key: string]: unknown;
}

/** Everything the controller watches, as lists of raw objects in any order. */
export interface ClusterState {
  readonly services: readonly KubeObject[];
  readonly endpointSlices: readonly KubeObject[];
  readonly pods: readonly KubeObject[];
  readonly namespaces: readonly KubeObject[];
  readonly trafficSplits: readonly KubeObject[];
  readonly trafficTargets: readonly KubeObject[];
  readonly httpRouteGroups: readonly KubeObject[];
  readonly tcpRoutes: readonly KubeObject[];
  readonly rateLimits: readonly KubeObject[];
  readonly circuitBreakers: readonly KubeObject[];
  /** gateway.networking.k8s.io/v1 HTTPRoutes (absent: none, as when the CRD is not installed). */
  readonly httpRoutes?: readonly KubeObject[];
  /** gateway.networking.k8s.io/v1 GRPCRoutes (absent: none). */
  readonly grpcRoutes?: readonly KubeObject[];
  /** gateway.networking.k8s.io/v1beta1 ReferenceGrants. */
  readonly referenceGrants?: readonly KubeObject[];
  /** gateway.networking.k8s.io/v1 GatewayClasses (cluster-scoped; absent: none). */
  readonly gatewayClasses?: readonly KubeObject[];
  /** gateway.networking.k8s.io/v1 Gateways (absent: none). */
  readonly gateways?: readonly KubeObject[];
  /**
   * Core Secrets of type kubernetes.io/tls, `data` base64-encoded as the API returns it: the
   * certificates Gateway listeners may name (absent: none).
   */
  readonly tlsSecrets?: readonly KubeObject[];
  /** MeshConfig nginx-mesh-config (runtime settings), when it exists. */
  readonly meshConfig: KubeObject | undefined;
}

export type Json = Readonly<Record<string, unknown>>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object at `value`, or an empty object. */
export function objectOf(value: unknown): Json {
  return isObject(value) ? value : {};
}

/** The array at `value`, or an empty array. */
export function arrayOf(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? (value as readonly unknown[]) : [];
}

/** The string at `value`, or undefined (also for the empty string). */
export function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The non-negative integer at `value`, or undefined. */
export function countOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** A port number 1-65535 at `value`, or undefined. */
export function portOf(value: unknown): number | undefined {
  const port = countOf(value);
  return port !== undefined && port >= 1 && port <= 65_535 ? port : undefined;
}

/** Name and namespace of an object; undefined when either is missing. */
export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
}

export function refOf(object: KubeObject): ObjectRef | undefined {
  const metadata = objectOf(object.metadata);
  const name = stringOf(metadata.name);
  const namespace = stringOf(metadata.namespace);
  return name === undefined || namespace === undefined ? undefined : { namespace, name };
}

export function labelsOf(object: KubeObject): Json {
  return objectOf(objectOf(object.metadata).labels);
}

export function annotationsOf(object: KubeObject): Json {
  return objectOf(objectOf(object.metadata).annotations);
}

/** The key of an object in every snapshot collection. */
export function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Code-point order: the same on every machine, unlike localeCompare. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted, duplicate-free copy. */
export function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(compareText);
}

/**
 * A record whose keys were inserted in sorted order, so that printing it is deterministic. A
 * later entry with an existing key replaces the earlier one.
 */
export function sortedRecord<T>(
  entries: ReadonlyMap<string, T> | Iterable<readonly [string, T]>,
): Record<string, T> {
  const byKey = entries instanceof Map ? (entries as ReadonlyMap<string, T>) : new Map(entries);
  const record: Record<string, T> = {};
  // The default sort orders strings by UTF-16 code units, as compareText does, only faster.
  for (const key of [...byKey.keys()].sort()) record[key] = byKey.get(key) as T;
  return record;
}

/**
 * Objects by "<namespace>/<name>". The API server never returns two objects with one key; should
 * a list hold two anyway, the one with the smaller uid wins, so the result stays independent of
 * the order of the list.
 */
export function indexByKey(objects: readonly KubeObject[]): Map<string, KubeObject> {
  const index = new Map<string, KubeObject>();
  for (const object of objects) {
    const ref = refOf(object);
    if (ref === undefined) continue;
    const key = keyOf(ref.namespace, ref.name);
    const existing = index.get(key);
    if (existing === undefined || compareText(uidOf(object), uidOf(existing)) < 0) {
      index.set(key, object);
    }
  }
  return index;
}

function uidOf(object: KubeObject): string {
  return stringOf(objectOf(object.metadata).uid) ?? '';
}

/** The API version and kind a policy list holds, for problems about objects that lack them. */
export interface PolicyType {
  readonly apiVersion: string;
  readonly kind: string;
}

/** Collects the problems of policy objects; each message names the field and the value. */
export class ProblemLog {
  readonly problems: SnapshotProblem[] = [];

  add(object: KubeObject, type: PolicyType, reason: string, message: string): void {
    const metadata = objectOf(object.metadata);
    this.problems.push({
      apiVersion: stringOf(object.apiVersion) ?? type.apiVersion,
      kind: stringOf(object.kind) ?? type.kind,
      namespace: stringOf(metadata.namespace) ?? '',
      name: stringOf(metadata.name) ?? '',
      reason,
      message,
    });
  }

  /** Problems by kind, namespace, name, then reason and message. */
  sorted(): SnapshotProblem[] {
    const fields = ['kind', 'namespace', 'name', 'reason', 'message'] as const;
    return [...this.problems].sort((a, b) => {
      for (const field of fields) {
        const order = compareText(a[field], b[field]);
        if (order !== 0) return order;
      }
      return 0;
    });
  }
}
