// The controller's Kubernetes side on a real API server, as the controller's ServiceAccount with
// exactly the RBAC the deploy manifests grant it: its caches follow creates, updates and deletes
// of Services, EndpointSlices and TrafficSplits; two candidates share one Lease with exactly one
// leader, and the other takes over promptly when the leader stops; a problem found in a
// TrafficSplit becomes one Warning Event and an Accepted=False condition.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CONTROLLER_NAME } from '../../src/manifests/constants';
import type { Manifest } from '../../src/manifests/install/objects';
import { CONTROLLER_RBAC_NAME, buildRbac } from '../../src/manifests/install/rbac';
import { objectPath } from '../../src/manifests/install/resources';
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
/**
 * How long a change may take to reach the cache. Changes usually arrive within tens of
 * milliseconds (the latencies are printed); a quiet collection's watch is renewed at once when
 * the server ends it, so nothing waits out a back-off.
 */
const CACHE_BOUND_MS = 5_000;
useTestNamespace(namespace);
/** Every log line of the code under test, also passed on to stderr. */
const logLines: string[] = [];
const logger = createJsonLogger({
  level: 'warn',
  out: {
    write: (text) => {
      logLines.push(text);
      process.stderr.write(text);
    },
  },
  now: () => new Date(),
});
/** The controller's own connection, with its ServiceAccount's token. */
let connection: KubeConnection;
/** The controller's client; the test sets the cluster up with `admin`. */
let client: KubeClient;
let admin: KubeClient;
let scratch: string;

const SPLITS = `/apis/split.smi-spec.io/v1alpha3/namespaces/${namespace}/trafficsplits`;

/** The controller's ServiceAccount, roles and bindings, exactly as deploy creates them. */
function controllerRbac(): Manifest[] {
  return buildRbac(namespace, () => ({})).filter((object) =>
    object.kind === 'ServiceAccount'
      ? object.metadata.name === CONTROLLER_NAME
      : object.metadata.name === CONTROLLER_RBAC_NAME,
  );
}

/** A kubeconfig for the admin's cluster with the controller's token. */
async function controllerKubeconfig(): Promise<string> {
  const request = await admin.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${namespace}/serviceaccounts/${CONTROLLER_NAME}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3600 },
    },
  );
  const adminConfig = parseYaml(readFileSync(testKubeconfig(), 'utf8')) as {
    clusters: { cluster: Record<string, string> }[];
  };
  const path = join(scratch, 'controller.kubeconfig');
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: adminConfig.clusters[0]?.cluster }],
      users: [{ name: CONTROLLER_NAME, user: { token: request.status.token } }],
      contexts: [{ name: 'controller', context: { cluster: 'test', user: CONTROLLER_NAME } }],
      'current-context': 'controller',
    }),
  );
  return path;
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'controller-watch-'));
  const access = createKubeAccess({});
  admin = new KubeClient(await access.connect({ kubeconfig: testKubeconfig(), timeoutMs: 15_000 }));
  for (const crd of buildMeshCrds() as { metadata: { name: string } }[]) {
    const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`;
    await admin.apply(path, crd, 'controller-watch-test');
    await waitFor(`${crd.metadata.name} to be Established`, async () => {
      const current = await admin.get<{
        status?: { conditions?: { type: string; status: string }[] };
      }>(path);
      return current?.status?.conditions?.some(
        (c) => c.type === 'Established' && c.status === 'True',
      )
        ? true
        : undefined;
    });
  }
  for (const object of controllerRbac()) {
    await admin.apply(
      objectPath({
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: object.metadata.name,
        ...(object.metadata.namespace === undefined
          ? {}
          : { namespace: object.metadata.namespace }),
      }),
      object,
      'controller-watch-test',
    );
  }
  connection = await access.connect({
    kubeconfig: await controllerKubeconfig(),
    timeoutMs: 15_000,
  });
  client = new KubeClient(connection);
});

afterAll(async () => {
  for (const kind of ['clusterrolebindings', 'clusterroles']) {
    await admin.delete(`/apis/rbac.authorization.k8s.io/v1/${kind}/${CONTROLLER_RBAC_NAME}`);
  }
  // Files that deploy a mesh refuse to while its CRDs exist.
  for (const crd of buildMeshCrds() as { metadata: { name: string } }[]) {
    await admin.delete(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
    );
  }
  rmSync(scratch, { recursive: true, force: true });
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
    await admin.create(path, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web' },
      spec: { ports: [{ name: 'http', port: 80 }], selector: { app: 'web' } },
    });
    latencies.push(
      await seen(cache, 'Service web', (s) => s.services.some((o) => nameOf(o) === 'web')),
    );
    await admin.mergePatch(`${path}/web`, { metadata: { labels: { tier: 'front' } } });
    latencies.push(
      await seen(cache, 'Service web labelled', (s) =>
        s.services.some((o) => nameOf(o) === 'web' && labelsOf(o).tier === 'front'),
      ),
    );
    await admin.delete(`${path}/web`);
    latencies.push(
      await seen(cache, 'Service web gone', (s) => !s.services.some((o) => nameOf(o) === 'web')),
    );
  });

  it('follows an EndpointSlice through create, update and delete', async () => {
    const path = `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`;
    await admin.create(path, {
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
    await admin.mergePatch(`${path}/web-abc`, {
      endpoints: [{ addresses: ['198.18.7.1'] }, { addresses: ['198.18.7.2'] }],
    });
    latencies.push(
      await seen(cache, 'EndpointSlice with two endpoints', (s) =>
        s.endpointSlices.some((o) => nameOf(o) === 'web-abc' && addresses(o).length === 2),
      ),
    );
    await admin.delete(`${path}/web-abc`);
    latencies.push(
      await seen(
        cache,
        'EndpointSlice gone',
        (s) => !s.endpointSlices.some((o) => nameOf(o) === 'web-abc'),
      ),
    );
  });

  it('follows a TrafficSplit through create, update and delete', async () => {
    await admin.create(SPLITS, {
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
    await admin.mergePatch(`${SPLITS}/canary`, {
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
    await admin.delete(`${SPLITS}/canary`);
    latencies.push(
      await seen(
        cache,
        'TrafficSplit gone',
        (s) => !s.trafficSplits.some((o) => nameOf(o) === 'canary'),
      ),
    );
  });
});

describe('controller RBAC', () => {
  it('lets the caches list and watch every kind, with no request forbidden', () => {
    expect(
      logLines.filter((line) => line.includes('forbidden') || line.includes('"status":403')),
    ).toEqual([]);
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
    const lease = await admin.get<{ spec: { holderIdentity: string } }>(
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
    await admin.create(SPLITS, {
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

    const events = await admin.list<{
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

    const stored = await admin.get<{
      status?: { conditions?: { type: string; status: string; reason: string }[] };
    }>(`${SPLITS}/broken`);
    expect(stored?.status?.conditions).toEqual([
      expect.objectContaining({ type: 'Accepted', status: 'False', reason: 'UnknownService' }),
    ]);

    // Fixed: the condition turns True, and no further Event is recorded.
    const fresh = await admin.get<KubeJson>(`${SPLITS}/broken`);
    expect(await writer.report([], fresh === undefined ? [] : [fresh])).toEqual({
      eventsCreated: 0,
      statusPatched: 1,
    });
    const after = await admin.get<{
      status?: { conditions?: { type: string; status: string; reason: string }[] };
    }>(`${SPLITS}/broken`);
    expect(after?.status?.conditions).toEqual([
      expect.objectContaining({ type: 'Accepted', status: 'True', reason: 'Accepted' }),
    ]);
  });
});
