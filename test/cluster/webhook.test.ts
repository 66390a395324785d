// The injection webhook on a real API server: the controller runs as a pod of the test cluster
// (the executable, as the nginx-mesh-controller image), manages its serving certificate, and the
// API server calls it for pods in namespaces that opted in.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
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
import {
  CONTROLLER_IMAGE_REF,
  ECHO_SERVER_IMAGE,
  INIT_IMAGE_REF,
  SIDECAR_IMAGE_REF,
} from '../support/images';

const meshNamespace = 'nginx-mesh';
const appNamespace = 'webhook-app';
const plainNamespace = 'webhook-plain';
const configurationName = 'sidecar-injector-webhook-cfg.internal.builtin.nsm.nginx';
let rest: KubeRest;

async function create(path: string, body: unknown): Promise<void> {
  await rest.request('POST', path, body);
}

async function deployController(): Promise<void> {
  await create(`/api/v1/namespaces/${meshNamespace}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'nginx-mesh-controller' },
  });
  await create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${meshNamespace}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'nginx-mesh-controller' },
    rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'update'] }],
  });
  await create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${meshNamespace}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'nginx-mesh-controller' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'nginx-mesh-controller' },
    subjects: [{ kind: 'ServiceAccount', name: 'nginx-mesh-controller', namespace: meshNamespace }],
  });
  await create('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'nginx-mesh-controller-webhook' },
    rules: [
      {
        apiGroups: ['admissionregistration.k8s.io'],
        resources: ['mutatingwebhookconfigurations'],
        resourceNames: [configurationName],
        verbs: ['get', 'patch'],
      },
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        resourceNames: ['nginx-mesh-controller-webhook'],
        verbs: ['get'],
      },
    ],
  });
  await create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'nginx-mesh-controller-webhook' },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'nginx-mesh-controller-webhook',
    },
    subjects: [{ kind: 'ServiceAccount', name: 'nginx-mesh-controller', namespace: meshNamespace }],
  });
  await create(`/api/v1/namespaces/${meshNamespace}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'nginx-mesh-webhook' },
    spec: { selector: { app: 'nginx-mesh-controller' }, ports: [{ port: 443, targetPort: 9443 }] },
  });
  await create(`/api/v1/namespaces/${meshNamespace}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'nginx-mesh-controller' },
    spec: { selector: { app: 'nginx-mesh-controller' }, ports: [{ name: 'version', port: 8082 }] },
  });
  await create(`/apis/apps/v1/namespaces/${meshNamespace}/deployments`, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'nginx-mesh-controller' },
    spec: {
      selector: { matchLabels: { app: 'nginx-mesh-controller' } },
      template: {
        metadata: { labels: { app: 'nginx-mesh-controller' } },
        spec: {
          serviceAccountName: 'nginx-mesh-controller',
          terminationGracePeriodSeconds: 5,
          securityContext: { runAsUser: 65532, runAsNonRoot: true },
          containers: [
            {
              name: 'controller',
              image: CONTROLLER_IMAGE_REF,
              args: [
                'run',
                '--role',
                'controller',
                '--mesh-namespace',
                meshNamespace,
                '--cluster-role=nginx-mesh-controller-webhook',
                '--sidecar-image',
                SIDECAR_IMAGE_REF,
                '--init-image',
                INIT_IMAGE_REF,
              ],
              ports: [
                { containerPort: 9443 },
                { name: 'probes', containerPort: 8081 },
                { name: 'version', containerPort: 8082 },
              ],
              // As deploy probes it: the webhook serves while publishing waits (here for ever:
              // there is no registrar).
              readinessProbe: {
                httpGet: { path: '/readyz/serving', port: 'probes' },
                periodSeconds: 1,
              },
            },
          ],
        },
      },
    },
  });
  await create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: configurationName },
    webhooks: [
      {
        name: 'nginx-mesh-controller.sidecar.injector',
        clientConfig: {
          service: {
            name: 'nginx-mesh-webhook',
            namespace: meshNamespace,
            path: '/inject',
            port: 443,
          },
        },
        rules: [
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
        ],
        namespaceSelector: {
          matchExpressions: [
            {
              key: 'kubernetes.io/metadata.name',
              operator: 'NotIn',
              values: ['kube-system', meshNamespace],
            },
            { key: 'injector.nsm.nginx.com/auto-inject', operator: 'In', values: ['enabled'] },
          ],
        },
        objectSelector: {
          matchExpressions: [
            { key: 'injector.nsm.nginx.com/auto-inject', operator: 'NotIn', values: ['disabled'] },
            { key: 'injector.nsm.nginx.com/status', operator: 'NotIn', values: ['injected'] },
          ],
        },
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 10,
      },
    ],
  });
}

function deployment(name: string): unknown {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'app', image: ECHO_SERVER_IMAGE, ports: [{ containerPort: 8080 }] }],
        },
      },
    },
  };
}

interface PodSpecView {
  metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: {
    containers: { name: string }[];
    initContainers?: { name: string; restartPolicy?: string }[];
  };
}

async function firstPod(namespace: string): Promise<PodSpecView> {
  return waitFor(`a pod in ${namespace}`, async () => {
    const list = await rest.request<{ items: PodSpecView[] }>(
      'GET',
      `/api/v1/namespaces/${namespace}/pods`,
    );
    return list.items[0];
  });
}

function postReview(ip: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: ip,
        port: 9443,
        path: '/inject',
        method: 'POST',
        rejectUnauthorized: false,
        timeout: 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  rest = await testRest();
  await createNamespace(rest, meshNamespace);
  await deployController();
  await waitFor('the controller to be ready', async () => {
    const pods = await listPods(rest, meshNamespace, 'app=nginx-mesh-controller');
    return pods.length === 1 && pods[0] !== undefined && isReady(pods[0]) ? true : undefined;
  });
});

afterAll(async () => {
  for (const namespace of [appNamespace, plainNamespace, meshNamespace])
    await deleteNamespace(rest, namespace);
  for (const path of [
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${configurationName}`,
    '/apis/rbac.authorization.k8s.io/v1/clusterroles/nginx-mesh-controller-webhook',
    '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/nginx-mesh-controller-webhook',
  ]) {
    await rest.request('DELETE', path).catch(() => undefined);
  }
  rest.close();
});

describe('the injection webhook', () => {
  it('puts its CA into the webhook configuration and keeps the certificate in a Secret', async () => {
    const caBundle = await waitFor('the CA bundle', async () => {
      const configuration = await rest.request<{
        webhooks: { clientConfig: { caBundle?: string } }[];
      }>(
        'GET',
        `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${configurationName}`,
      );
      return configuration.webhooks[0]?.clientConfig.caBundle;
    });
    const secret = await rest.request<{ data: Record<string, string> }>(
      'GET',
      `/api/v1/namespaces/${meshNamespace}/secrets/nginx-mesh-webhook-tls`,
    );
    expect(secret.data['ca.crt']).toBe(caBundle);
    expect(Buffer.from(caBundle, 'base64').toString('utf8')).toContain('BEGIN CERTIFICATE');
  });

  it('injects pods of a Deployment in a namespace that opted in', async () => {
    await rest.request('POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: appNamespace, labels: { 'injector.nsm.nginx.com/auto-inject': 'enabled' } },
    });
    await waitFor('the default ServiceAccount', () =>
      rest
        .request('GET', `/api/v1/namespaces/${appNamespace}/serviceaccounts/default`)
        .then(() => true),
    );
    await rest.request(
      'POST',
      `/apis/apps/v1/namespaces/${appNamespace}/deployments`,
      deployment('shop'),
    );
    const pod = await firstPod(appNamespace);
    expect(pod.metadata.annotations?.['injector.nsm.nginx.com/status']).toBe('injected');
    expect(pod.metadata.labels?.['nsm.nginx.com/deployment']).toBe('shop');
    expect(pod.spec.initContainers?.map((container) => container.name)).toEqual([
      'nginx-mesh-init',
      'nginx-mesh-sidecar',
    ]);
    expect(pod.spec.initContainers?.[1]?.restartPolicy).toBe('Always');
    expect(pod.spec.containers.map((container) => container.name)).toEqual(['app']);
  });

  it('leaves pods in other namespaces untouched', async () => {
    await createNamespace(rest, plainNamespace);
    await rest.request(
      'POST',
      `/apis/apps/v1/namespaces/${plainNamespace}/deployments`,
      deployment('plain'),
    );
    const pod = await firstPod(plainNamespace);
    expect(pod.metadata.annotations?.['injector.nsm.nginx.com/status']).toBeUndefined();
    expect(pod.spec.initContainers ?? []).toEqual([]);
  });

  it('answers a malformed review with 400 and the reason, and keeps serving', async () => {
    const [controller] = await listPods(rest, meshNamespace, 'app=nginx-mesh-controller');
    const ip = controller?.status?.podIP ?? '';
    const garbage = await postReview(ip, '{"kind": ');
    expect(garbage.status).toBe(400);
    expect(garbage.text).toMatch(/^malformed AdmissionReview: /);
    const wrongKind = await postReview(ip, JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }));
    expect(wrongKind).toEqual({
      status: 400,
      text: 'expected an admission.k8s.io/v1 AdmissionReview, got v1 Pod\n',
    });
    const [again] = await listPods(rest, meshNamespace, 'app=nginx-mesh-controller');
    expect(again !== undefined && isReady(again)).toBe(true);
  });

  it('answers nginx-meshctl version through the API server for the control plane', async () => {
    const root = join(__dirname, '..', '..');
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      version: string;
    };
    const result = await execa(
      join(root, 'dist', 'nginx-meshctl'),
      ['version', '--kubeconfig', testKubeconfig(), '-n', meshNamespace],
      { reject: false },
    );
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe('');
    const [client, controller] = result.stdout.split('\n');
    expect(client?.startsWith(`nginx-meshctl - v${version}+`)).toBe(true);
    expect(controller).toBe(`nginx-mesh-controller - v${version}`);
  });

  it('reports through nginx-meshctl status a controller that serves but cannot publish, and why', async () => {
    const result = await execa(
      join(__dirname, '..', '..', 'dist', 'nginx-meshctl'),
      ['status', '--kubeconfig', testKubeconfig(), '-n', meshNamespace],
      { reject: false },
    );
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('Checking NGINX Service Mesh setup....');
    // Ready for the webhook Service, but without a registrar it never gets an SVID for NATS.
    expect(lines).toContainEqual(expect.stringMatching(/^nginx-mesh-controller +1\/1 /));
    expect(lines).toContainEqual(
      expect.stringMatching(/^ {2}nginx-mesh-controller: nginx-mesh-controller-\S+: no SVID yet; /),
    );
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^Error: mesh controller unavailable: no SVID yet; /);
  });

  it('lists the Services of opted-in namespaces with nginx-meshctl services', async () => {
    await rest.request('POST', `/api/v1/namespaces/${appNamespace}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'shop' },
      spec: { selector: { app: 'shop' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    const [pod] = await listPods(rest, appNamespace, 'app=shop');
    const podIP = await waitFor('the shop pod address', () => Promise.resolve(pod?.status?.podIP));
    const result = await waitFor('the shop endpoint in services', async () => {
      const run = await execa(
        join(__dirname, '..', '..', 'dist', 'nginx-meshctl'),
        ['services', '--kubeconfig', testKubeconfig()],
        { reject: false },
      );
      return run.stdout.includes(podIP) ? run : undefined;
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(`^${appNamespace}/shop\\s+${podIP.replace(/\./g, '\\.')}\\s+80$`, 'm'),
    );
    expect(result.stdout).not.toContain(`${plainNamespace}/`);
  });
});
