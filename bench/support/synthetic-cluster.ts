// A synthetic but realistic cluster state for benchmarks of the controller: Services spread over
// twenty namespaces, one EndpointSlice each, injected pods of one Deployment per Service, and
// about one of each policy kind per hundred Services (TrafficTargets with HTTPRouteGroups and
// TCPRoutes, TrafficSplits, RateLimits, CircuitBreakers). Deterministic: the same arguments give
// the same objects. Addresses come from the benchmarking range 198.18.0.0/15.
import type {
  ClusterState,
  KubeObject,
  SnapshotSettings,
} from '../../src/manifests/snapshot/build';
import { DEFAULT_SNAPSHOT_MESH } from '../../src/manifests/snapshot/mesh-base';

const NAMESPACES = 20;
const SERVICES_PER_POLICY = 100;

/** The namespace of the i-th Service. */
function namespaceOf(index: number): string {
  return `team-${String(index % NAMESPACES).padStart(2, '0')}`;
}

function serviceName(index: number): string {
  return `svc-${index}`;
}

/** 198.18.0.0/16 for pods, 198.19.0.0/16 for Services. */
function address(network: 18 | 19, index: number): string {
  return `198.${network}.${(index >> 8) & 255}.${index & 255}`;
}

function hashOf(index: number): string {
  return (index * 2_654_435_761).toString(36).slice(-8).padStart(8, 'x');
}

function service(index: number): KubeObject {
  const ports: Record<string, unknown>[] = [
    { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' },
  ];
  if (index % 5 === 0) ports.push({ name: 'metrics', port: 9000, protocol: 'TCP' });
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: serviceName(index),
      namespace: namespaceOf(index),
      uid: `svc-uid-${index}`,
      resourceVersion: String(1000 + index),
      labels: { app: serviceName(index) },
      ...(index % 7 === 0
        ? { annotations: { 'config.nsm.nginx.com/lb-method': 'round_robin' } }
        : {}),
    },
    spec: {
      type: 'ClusterIP',
      clusterIP: address(19, index),
      clusterIPs: [address(19, index)],
      selector: { app: serviceName(index) },
      ports,
    },
  };
}

function podName(index: number, replica: number): string {
  return `${serviceName(index)}-${hashOf(index)}-${replica}`;
}

function pod(index: number, replica: number, podIndex: number): KubeObject {
  const name = serviceName(index);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(index, replica),
      namespace: namespaceOf(index),
      uid: `pod-uid-${podIndex}`,
      labels: {
        app: name,
        'pod-template-hash': hashOf(index),
        'nsm.nginx.com/deployment': name,
      },
      annotations: { 'injector.nsm.nginx.com/status': 'injected' },
      ownerReferences: [{ kind: 'ReplicaSet', name: `${name}-${hashOf(index)}`, controller: true }],
    },
    spec: {
      serviceAccountName: name,
      containers: [{ name: 'app', image: 'example/app:1', ports: [{ containerPort: 8080 }] }],
    },
    status: {
      phase: 'Running',
      podIP: address(18, podIndex),
      podIPs: [{ ip: address(18, podIndex) }],
    },
  };
}

function endpointSlice(index: number, endpoints: readonly KubeObject[]): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${serviceName(index)}-${hashOf(index + 1).slice(0, 5)}`,
      namespace: namespaceOf(index),
      uid: `slice-uid-${index}`,
      labels: { 'kubernetes.io/service-name': serviceName(index) },
    },
    addressType: 'IPv4',
    ports: [
      { name: 'http', port: 8080, protocol: 'TCP' },
      ...(index % 5 === 0 ? [{ name: 'metrics', port: 9000, protocol: 'TCP' }] : []),
    ],
    endpoints: endpoints.map((object) => {
      const status = object.status as { podIP: string };
      const metadata = object.metadata ?? {};
      return {
        addresses: [status.podIP],
        conditions: { ready: true, serving: true, terminating: false },
        targetRef: { kind: 'Pod', name: metadata.name, namespace: metadata.namespace },
      };
    }),
  };
}

function policy(apiVersion: string, kind: string, name: string, namespace: string, spec: unknown) {
  return { apiVersion, kind, metadata: { name, namespace, uid: `${kind}-${name}` }, spec };
}

/** Policies around Service `index` (the policy's "own" Service) and its neighbour index+NAMESPACES. */
function policies(index: number): Record<string, KubeObject[]> {
  const ns = namespaceOf(index);
  const name = serviceName(index);
  const neighbour = serviceName(index + NAMESPACES);
  const routes = policy('specs.smi-spec.io/v1alpha3', 'HTTPRouteGroup', `${name}-routes`, ns, {
    matches: [
      { name: 'read', methods: ['GET', 'HEAD'], pathRegex: '/api/.*' },
      {
        name: 'write',
        methods: ['POST', 'PUT'],
        pathRegex: '/api/.*',
        headers: { 'X-Team': 'a.*' },
      },
    ],
  });
  const tcp = policy('specs.smi-spec.io/v1alpha3', 'TCPRoute', `${name}-tcp`, ns, {});
  const target = policy('access.smi-spec.io/v1alpha2', 'TrafficTarget', `${name}-access`, ns, {
    destination: { kind: 'ServiceAccount', name, namespace: ns },
    sources: [{ kind: 'ServiceAccount', name: neighbour, namespace: ns }],
    rules: [
      { kind: 'HTTPRouteGroup', name: `${name}-routes`, matches: ['read'] },
      { kind: 'TCPRoute', name: `${name}-tcp` },
    ],
  });
  const split = policy('split.smi-spec.io/v1alpha3', 'TrafficSplit', `${name}-split`, ns, {
    service: name,
    backends: [
      { service: name, weight: 90 },
      { service: neighbour, weight: 10 },
    ],
    matches: [{ kind: 'HTTPRouteGroup', name: `${name}-routes` }],
  });
  const rateLimit = policy('specs.smi.nginx.com/v1alpha2', 'RateLimit', `${name}-limit`, ns, {
    destination: { kind: 'Deployment', name, namespace: ns },
    sources: [{ kind: 'Deployment', name: neighbour, namespace: ns }],
    name: '10rs',
    rate: '10r/s',
    burst: 5,
    delay: 'nodelay',
    rules: [{ kind: 'HTTPRouteGroup', name: `${name}-routes`, matches: ['write'] }],
  });
  const breaker = policy('specs.smi.nginx.com/v1alpha1', 'CircuitBreaker', `${name}-breaker`, ns, {
    destination: { kind: 'Service', name: neighbour, namespace: ns },
    errors: 3,
    timeoutSeconds: 30,
    fallback: { service: `${ns}/${name}`, port: 80 },
  });
  return {
    httpRouteGroups: [routes],
    tcpRoutes: [tcp],
    trafficTargets: [target],
    trafficSplits: [split],
    rateLimits: [rateLimit],
    circuitBreakers: [breaker],
  };
}

/** A cluster of `services` Services with `endpointsPerService` injected pods behind each. */
export function syntheticClusterState(services: number, endpointsPerService: number): ClusterState {
  const state = {
    services: [] as KubeObject[],
    endpointSlices: [] as KubeObject[],
    pods: [] as KubeObject[],
    namespaces: Array.from({ length: NAMESPACES }, (_, index): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespaceOf(index),
        labels: { 'injector.nsm.nginx.com/auto-inject': 'enabled' },
      },
    })),
    trafficSplits: [] as KubeObject[],
    trafficTargets: [] as KubeObject[],
    httpRouteGroups: [] as KubeObject[],
    tcpRoutes: [] as KubeObject[],
    rateLimits: [] as KubeObject[],
    circuitBreakers: [] as KubeObject[],
  };
  let podIndex = 0;
  for (let index = 0; index < services; index += 1) {
    state.services.push(service(index));
    const pods: KubeObject[] = [];
    for (let replica = 0; replica < endpointsPerService; replica += 1) {
      pods.push(pod(index, replica, podIndex));
      podIndex += 1;
    }
    state.pods.push(...pods);
    state.endpointSlices.push(endpointSlice(index, pods));
  }
  for (let index = 0; index + NAMESPACES < services; index += SERVICES_PER_POLICY) {
    for (const [collection, objects] of Object.entries(policies(index))) {
      state[collection as keyof typeof state].push(...objects);
    }
  }
  return {
    ...state,
    meshConfig: {
      apiVersion: 'nsm.nginx.com/v1alpha2',
      kind: 'MeshConfig',
      metadata: { name: 'nginx-mesh-config', namespace: 'nginx-mesh' },
      spec: {
        meshConfigClassName: 'nginx-mesh-meshconfig-class',
        accessControlMode: 'allow',
        mtls: { mode: 'permissive', caKeyType: 'ec-p256', caTTL: '720h', svidTTL: '1h' },
        nginxLBMethod: 'least_time',
        nginxErrorLogLevel: 'warn',
        nginxLogFormat: 'default',
        clientMaxBodySize: '1m',
      },
    },
  };
}

/** Settings that go with the synthetic state: mesh namespace nginx-mesh, defaults as deployed. */
export function syntheticSnapshotSettings(): SnapshotSettings {
  return {
    meshNamespace: 'nginx-mesh',
    base: DEFAULT_SNAPSHOT_MESH,
  };
}
