// The Traffic Metrics API on a real API server: the metrics role runs as a pod of the test cluster
// (the executable, as the nginx-mesh-controller image), publishes its CA into the APIService, and
// the API server's aggregator proxies /apis/metrics.smi-spec.io to it. Prometheus runs on the
// host's end of the node link (where pods reach the API server too) and scrapes a fixture that
// serves the sidecar metric contract at fixed rates.
import { join } from 'node:path';
import { execa } from 'execa';
import type { KubeRest } from './harness/kube-rest';
import {
  createNamespace,
  deleteNamespace,
  isReady,
  listPods,
  testKubeconfig,
  testRest,
  waitFor,
} from './support/kube';
import { startFixtureServer, startPrometheus } from '../support/prometheus';
import type { FixtureServer, TestPrometheus } from '../support/prometheus';
import { CONTROLLER_IMAGE_REF } from '../support/images';

const meshNamespace = 'metrics-mesh';
const apiServiceName = 'v1alpha1.metrics.smi-spec.io';
const clusterRbacName = 'nginx-mesh-metrics-test';
const base = '/apis/metrics.smi-spec.io/v1alpha1';
let rest: KubeRest;
let fixture: FixtureServer;
let prometheus: TestPrometheus;

const rbac = (kind: string, namespace?: string): string =>
  namespace === undefined
    ? `/apis/rbac.authorization.k8s.io/v1/${kind}`
    : `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/${kind}`;
const subject = { kind: 'ServiceAccount', name: 'nginx-mesh-metrics', namespace: meshNamespace };
const roleRef = (kind: string, name: string): unknown => ({
  apiGroup: 'rbac.authorization.k8s.io',
  kind,
  name,
});

/** What the metrics Deployment needs, as deploy will have to create it. */
async function deployMetrics(prometheusUrl: string): Promise<void> {
  const post = (path: string, body: unknown): Promise<unknown> => rest.request('POST', path, body);
  await post(`/api/v1/namespaces/${meshNamespace}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'nginx-mesh-metrics' },
  });
  await post(rbac('roles', meshNamespace), {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'nginx-mesh-metrics' },
    rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'update'] }],
  });
  await post(rbac('rolebindings', meshNamespace), {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'nginx-mesh-metrics' },
    roleRef: roleRef('Role', 'nginx-mesh-metrics'),
    subjects: [subject],
  });
  await post(rbac('rolebindings', 'kube-system'), {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: clusterRbacName },
    roleRef: roleRef('Role', 'extension-apiserver-authentication-reader'),
    subjects: [subject],
  });
  await post(rbac('clusterroles'), {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: clusterRbacName },
    rules: [
      {
        apiGroups: ['apiregistration.k8s.io'],
        resources: ['apiservices'],
        resourceNames: [apiServiceName],
        verbs: ['get', 'patch'],
      },
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        resourceNames: [clusterRbacName],
        verbs: ['get'],
      },
    ],
  });
  for (const [name, role] of [
    [clusterRbacName, clusterRbacName],
    [`${clusterRbacName}-auth-delegator`, 'system:auth-delegator'],
  ] as const) {
    await post(rbac('clusterrolebindings'), {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: roleRef('ClusterRole', role),
      subjects: [subject],
    });
  }
  await post(`/api/v1/namespaces/${meshNamespace}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'nginx-mesh-metrics-svc' },
    spec: {
      selector: { app: 'nginx-mesh-metrics' },
      ports: [{ name: 'http', port: 443, targetPort: 'metrics' }],
    },
  });
  await post(`/apis/apps/v1/namespaces/${meshNamespace}/deployments`, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'nginx-mesh-metrics' },
    spec: {
      selector: { matchLabels: { app: 'nginx-mesh-metrics' } },
      template: {
        metadata: { labels: { app: 'nginx-mesh-metrics' } },
        spec: {
          serviceAccountName: 'nginx-mesh-metrics',
          terminationGracePeriodSeconds: 5,
          securityContext: { runAsUser: 65532, runAsNonRoot: true },
          containers: [
            {
              name: 'nginx-mesh-metrics',
              image: CONTROLLER_IMAGE_REF,
              args: [
                'run',
                '--role',
                'metrics',
                '--mesh-namespace',
                meshNamespace,
                `--cluster-role=${clusterRbacName}`,
                '--prometheus-address',
                prometheusUrl,
              ],
              ports: [
                { name: 'metrics', containerPort: 8080 },
                { name: 'probes', containerPort: 8081 },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 'probes' }, periodSeconds: 1 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'probes' }, periodSeconds: 10 },
            },
          ],
        },
      },
    },
  });
  await post('/apis/apiregistration.k8s.io/v1/apiservices', {
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: { name: apiServiceName },
    spec: {
      group: 'metrics.smi-spec.io',
      version: 'v1alpha1',
      service: { name: 'nginx-mesh-metrics-svc', namespace: meshNamespace, port: 443 },
      groupPriorityMinimum: 100,
      versionPriority: 100,
    },
  });
}

interface Item {
  metadata: { name: string };
  edge: { direction: string; resource: Record<string, string> };
  metrics: { name: string; value: string }[];
}

function values(item: Item | undefined): Record<string, string> {
  return Object.fromEntries((item?.metrics ?? []).map((metric) => [metric.name, metric.value]));
}

const ingress = { src_namespace: 'edge', src_daemonset: 'ingress', src_pod: 'ingress-x' };
const db = { dst_namespace: 'shop', dst_statefulset: 'db', dst_pod: 'db-0', dst_service: 'db' };

beforeAll(async () => {
  rest = await testRest();
  const host = new URL(rest.server).hostname;
  fixture = await startFixtureServer({
    'web-1': [
      { labels: { direction: 'inbound', code: '2xx', ...ingress }, perSecond: 9 },
      { labels: { direction: 'inbound', code: '5xx', ...ingress }, perSecond: 1 },
      { labels: { direction: 'outbound', code: '2xx', ...db }, perSecond: 4 },
    ],
  });
  prometheus = await startPrometheus(
    [
      {
        address: `127.0.0.1:${fixture.port}`,
        metricsPath: '/pods/web-1/metrics',
        labels: { namespace: 'shop', pod: 'web-1', deployment: 'web' },
      },
    ],
    { host },
  );
  await createNamespace(rest, meshNamespace);
  await deployMetrics(prometheus.url);
  await waitFor('the metrics role to be ready', async () => {
    const pods = await listPods(rest, meshNamespace, 'app=nginx-mesh-metrics');
    return pods.length === 1 && pods[0] !== undefined && isReady(pods[0]) ? true : undefined;
  });
});

afterAll(async () => {
  for (const path of [
    `/apis/apiregistration.k8s.io/v1/apiservices/${apiServiceName}`,
    `${rbac('clusterroles')}/${clusterRbacName}`,
    `${rbac('clusterrolebindings')}/${clusterRbacName}`,
    `${rbac('clusterrolebindings')}/${clusterRbacName}-auth-delegator`,
    `${rbac('rolebindings', 'kube-system')}/${clusterRbacName}`,
  ]) {
    await rest.request('DELETE', path).catch(() => undefined);
  }
  await deleteNamespace(rest, meshNamespace);
  rest.close();
  await prometheus?.stop();
  await fixture?.close();
});

describe('the Traffic Metrics API through the API server', () => {
  it('becomes Available once the role has written its CA into the APIService', async () => {
    const available = await waitFor('the APIService to be Available', async () => {
      const service = await rest.request<{
        spec: { caBundle?: string };
        status?: { conditions?: { type: string; status: string }[] };
      }>('GET', `/apis/apiregistration.k8s.io/v1/apiservices/${apiServiceName}`);
      const condition = service.status?.conditions?.find((c) => c.type === 'Available');
      return condition?.status === 'True' ? service : undefined;
    });
    const secret = await rest.request<{ data: Record<string, string> }>(
      'GET',
      `/api/v1/namespaces/${meshNamespace}/secrets/nginx-mesh-metrics-tls`,
    );
    expect(available.spec.caBundle).toBe(secret.data['ca.crt']);
    const resources = await rest.request<{ resources: { name: string }[] }>('GET', base);
    expect(resources.resources.map((resource) => resource.name)).toContain('deployments/edges');
  });

  it('answers TrafficMetrics computed from Prometheus, proxied by the API server', async () => {
    const list = await waitFor(
      'a full 5s window of samples',
      async () => {
        const answer = await rest.request<{ items: Item[] }>(
          'GET',
          `${base}/namespaces/shop/deployments/web/edges?t=5s`,
        );
        return values(answer.items[0]).success_count === '45' &&
          values(answer.items[1]).success_count === '20'
          ? answer
          : undefined;
      },
      60_000,
      1_000,
    );
    expect(list.items.map((item) => item.edge)).toEqual([
      { direction: 'from', resource: { kind: 'DaemonSet', namespace: 'edge', name: 'ingress' } },
      { direction: 'to', resource: { kind: 'StatefulSet', namespace: 'shop', name: 'db' } },
    ]);
    expect(values(list.items[0])).toEqual({
      p99_response_latency: '19500m',
      p90_response_latency: '15',
      p50_response_latency: '6250m',
      success_count: '45',
      failure_count: '5',
    });
  });

  it('prints the tables with nginx-meshctl top once the 30s window is full', async () => {
    const meshctl = join(__dirname, '..', '..', 'dist', 'nginx-meshctl');
    const kubeconfig = ['--kubeconfig', testKubeconfig()];
    await waitFor(
      'a full 30s window of samples',
      async () => {
        const answer = await rest.request<{ items: Item[] }>(
          'GET',
          `${base}/namespaces/shop/deployments`,
        );
        return values(answer.items[0]).success_count === '270' ? true : undefined;
      },
      90_000,
      1_000,
    );
    const summary = await execa(meshctl, ['top', '-n', 'shop', ...kubeconfig], { reject: false });
    expect(summary.stderr).toBe('');
    expect(summary.stdout).toBe(
      [
        'Deployment  Incoming Success  Outgoing Success  NumRequests',
        'web         90.00%            100.00%           420',
        '',
      ].join('\n'),
    );
    const edges = await execa(meshctl, ['top', 'deploy/web', '-n', 'shop', ...kubeconfig], {
      reject: false,
    });
    expect(edges.stdout).toBe(
      [
        'Deployment  Direction  Resource      Success Rate  P99   P90   P50  NumRequests',
        'web',
        '            From       edge/ingress  90.00%        20ms  15ms  7ms  300',
        '            To         db            100.00%       20ms  15ms  7ms  120',
        '',
      ].join('\n'),
    );
    const none = await execa(meshctl, ['top', 'pods', '-n', 'quiet', ...kubeconfig], {
      reject: false,
    });
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toBe(
      'Error: no traffic yet for pods in namespace "quiet": no metrics populated - make sure traffic is flowing',
    );
  });
});
