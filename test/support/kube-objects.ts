// Small builders of raw Kubernetes objects, as the API server returns them, for snapshot tests.
import type {
  ClusterState,
  KubeObject,
  SnapshotSettings,
} from '../../src/manifests/snapshot/build';
import { DEFAULT_SNAPSHOT_MESH } from '../../src/manifests/snapshot/mesh-base';

export const MESH_BASE: SnapshotSettings['base'] = DEFAULT_SNAPSHOT_MESH;

export const SETTINGS: SnapshotSettings = { meshNamespace: 'nginx-mesh', base: MESH_BASE };

export function emptyState(): ClusterState {
  return {
    services: [],
    endpointSlices: [],
    pods: [],
    namespaces: [],
    trafficSplits: [],
    trafficTargets: [],
    httpRouteGroups: [],
    tcpRoutes: [],
    rateLimits: [],
    circuitBreakers: [],
    meshConfig: undefined,
  };
}

export function state(parts: Partial<ClusterState>): ClusterState {
  return { ...emptyState(), ...parts };
}

export function service(
  namespace: string,
  name: string,
  spec: Record<string, unknown> = {},
  annotations?: Record<string, string>,
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, ...(annotations === undefined ? {} : { annotations }) },
    spec: {
      clusterIP: '198.19.0.1',
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      ...spec,
    },
  };
}

export interface PodOptions {
  readonly ip?: string;
  readonly serviceAccount?: string;
  readonly injected?: boolean;
  readonly labels?: Record<string, string>;
  readonly ownerReferences?: { kind?: string; name?: string; controller?: boolean }[];
  readonly status?: Record<string, unknown>;
}

export function pod(namespace: string, name: string, options: PodOptions = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: options.labels ?? {},
      annotations:
        options.injected === false ? {} : { 'injector.nsm.nginx.com/status': 'injected' },
      ...(options.ownerReferences === undefined
        ? {}
        : { ownerReferences: options.ownerReferences }),
    },
    spec: { serviceAccountName: options.serviceAccount ?? 'default', containers: [] },
    status: options.status ?? {
      phase: 'Running',
      ...(options.ip === undefined ? {} : { podIP: options.ip, podIPs: [{ ip: options.ip }] }),
    },
  };
}

export interface SliceEndpoint {
  readonly address: string;
  readonly pod?: string;
  readonly ready?: boolean;
}

export function endpointSlice(
  namespace: string,
  serviceName: string,
  endpoints: readonly SliceEndpoint[],
  options: { name?: string; ports?: unknown[]; addressType?: string } = {},
): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: options.name ?? `${serviceName}-abcde`,
      namespace,
      labels: { 'kubernetes.io/service-name': serviceName },
    },
    addressType: options.addressType ?? 'IPv4',
    ports: options.ports ?? [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: endpoints.map((endpoint) => ({
      addresses: [endpoint.address],
      conditions: { ready: endpoint.ready ?? true },
      ...(endpoint.pod === undefined
        ? {}
        : { targetRef: { kind: 'Pod', name: endpoint.pod, namespace } }),
    })),
  };
}

export function policy(
  apiVersion: string,
  kind: string,
  namespace: string,
  name: string,
  spec: unknown,
): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace }, spec };
}

export function routeGroup(namespace: string, name: string, matches: unknown[]): KubeObject {
  return policy('specs.smi-spec.io/v1alpha3', 'HTTPRouteGroup', namespace, name, { matches });
}

export function tcpRoute(namespace: string, name: string): KubeObject {
  return policy('specs.smi-spec.io/v1alpha3', 'TCPRoute', namespace, name, {});
}

export function trafficTarget(namespace: string, name: string, spec: unknown): KubeObject {
  return policy('access.smi-spec.io/v1alpha2', 'TrafficTarget', namespace, name, spec);
}

export function trafficSplit(namespace: string, name: string, spec: unknown): KubeObject {
  return policy('split.smi-spec.io/v1alpha3', 'TrafficSplit', namespace, name, spec);
}

export function rateLimit(namespace: string, name: string, spec: unknown): KubeObject {
  return policy('specs.smi.nginx.com/v1alpha2', 'RateLimit', namespace, name, spec);
}

export function circuitBreaker(namespace: string, name: string, spec: unknown): KubeObject {
  return policy('specs.smi.nginx.com/v1alpha1', 'CircuitBreaker', namespace, name, spec);
}

export function meshConfig(spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'nsm.nginx.com/v1alpha2',
    kind: 'MeshConfig',
    metadata: { name: 'nginx-mesh-config', namespace: 'nginx-mesh' },
    spec: { meshConfigClassName: 'nginx-mesh-meshconfig-class', ...spec },
  };
}
