// The controller's Kubernetes side on a real API server: its caches follow creates, updates and
// deletes of Services, EndpointSlices and TrafficSplits; two candidates share one Lease with
// exactly one leader, and the other takes over promptly when the leader stops; a problem found
// in a TrafficSplit becomes one Warning Event and an Accepted=False condition.
import { buildMeshCrds } from '../../src/manifests/crds';
import type { SnapshotProblem } from '../../src/manifests/snapshot/types';
import { systemClock } from '../../src/runtime/clock';
import type { KubeConnection } from '../../src/runtime/kube/access';
import { createKubeAccess } from '../../src/runtime/kube/access';
import { KubeClient } from '../../src/runtime/kube/client';
import type { ClusterCache, KubeJson } from '../../src/runtime/controller/cluster-cache';
import { startClusterCache } from '../../src/runtime/controller/cluster-cache';
import type { LeaderElector } from '../../src/runtime/controller/leader';
import { startLeaderElection } from '../../src/runtime/controller/leader';
import { createPolicyStatusWriter } from '../../src/runtime/controller/policy-status';
import { createJsonLogger } from '../../src/runtime/role/log';
import { testKubeconfig, useTestNamespace, waitFor } from './support/kube';

const namespace = 'ctrl-watch';
/** How long a change may take to reach the cache. */
const CACHE_BOUND_MS = 5_000;
useTestNamespace(namespace);
const logger = createJsonLogger({
  level: 'warn',
  out: { write: (text) => void process.stderr.write(text) },
  now: () => new Date(),
});
let connection: KubeConnection;
let client: KubeClient;

const SPLITS = `/apis/split.smi-spec.io/v1alpha3/namespaces/${namespace}/trafficsplits`;

beforeAll(async () => {
  connection = await createKubeAccess({}).connect({
    kubeconfig: testKubeconfig(),
    timeoutMs: 15_000,
  });
  client = new KubeClient(connection);
  for (const crd of buildMeshCrds() as { metadata: { name: string } }[]) {
    const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`;
    await client.apply(path, crd, 'controller-watch-test');
    await waitFor(`${crd.metadata.name} to be Established`, async () => {
      const current = await client.get<{
        status?: { conditions?: { type: string; status: string }[] };
      }>(path);
      return current?.status?.conditions?.some(
        (c) => c.type === 'Established' && c.status === 'True',
      )
        ? true
        : undefined;
    });
  }
});

const nameOf = (object: KubeJson): string =>
  (object.metadata as { name?: string } | undefined)?.name ?? '';
const labelsOf = (object: KubeJson): Record<string, string> =>
  (object.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};

/** Waits until the cache's collection satisfies check; returns how long that took. */
async function seen(
  cache: ClusterCache,
  what: string,
  check: (state: ReturnType<ClusterCache['state']>) => boolean,
): Promise<number> {
  const started = Date.now();
  await waitFor(
    what,
    () => Promise.resolve(check(cache.state()) ? true : undefined),
    CACHE_BOUND_MS,
    20,
  );
  return Date.now() - started;
}

describe('cluster cache', () => {
  let cache: ClusterCache;
  const latencies: number[] = [];

  beforeAll(async () => {
    cache = startClusterCache(connection, {
      meshNamespace: namespace,
      clock: systemClock,
      random: Math.random,
      logger,
      watchTimeoutSeconds: 60,
    });
    await waitFor(
      'the cache to sync',
      () => Promise.resolve(cache.synced() ? true : undefined),
      15_000,
      50,
    );
  });

  afterAll(async () => {
    await cache.stop();
    process.stderr.write(`cache latencies (ms): ${latencies.join(', ')}\n`);
  });

  it('follows a Service through create, update and delete', async () => {
    const path = `/api/v1/namespaces/${namespace}/services`;
    await client.create(path, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web' },
      spec: { ports: [{ name: 'http', port: 80 }], selector: { app: 'web' } },
    });
    latencies.push(
      await seen(cache, 'Service web', (s) => s.services.some((o) => nameOf(o) === 'web')),
    );
    await client.mergePatch(`${path}/web`, { metadata: { labels: { tier: 'front' } } });
    latencies.push(
      await seen(cache, 'Service web labelled', (s) =>
        s.services.some((o) => nameOf(o) === 'web' && labelsOf(o).tier === 'front'),
      ),
    );
    await client.delete(`${path}/web`);
    latencies.push(
      await seen(cache, 'Service web gone', (s) => !s.services.some((o) => nameOf(o) === 'web')),
    );
  });

  it('follows an EndpointSlice through create, update and delete', async () => {
    const path = `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`;
    await client.create(path, {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-abc', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['198.18.7.1'] }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    const addresses = (o: KubeJson): string[] =>
      ((o.endpoints ?? []) as { addresses: string[] }[]).flatMap((e) => e.addresses);
    latencies.push(
      await seen(cache, 'EndpointSlice', (s) =>
        s.endpointSlices.some((o) => nameOf(o) === 'web-abc'),
      ),
    );
    await client.mergePatch(`${path}/web-abc`, {
      endpoints: [{ addresses: ['198.18.7.1'] }, { addresses: ['198.18.7.2'] }],
    });
    latencies.push(
      await seen(cache, 'EndpointSlice with two endpoints', (s) =>
        s.endpointSlices.some((o) => nameOf(o) === 'web-abc' && addresses(o).length === 2),
      ),
    );
    await client.delete(`${path}/web-abc`);
    latencies.push(
      await seen(
        cache,
        'EndpointSlice gone',
        (s) => !s.endpointSlices.some((o) => nameOf(o) === 'web-abc'),
      ),
    );
  });

  it('follows a TrafficSplit through create, update and delete', async () => {
    await client.create(SPLITS, {
      apiVersion: 'split.smi-spec.io/v1alpha3',
      kind: 'TrafficSplit',
      metadata: { name: 'canary' },
      spec: { service: 'web', backends: [{ service: 'web-v1', weight: 100 }] },
    });
    const weights = (o: KubeJson): number[] =>
      ((o.spec as { backends?: { weight: number }[] }).backends ?? []).map((b) => b.weight);
    latencies.push(
      await seen(cache, 'TrafficSplit', (s) => s.trafficSplits.some((o) => nameOf(o) === 'canary')),
    );
    await client.mergePatch(`${SPLITS}/canary`, {
      spec: {
        backends: [
          { service: 'web-v1', weight: 90 },
          { service: 'web-v2', weight: 10 },
        ],
      },
    });
    latencies.push(
      await seen(cache, 'TrafficSplit 90/10', (s) =>
        s.trafficSplits.some((o) => nameOf(o) === 'canary' && weights(o).join('/') === '90/10'),
      ),
    );
    await client.delete(`${SPLITS}/canary`);
    latencies.push(
      await seen(
        cache,
        'TrafficSplit gone',
        (s) => !s.trafficSplits.some((o) => nameOf(o) === 'canary'),
      ),
    );
  });
});

describe('leader election', () => {
  it('elects exactly one of two candidates, and the other takes over when it stops', async () => {
    const candidates = new Map<string, LeaderElector>();
    for (const identity of ['ctrl-a', 'ctrl-b']) {
      candidates.set(
        identity,
        startLeaderElection(client, {
          namespace,
          identity,
          clock: systemClock,
          random: Math.random,
          logger,
          onStartedLeading: () => undefined,
          onStoppedLeading: () => undefined,
        }),
      );
    }
    const leaders = () => [...candidates].filter(([, elector]) => elector.isLeader());
    const [first] = await waitFor(
      'a leader',
      () => Promise.resolve(leaders().length > 0 ? leaders() : undefined),
      15_000,
      50,
    );
    // Give the other candidate a few attempts: it must not lead too.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(leaders()).toHaveLength(1);
    const [leaderName, leader] = first ?? ['', undefined];
    const [otherName, other] = [...candidates].find(([name]) => name !== leaderName) ?? [];
    const lease = await client.get<{ spec: { holderIdentity: string } }>(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/nginx-mesh-controller`,
    );
    expect(lease?.spec.holderIdentity).toBe(leaderName);

    const stoppedAt = Date.now();
    await leader?.stop();
    await waitFor(
      `${otherName ?? ''} to take over`,
      () => Promise.resolve(other?.isLeader() === true ? true : undefined),
      15_000,
      50,
    );
    const takeoverMs = Date.now() - stoppedAt;
    process.stderr.write(`leader takeover after stop: ${takeoverMs} ms\n`);
    expect(takeoverMs).toBeLessThan(15_000);
    expect(other?.leaseTransitions()).toBeGreaterThanOrEqual(1);
    await other?.stop();
  });
});

describe('policy status', () => {
  it('records one Warning Event and sets Accepted=False on a TrafficSplit', async () => {
    await client.create(SPLITS, {
      apiVersion: 'split.smi-spec.io/v1alpha3',
      kind: 'TrafficSplit',
      metadata: { name: 'broken' },
      spec: { service: 'nowhere', backends: [{ service: 'nowhere-v1', weight: 100 }] },
    });
    const split = await client.get<KubeJson & { metadata: { uid: string } }>(`${SPLITS}/broken`);
    if (split === undefined) throw new Error('TrafficSplit broken was not stored');
    const problem: SnapshotProblem = {
      apiVersion: 'split.smi-spec.io/v1alpha3',
      kind: 'TrafficSplit',
      namespace,
      name: 'broken',
      reason: 'UnknownService',
      message: `spec.service "nowhere" names no Service in namespace ${namespace}`,
    };
    const writer = createPolicyStatusWriter({
      client,
      clock: systemClock,
      logger,
      meshNamespace: namespace,
      instance: 'ctrl-a',
    });
    expect(await writer.report([problem], [split])).toEqual({ eventsCreated: 1, statusPatched: 1 });
    expect(await writer.report([problem], [split])).toEqual({ eventsCreated: 0, statusPatched: 0 });

    const events = await client.list<{
      type: string;
      reason: string;
      message: string;
      involvedObject: { kind: string; name: string; uid: string };
      source: { component: string };
    }>(`/api/v1/namespaces/${namespace}/events`);
    const mine = (events ?? []).filter((e) => e.involvedObject.uid === split.metadata.uid);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      type: 'Warning',
      reason: 'UnknownService',
      message: problem.message,
      involvedObject: { kind: 'TrafficSplit', name: 'broken' },
      source: { component: 'nginx-mesh-controller' },
    });

    const stored = await client.get<{
      status?: { conditions?: { type: string; status: string; reason: string }[] };
    }>(`${SPLITS}/broken`);
    expect(stored?.status?.conditions).toEqual([
      expect.objectContaining({ type: 'Accepted', status: 'False', reason: 'UnknownService' }),
    ]);

    // Fixed: the condition turns True, and no further Event is recorded.
    const fresh = await client.get<KubeJson>(`${SPLITS}/broken`);
    expect(await writer.report([], fresh === undefined ? [] : [fresh])).toEqual({
      eventsCreated: 0,
      statusPatched: 1,
    });
    const after = await client.get<{
      status?: { conditions?: { type: string; status: string; reason: string }[] };
    }>(`${SPLITS}/broken`);
    expect(after?.status?.conditions).toEqual([
      expect.objectContaining({ type: 'Accepted', status: 'True', reason: 'Accepted' }),
    ]);
  });
});
