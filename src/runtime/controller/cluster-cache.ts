// The controller's view of the cluster: one watched cache per kind the mesh snapshot is built
// from (Services, EndpointSlices, Pods, Namespaces, the SMI and NSM policies, the Gateway API's
// HTTPRoutes and ReferenceGrants, the runtime MeshConfig and the meshconfig ConfigMap). It hands out plain JSON in a stable order, so the
// pure snapshot builder gets the same input for the same cluster. Pods, the largest set, are
// kept trimmed to the fields a snapshot reads, and no object keeps its managedFields.
import { objectOf } from '../../manifests/snapshot/kube-objects';
import {
  MESH_CONFIG_API_VERSION,
  MESH_CONFIG_MAP_NAME,
  MESH_CONFIG_RESOURCE_NAME,
} from '../../manifests/constants';
import { collectionPath, resourceType } from '../../manifests/install/resources';
import type { Clock } from '../clock';
import type { KubeConnection } from '../kube/access';
import type { ResourceWatch, WatchUpdate } from '../kube/watch';
import { startWatch } from '../kube/watch';
import type { Logger } from '../role/log';

/** A Kubernetes object as the API server sent it (trimmed where noted). */
export type KubeJson = Readonly<Record<string, unknown>>;

/**
 * The cluster state a snapshot is built from, field for field the shape the snapshot builder
 * takes: every collection is an array of raw objects sorted by namespace and name.
 */
export interface CachedClusterState {
  readonly services: readonly KubeJson[];
  /** discovery.k8s.io/v1 EndpointSlices. */
  readonly endpointSlices: readonly KubeJson[];
  /** Trimmed: metadata name/namespace/labels/annotations/ownerReferences, serviceAccountName, IPs. */
  readonly pods: readonly KubeJson[];
  readonly namespaces: readonly KubeJson[];
  readonly trafficSplits: readonly KubeJson[];
  readonly trafficTargets: readonly KubeJson[];
  readonly httpRouteGroups: readonly KubeJson[];
  readonly tcpRoutes: readonly KubeJson[];
  /** Read through v1alpha2, the storage version; v1alpha1 objects come converted. */
  readonly rateLimits: readonly KubeJson[];
  readonly circuitBreakers: readonly KubeJson[];
  /** gateway.networking.k8s.io/v1 HTTPRoutes; none while the CRD is not installed. */
  readonly httpRoutes: readonly KubeJson[];
  /** gateway.networking.k8s.io/v1 GRPCRoutes. */
  readonly grpcRoutes: readonly KubeJson[];
  /** gateway.networking.k8s.io/v1beta1 ReferenceGrants; none while the CRD is not installed. */
  readonly referenceGrants: readonly KubeJson[];
  /** gateway.networking.k8s.io/v1 GatewayClasses and Gateways. */
  readonly gatewayClasses: readonly KubeJson[];
  readonly gateways: readonly KubeJson[];
  /** Secrets of type kubernetes.io/tls, which Gateway listeners name as certificates. */
  readonly tlsSecrets: readonly KubeJson[];
  /** MeshConfig nginx-mesh-config of the mesh namespace: none or one. */
  readonly meshConfig: readonly KubeJson[];
  /** ConfigMap meshconfig of the mesh namespace, when it exists. */
  readonly meshConfigMap: KubeJson | undefined;
}

type Collection = Exclude<keyof CachedClusterState, 'meshConfigMap'> | 'meshConfigMaps';

interface Source {
  readonly collection: Collection;
  readonly apiVersion: string;
  readonly kind: string;
  /** Only in the mesh namespace, only this name. */
  readonly meshNamespaceName?: string;
  /** Only the objects this field selector selects. */
  readonly fieldSelector?: string;
  readonly trim?: (object: KubeJson) => KubeJson;
}

const SOURCES: readonly Source[] = [
  { collection: 'services', apiVersion: 'v1', kind: 'Service' },
  { collection: 'endpointSlices', apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' },
  { collection: 'pods', apiVersion: 'v1', kind: 'Pod', trim: trimPod },
  { collection: 'namespaces', apiVersion: 'v1', kind: 'Namespace' },
  { collection: 'trafficSplits', apiVersion: 'split.smi-spec.io/v1alpha3', kind: 'TrafficSplit' },
  {
    collection: 'trafficTargets',
    apiVersion: 'access.smi-spec.io/v1alpha2',
    kind: 'TrafficTarget',
  },
  {
    collection: 'httpRouteGroups',
    apiVersion: 'specs.smi-spec.io/v1alpha3',
    kind: 'HTTPRouteGroup',
  },
  { collection: 'tcpRoutes', apiVersion: 'specs.smi-spec.io/v1alpha3', kind: 'TCPRoute' },
  { collection: 'rateLimits', apiVersion: 'specs.smi.nginx.com/v1alpha2', kind: 'RateLimit' },
  {
    collection: 'circuitBreakers',
    apiVersion: 'specs.smi.nginx.com/v1alpha1',
    kind: 'CircuitBreaker',
  },
  // Kinds of the Gateway API, whose CRDs a cluster may lack: their watches retry until served.
  { collection: 'httpRoutes', apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute' },
  { collection: 'grpcRoutes', apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute' },
  {
    collection: 'referenceGrants',
    apiVersion: 'gateway.networking.k8s.io/v1beta1',
    kind: 'ReferenceGrant',
  },
  {
    collection: 'gatewayClasses',
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
  },
  { collection: 'gateways', apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway' },
  {
    collection: 'tlsSecrets',
    apiVersion: 'v1',
    kind: 'Secret',
    fieldSelector: 'type=kubernetes.io/tls',
  },
  {
    collection: 'meshConfig',
    apiVersion: MESH_CONFIG_API_VERSION,
    kind: 'MeshConfig',
    meshNamespaceName: MESH_CONFIG_RESOURCE_NAME,
  },
  {
    collection: 'meshConfigMaps',
    apiVersion: 'v1',
    kind: 'ConfigMap',
    meshNamespaceName: MESH_CONFIG_MAP_NAME,
  },
];

export interface ClusterCacheOptions {
  /** Namespace of the control plane (MeshConfig and the meshconfig ConfigMap live there). */
  readonly meshNamespace: string;
  readonly clock: Clock;
  /** A number in [0, 1), for backoff jitter. */
  readonly random: () => number;
  readonly logger: Logger;
  /** Server-side lifetime of each watch (default: the watch's own). */
  readonly watchTimeoutSeconds?: number;
}

export interface ClusterCache {
  /** True once every kind has been listed (a kind not served yet counts as listed, empty). */
  synced(): boolean;
  /**
   * The longest-failing watch's error and since when, or undefined while every watch works:
   * the cache is then as old as that failure.
   */
  failure(): { readonly error: string; readonly sinceMs: number } | undefined;
  /** The current state; a new object every call, sharing the cached objects (do not mutate). */
  state(): CachedClusterState;
  /** Calls listener after every change of any kind; returns a function that removes it. */
  onChange(listener: () => void): () => void;
  /** Stops every watch. */
  stop(): Promise<void>;
}

/** A pod reduced to what the snapshot reads; the rest (spec, most of status) is dropped. */
export function trimPod(pod: KubeJson): KubeJson {
  const metadata = objectOf(pod.metadata);
  const spec = objectOf(pod.spec);
  const status = objectOf(pod.status);
  const pick = (from: Readonly<Record<string, unknown>>, keys: readonly string[]) =>
    Object.fromEntries(
      keys.filter((key) => from[key] !== undefined).map((key) => [key, from[key]]),
    );
  return {
    apiVersion: pod.apiVersion ?? 'v1',
    kind: pod.kind ?? 'Pod',
    metadata: pick(metadata, [
      'name',
      'namespace',
      'uid',
      'resourceVersion',
      'labels',
      'annotations',
      'ownerReferences',
      'deletionTimestamp',
    ]),
    spec: pick(spec, ['serviceAccountName']),
    // The phase tells a finished pod (its address may be reused, its sidecar is gone).
    status: pick(status, ['phase', 'podIP', 'podIPs']),
  };
}

/** The object without metadata.managedFields, which no reader needs and which is large. */
function withoutManagedFields(object: KubeJson): KubeJson {
  const metadata = objectOf(object.metadata);
  if (metadata.managedFields === undefined) return object;
  const rest = Object.fromEntries(
    Object.entries(metadata).filter(([key]) => key !== 'managedFields'),
  );
  return { ...object, metadata: rest };
}

function keyOf(object: KubeJson): string {
  const metadata = objectOf(object.metadata);
  const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : '';
  const name = typeof metadata.name === 'string' ? metadata.name : '';
  return `${namespace}/${name}`;
}

function watchPath(source: Source, meshNamespace: string): string {
  const type = resourceType(source.apiVersion, source.kind);
  return collectionPath(type, source.meshNamespaceName === undefined ? undefined : meshNamespace);
}

function sortedValues(items: ReadonlyMap<string, KubeJson> | undefined): KubeJson[] {
  if (items === undefined) return [];
  return [...items.keys()].sort().map((key) => items.get(key) as KubeJson);
}

/** Starts watching every kind; the returned cache fills as the lists answer. */
export function startClusterCache(
  connection: KubeConnection,
  options: ClusterCacheOptions,
): ClusterCache {
  const stores = new Map<Collection, Map<string, KubeJson>>();
  const listeners = new Set<() => void>();
  const changed = (): void => {
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch (error) {
        options.logger.error('cluster cache listener failed', { error });
      }
    }
  };
  const apply = (source: Source, update: WatchUpdate<KubeJson>): void => {
    const prepare = (object: KubeJson): KubeJson => {
      const lean = withoutManagedFields(object);
      return source.trim === undefined ? lean : source.trim(lean);
    };
    if (update.type === 'SYNC') {
      stores.set(
        source.collection,
        new Map(update.items.map((item) => [keyOf(item), prepare(item)])),
      );
    } else {
      const store = stores.get(source.collection) ?? new Map<string, KubeJson>();
      stores.set(source.collection, store);
      if (update.type === 'DELETED') store.delete(keyOf(update.object));
      else store.set(keyOf(update.object), prepare(update.object));
    }
    changed();
  };
  const watches: ResourceWatch[] = SOURCES.map((source) =>
    startWatch<KubeJson>(connection, {
      path: watchPath(source, options.meshNamespace),
      ...(source.meshNamespaceName === undefined
        ? {}
        : { fieldSelector: `metadata.name=${source.meshNamespaceName}` }),
      ...(source.fieldSelector === undefined ? {} : { fieldSelector: source.fieldSelector }),
      onUpdate: (update) => apply(source, update),
      clock: options.clock,
      random: options.random,
      logger: options.logger.with({ kind: source.kind }),
      ...(options.watchTimeoutSeconds === undefined
        ? {}
        : { timeoutSeconds: options.watchTimeoutSeconds }),
    }),
  );
  const values = (collection: Collection): KubeJson[] => sortedValues(stores.get(collection));
  return {
    synced: () => watches.every((watch) => watch.synced()),
    failure: () => {
      let oldest: { readonly error: string; readonly sinceMs: number } | undefined;
      for (const watch of watches) {
        const failure = watch.failure();
        if (failure !== undefined && (oldest === undefined || failure.sinceMs < oldest.sinceMs))
          oldest = failure;
      }
      return oldest;
    },
    state: () => ({
      services: values('services'),
      endpointSlices: values('endpointSlices'),
      pods: values('pods'),
      namespaces: values('namespaces'),
      trafficSplits: values('trafficSplits'),
      trafficTargets: values('trafficTargets'),
      httpRouteGroups: values('httpRouteGroups'),
      tcpRoutes: values('tcpRoutes'),
      rateLimits: values('rateLimits'),
      circuitBreakers: values('circuitBreakers'),
      httpRoutes: values('httpRoutes'),
      grpcRoutes: values('grpcRoutes'),
      referenceGrants: values('referenceGrants'),
      gatewayClasses: values('gatewayClasses'),
      gateways: values('gateways'),
      tlsSecrets: values('tlsSecrets'),
      meshConfig: values('meshConfig'),
      meshConfigMap: values('meshConfigMaps')[0],
    }),
    onChange(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    async stop() {
      await Promise.all(watches.map((watch) => watch.stop()));
    },
  };
}
