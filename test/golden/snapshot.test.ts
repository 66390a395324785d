// The mesh snapshot of a small realistic cluster (the bookinfo sample, meshed), pinned byte for
// byte with its problems and warnings: what every agent receives for it.
import { buildSnapshot } from '../../src/manifests/snapshot/build';
import type { ClusterState, KubeObject } from '../../src/manifests/snapshot/build';
import { expectGolden } from '../support/golden';
import {
  circuitBreaker,
  endpointSlice,
  meshConfig,
  pod,
  rateLimit,
  routeGroup,
  service,
  SETTINGS,
  state,
  tcpRoute,
  trafficSplit,
  trafficTarget,
} from '../support/kube-objects';

const NS = 'bookinfo';

interface App {
  readonly name: string;
  readonly service?: string;
  readonly workload: string;
  readonly replicas: number;
  readonly firstIp: number;
}

const apps: readonly App[] = [
  { name: 'productpage', workload: 'productpage-v1', replicas: 1, firstIp: 10 },
  { name: 'details', workload: 'details-v1', replicas: 2, firstIp: 20 },
  { name: 'reviews-v1', workload: 'reviews-v1', replicas: 1, firstIp: 30 },
  { name: 'reviews-v2', workload: 'reviews-v2', replicas: 1, firstIp: 40 },
  { name: 'ratings', workload: 'ratings-v1', replicas: 2, firstIp: 50 },
  { name: 'mongodb', workload: 'mongodb', replicas: 1, firstIp: 60 },
];

function podsOf(app: App): KubeObject[] {
  return Array.from({ length: app.replicas }, (_, replica) => {
    const statefulSet = app.name === 'mongodb';
    return pod(NS, statefulSet ? `mongodb-${replica}` : `${app.workload}-5f7c9-${replica}`, {
      ip: `198.18.1.${app.firstIp + replica}`,
      serviceAccount: `bookinfo-${app.name.replace(/-v[0-9]$/, '')}`,
      labels: statefulSet
        ? { app: app.name, 'nsm.nginx.com/statefulset': 'mongodb' }
        : { app: app.name, 'nsm.nginx.com/deployment': app.workload },
    });
  });
}

function sliceOf(app: App, pods: readonly KubeObject[]): KubeObject {
  const ports =
    app.name === 'mongodb'
      ? [{ name: 'mongo', port: 27017, protocol: 'TCP' }]
      : [{ name: 'http', port: 9080, protocol: 'TCP' }];
  return endpointSlice(
    NS,
    app.name,
    pods.map((object) => ({
      address: (object.status as { podIP: string }).podIP,
      pod: object.metadata?.name ?? '',
    })),
    { ports },
  );
}

function bookinfo(): ClusterState {
  const pods = apps.flatMap(podsOf);
  const slices = apps.map((app) => sliceOf(app, podsOf(app)));
  return state({
    services: [
      service(NS, 'productpage', {
        clusterIP: '198.19.1.10',
        ports: [{ name: 'http', port: 9080 }],
      }),
      service(NS, 'details', { clusterIP: '198.19.1.20', ports: [{ name: 'http', port: 9080 }] }),
      service(
        NS,
        'reviews',
        { clusterIP: '198.19.1.30', ports: [{ name: 'http', port: 9080 }] },
        { 'config.nsm.nginx.com/lb-method': 'round_robin' },
      ),
      service(NS, 'reviews-v1', {
        clusterIP: '198.19.1.31',
        ports: [{ name: 'http', port: 9080 }],
      }),
      service(NS, 'reviews-v2', {
        clusterIP: '198.19.1.32',
        ports: [{ name: 'http', port: 9080 }],
      }),
      service(
        NS,
        'ratings',
        { clusterIP: '198.19.1.50', ports: [{ name: 'http', port: 9080, appProtocol: 'http' }] },
        { 'config.nsm.nginx.com/lb-method': 'least_time' },
      ),
      service(NS, 'mongodb', {
        clusterIP: 'None',
        clusterIPs: ['None'],
        ports: [{ name: 'mongo', port: 27017 }],
      }),
      service('default', 'sorry', { clusterIP: '198.19.0.99' }),
      service('kube-system', 'kube-dns', { clusterIP: '198.19.0.10' }),
    ],
    endpointSlices: [
      ...slices,
      endpointSlice(
        NS,
        'reviews',
        [
          { address: '198.18.1.30', pod: 'reviews-v1-5f7c9-0' },
          { address: '198.18.1.40', pod: 'reviews-v2-5f7c9-0' },
        ],
        { ports: [{ name: 'http', port: 9080, protocol: 'TCP' }] },
      ),
    ],
    pods: [...pods, pod(NS, 'debug', { ip: '198.18.1.99', injected: false })],
    httpRouteGroups: [
      routeGroup(NS, 'reviews-routes', [
        { name: 'read', methods: ['GET'], pathRegex: '/reviews/.*' },
        { name: 'beta', headers: { 'End-User': 'jason' } },
      ]),
      routeGroup(NS, 'ratings-routes', [{ name: 'post', methods: ['post'], pathRegex: '/ratings' }]),
    ],
    tcpRoutes: [tcpRoute(NS, 'mongo')],
    trafficTargets: [
      trafficTarget(NS, 'reviews-from-productpage', {
        destination: { kind: 'ServiceAccount', name: 'bookinfo-reviews', port: 9080 },
        sources: [{ kind: 'ServiceAccount', name: 'bookinfo-productpage' }],
        rules: [{ kind: 'HTTPRouteGroup', name: 'reviews-routes', matches: ['read'] }],
      }),
      trafficTarget(NS, 'mongodb-from-ratings', {
        destination: { kind: 'ServiceAccount', name: 'bookinfo-mongodb' },
        sources: [{ kind: 'ServiceAccount', name: 'bookinfo-ratings', namespace: NS }],
        rules: [{ kind: 'TCPRoute', name: 'mongo' }],
      }),
      trafficTarget(NS, 'details-typo', {
        destination: { kind: 'ServiceAccount', name: 'bookinfo-details' },
        sources: [{ kind: 'ServiceAccount', name: 'bookinfo-productpage' }],
        rules: [{ kind: 'HTTPRouteGroup', name: 'details-routes' }],
      }),
    ],
    trafficSplits: [
      trafficSplit(NS, 'reviews-canary', {
        service: 'reviews',
        backends: [
          { service: 'reviews-v1', weight: 80 },
          { service: 'reviews-v2', weight: 20 },
        ],
        matches: [{ kind: 'HTTPRouteGroup', name: 'reviews-routes' }],
      }),
    ],
    rateLimits: [
      rateLimit(NS, 'ratings-from-reviews', {
        destination: { kind: 'Service', name: 'ratings' },
        sources: [
          { kind: 'Deployment', name: 'reviews-v1' },
          { kind: 'Deployment', name: 'reviews-v2' },
        ],
        name: '10rs',
        rate: '10r/s',
        burst: 5,
        delay: 'nodelay',
        rules: [{ kind: 'HTTPRouteGroup', name: 'ratings-routes' }],
      }),
      rateLimit(NS, 'ratings-default', {
        destination: { kind: 'Deployment', name: 'ratings-v1' },
        name: '100rm',
        rate: '100r/m',
      }),
    ],
    circuitBreakers: [
      circuitBreaker(NS, 'details-breaker', {
        destination: { kind: 'Service', name: 'details' },
        errors: 3,
        timeoutSeconds: 30,
        fallback: { service: 'sorry', port: 80 },
      }),
    ],
    meshConfig: meshConfig({ accessControlMode: 'deny', mtls: { mode: 'strict' } }),
  });
}

describe('snapshot golden', () => {
  it('pins the snapshot, problems and warnings of the meshed bookinfo sample', () => {
    const outcome = buildSnapshot(bookinfo(), SETTINGS);
    expectGolden('snapshot/bookinfo.json', `${JSON.stringify(outcome, null, 2)}\n`);
  });
});
