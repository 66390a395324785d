// The mesh CRDs on the real API server: they are accepted as structural, become Established,
// store valid policies and reject invalid ones with the schema's reason.
import { buildMeshCrds } from '../../src/manifests/crds';
import type { KubeRest } from './harness/kube-rest';
import { KubeRestError } from './harness/kube-rest';
import { createNamespace, deleteNamespace, testRest, waitFor, waitForNoMesh } from './support/kube';

const namespace = 'crd-tier';
let rest: KubeRest;
const crds = buildMeshCrds() as { metadata: { name: string } }[];

beforeAll(async () => {
  rest = await testRest();
  // The CRDs are cluster-scoped: an earlier file's must be gone first.
  await waitForNoMesh(rest);
  for (const crd of crds) {
    await rest.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  }
  await createNamespace(rest, namespace);
});

afterAll(async () => {
  await deleteNamespace(rest, namespace);
  for (const crd of crds) {
    await rest
      .request(
        'DELETE',
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
      )
      .catch(() => undefined);
  }
  rest.close();
});

async function rejection(path: string, body: unknown): Promise<string> {
  try {
    await rest.request('POST', path, body);
  } catch (error) {
    if (error instanceof KubeRestError && error.status === 422) return error.message;
    throw error;
  }
  throw new Error(`${path} accepted an invalid object`);
}

describe('mesh CRDs', () => {
  it('become Established', async () => {
    for (const crd of crds) {
      await waitFor(`${crd.metadata.name} to be Established`, async () => {
        const current = await rest.request<{
          status?: { conditions?: { type: string; status: string }[] };
        }>('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
        return current.status?.conditions?.some(
          (c) => c.type === 'Established' && c.status === 'True',
        )
          ? true
          : undefined;
      });
    }
  });

  it('store valid policies of every kind', async () => {
    const objects: [string, unknown][] = [
      [
        `/apis/split.smi-spec.io/v1alpha3/namespaces/${namespace}/trafficsplits`,
        {
          apiVersion: 'split.smi-spec.io/v1alpha3',
          kind: 'TrafficSplit',
          metadata: { name: 'reviews' },
          spec: {
            service: 'reviews',
            backends: [
              { service: 'reviews-v1', weight: 90 },
              { service: 'reviews-v2', weight: 10 },
            ],
            matches: [{ kind: 'HTTPRouteGroup', name: 'canary' }],
          },
        },
      ],
      [
        `/apis/access.smi-spec.io/v1alpha2/namespaces/${namespace}/traffictargets`,
        {
          apiVersion: 'access.smi-spec.io/v1alpha2',
          kind: 'TrafficTarget',
          metadata: { name: 'allow-web' },
          spec: {
            destination: { kind: 'ServiceAccount', name: 'api', namespace },
            sources: [{ kind: 'ServiceAccount', name: 'web', namespace }],
            rules: [{ kind: 'HTTPRouteGroup', name: 'canary', matches: ['get'] }],
          },
        },
      ],
      [
        `/apis/specs.smi-spec.io/v1alpha3/namespaces/${namespace}/httproutegroups`,
        {
          apiVersion: 'specs.smi-spec.io/v1alpha3',
          kind: 'HTTPRouteGroup',
          metadata: { name: 'canary' },
          spec: {
            matches: [
              { name: 'get', methods: ['GET'], pathRegex: '/api', headers: { 'x-canary': 'yes' } },
            ],
          },
        },
      ],
      [
        `/apis/specs.smi-spec.io/v1alpha3/namespaces/${namespace}/tcproutes`,
        {
          apiVersion: 'specs.smi-spec.io/v1alpha3',
          kind: 'TCPRoute',
          metadata: { name: 'db' },
          spec: {},
        },
      ],
      [
        `/apis/specs.smi.nginx.com/v1alpha2/namespaces/${namespace}/ratelimits`,
        {
          apiVersion: 'specs.smi.nginx.com/v1alpha2',
          kind: 'RateLimit',
          metadata: { name: 'ten' },
          spec: {
            destination: { kind: 'Service', name: 'api' },
            name: '10rs',
            rate: '10r/s',
            burst: 5,
            delay: 'nodelay',
          },
        },
      ],
      [
        `/apis/specs.smi.nginx.com/v1alpha1/namespaces/${namespace}/circuitbreakers`,
        {
          apiVersion: 'specs.smi.nginx.com/v1alpha1',
          kind: 'CircuitBreaker',
          metadata: { name: 'api' },
          spec: { destination: { kind: 'Service', name: 'api' }, errors: 3, timeoutSeconds: 30 },
        },
      ],
    ];
    for (const [path, body] of objects) await rest.request('POST', path, body);
    const stored = await rest.request<{ spec: { delay: unknown } }>(
      'GET',
      `/apis/specs.smi.nginx.com/v1alpha2/namespaces/${namespace}/ratelimits/ten`,
    );
    expect(stored.spec.delay).toBe('nodelay');
  });

  it('reject invalid policies with the reason', async () => {
    expect(
      await rejection(`/apis/specs.smi.nginx.com/v1alpha2/namespaces/${namespace}/ratelimits`, {
        apiVersion: 'specs.smi.nginx.com/v1alpha2',
        kind: 'RateLimit',
        metadata: { name: 'bad' },
        spec: { destination: { kind: 'Service', name: 'api' }, name: 'x', rate: '10 per second' },
      }),
    ).toContain('spec.rate');
    expect(
      await rejection(`/apis/split.smi-spec.io/v1alpha3/namespaces/${namespace}/trafficsplits`, {
        apiVersion: 'split.smi-spec.io/v1alpha3',
        kind: 'TrafficSplit',
        metadata: { name: 'bad' },
        spec: { service: 'reviews', backends: [{ service: 'reviews-v1', weight: -1 }] },
      }),
    ).toContain('spec.backends[0].weight');
    expect(
      await rejection(
        `/apis/specs.smi.nginx.com/v1alpha1/namespaces/${namespace}/circuitbreakers`,
        {
          apiVersion: 'specs.smi.nginx.com/v1alpha1',
          kind: 'CircuitBreaker',
          metadata: { name: 'bad' },
          spec: { destination: { kind: 'Pod', name: 'api' }, errors: 1, timeoutSeconds: 1 },
        },
      ),
    ).toContain('spec.destination.kind');
    expect(
      await rejection(`/apis/nsm.nginx.com/v1alpha2/namespaces/${namespace}/meshconfigs`, {
        apiVersion: 'nsm.nginx.com/v1alpha2',
        kind: 'MeshConfig',
        metadata: { name: 'nginx-mesh-config' },
        spec: { meshConfigClassName: 'c', mtls: { mode: 'sometimes', svidTTL: '0h' } },
      }),
    ).toMatch(/spec\.mtls\.(mode|svidTTL)/);
  });
});
