import type { Clock } from '../../src/runtime/clock';
import type { RawResponse } from '../../src/runtime/kube/access';
import type { ClusterCache } from '../../src/runtime/controller/cluster-cache';
import { startClusterCache, trimPod } from '../../src/runtime/controller/cluster-cache';
import { createJsonLogger } from '../../src/runtime/role/log';
import { kubeScripted, okJson, statusAnswer } from '../support/fake-kube';

const quietLogger = createJsonLogger({
  level: 'error',
  out: { write: () => undefined },
  now: () => new Date(0),
});

/** Sleeps that never end on their own: retries wait until the cache is stopped. */
const stalledClock: Clock = {
  now: () => new Date(0),
  sleep: (_ms, signal) =>
    new Promise((_resolve, reject) =>
      signal?.addEventListener('abort', () => reject(signal.reason as Error)),
    ),
};

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'web-1',
    namespace: 'shop',
    uid: 'u1',
    labels: { app: 'web' },
    annotations: { 'injector.nsm.nginx.com/status': 'injected' },
    ownerReferences: [{ kind: 'ReplicaSet', name: 'web-6d4f', controller: true }],
    managedFields: [{ manager: 'kubelet' }],
  },
  spec: { serviceAccountName: 'web', containers: [{ name: 'app', image: 'web:1', env: [] }] },
  status: {
    phase: 'Running',
    podIP: '198.18.0.10',
    podIPs: [{ ip: '198.18.0.10' }],
    containerStatuses: [{ name: 'app', ready: true }],
  },
};

function list(items: unknown[]): RawResponse {
  return okJson({ metadata: { resourceVersion: '7' }, items });
}

/** Answers each collection's list from `lists` (404 when absent); watches send `events`. */
function cacheOver(lists: Record<string, unknown[]>, events: Record<string, unknown[]> = {}) {
  const fake = kubeScripted((request) => {
    const [path = '', query = ''] = request.path.split('?');
    if (request.method === 'WATCH') {
      const lines = events[path];
      delete events[path];
      if (lines === undefined) return new Promise<RawResponse>(() => undefined);
      return { status: 200, body: lines.map((line) => JSON.stringify(line)).join('\n') };
    }
    const items = lists[path];
    if (items === undefined) return statusAnswer(404, 'NotFound', 'not found');
    expect(query).toContain('limit=500');
    return list(items);
  });
  const cache = startClusterCache(fake.connection, {
    meshNamespace: 'nginx-mesh',
    clock: stalledClock,
    random: () => 0.5,
    logger: quietLogger,
  });
  return { cache, fake };
}

async function untilSynced(cache: ClusterCache): Promise<void> {
  for (let i = 0; i < 100 && !cache.synced(); i += 1) await new Promise((r) => setImmediate(r));
  expect(cache.synced()).toBe(true);
}

describe('trimPod', () => {
  it('keeps only the fields a snapshot reads', () => {
    expect(trimPod(pod)).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'web-1',
        namespace: 'shop',
        uid: 'u1',
        labels: { app: 'web' },
        annotations: { 'injector.nsm.nginx.com/status': 'injected' },
        ownerReferences: [{ kind: 'ReplicaSet', name: 'web-6d4f', controller: true }],
      },
      spec: { serviceAccountName: 'web' },
      status: { phase: 'Running', podIP: '198.18.0.10', podIPs: [{ ip: '198.18.0.10' }] },
    });
  });
});

describe('startClusterCache', () => {
  it('syncs even while policy CRDs are missing, and hands out sorted, trimmed state', async () => {
    const svc = (name: string) => ({ metadata: { name, namespace: 'shop', managedFields: [{}] } });
    const { cache, fake } = cacheOver({
      '/api/v1/services': [svc('web'), svc('db')],
      '/apis/discovery.k8s.io/v1/endpointslices': [],
      '/api/v1/pods': [pod],
      '/api/v1/namespaces': [{ metadata: { name: 'shop' } }],
      '/apis/nsm.nginx.com/v1alpha2/namespaces/nginx-mesh/meshconfigs': [
        { metadata: { name: 'nginx-mesh-config', namespace: 'nginx-mesh' } },
      ],
      '/api/v1/namespaces/nginx-mesh/configmaps': [
        { metadata: { name: 'meshconfig', namespace: 'nginx-mesh' }, data: { a: 'b' } },
      ],
    });
    expect(cache.synced()).toBe(false);
    await untilSynced(cache);
    const state = cache.state();
    expect(state.services).toEqual([
      { metadata: { name: 'db', namespace: 'shop' } },
      { metadata: { name: 'web', namespace: 'shop' } },
    ]);
    expect(state.pods).toEqual([trimPod(pod)]);
    expect(state.trafficSplits).toEqual([]);
    expect(state.rateLimits).toEqual([]);
    expect(state.meshConfig).toHaveLength(1);
    expect(state.meshConfigMap).toEqual({
      metadata: { name: 'meshconfig', namespace: 'nginx-mesh' },
      data: { a: 'b' },
    });
    const meshPaths = fake.requests
      .map((request) => request.path)
      .filter((path) => path.includes('/namespaces/nginx-mesh/'));
    expect(meshPaths.some((p) => p.includes('fieldSelector=metadata.name%3Dmeshconfig'))).toBe(
      true,
    );
    expect(
      meshPaths.some((p) => p.includes('fieldSelector=metadata.name%3Dnginx-mesh-config')),
    ).toBe(true);
    expect(fake.requests.map((r) => r.path)).toContain(
      '/apis/specs.smi.nginx.com/v1alpha2/ratelimits?limit=500',
    );
    await cache.stop();
  });

  it('applies watch events and tells its listeners', async () => {
    const split = (name: string, rv: string) => ({
      apiVersion: 'split.smi-spec.io/v1alpha3',
      kind: 'TrafficSplit',
      metadata: { name, namespace: 'shop', resourceVersion: rv },
    });
    const path = '/apis/split.smi-spec.io/v1alpha3/trafficsplits';
    const { cache } = cacheOver(
      { [path]: [split('a', '1')] },
      {
        [path]: [
          { type: 'ADDED', object: split('b', '2') },
          { type: 'DELETED', object: split('a', '3') },
        ],
      },
    );
    let changes = 0;
    cache.onChange(() => (changes += 1));
    await untilSynced(cache);
    for (let i = 0; i < 100 && changes < 17; i += 1) await new Promise((r) => setImmediate(r));
    expect(cache.state().trafficSplits).toEqual([split('b', '2')]);
    // One complete set per kind (18), then one call per event.
    expect(changes).toBe(20);
    await cache.stop();
  });
});
