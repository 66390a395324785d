// The Gateway API on the real API server: deploy's step installs the release's CRDs where absent
// (Established, labelled as deploy's) and leaves a CRD that was there before alone; remove's CRD
// step deletes only deploy's; the controller's cache copes with the HTTPRoute CRD absent at start
// and follows it once installed; and the route status writer puts Accepted and ResolvedRefs in an
// HTTPRoute's status.parents next to another controller's entry, through the status subresource.
import {
  GATEWAY_CONTROLLER_NAME,
  PART_OF_LABEL,
  PART_OF_VALUE,
} from '../../src/manifests/constants';
import { buildGatewayApiCrds, GATEWAY_API_CRD_NAMES } from '../../src/manifests/gateway-api/crds';
import type { InstallStep } from '../../src/manifests/install/plan';
import type { Manifest } from '../../src/manifests/install/objects';
import type { RouteStatus } from '../../src/manifests/snapshot/types';
import { systemClock } from '../../src/runtime/clock';
import type { ClusterCache } from '../../src/runtime/controller/cluster-cache';
import { startClusterCache } from '../../src/runtime/controller/cluster-cache';
import { createRouteStatusWriter } from '../../src/runtime/controller/route-status';
import { applyStep } from '../../src/runtime/install/apply';
import { loadGatewayApiRelease } from '../../src/runtime/install/gateway-api';
import { findInstallation } from '../../src/runtime/install/inventory';
import { removalSteps } from '../../src/runtime/install/remove';
import type { WaitContext } from '../../src/runtime/install/waits';
import { createKubeAccess } from '../../src/runtime/kube/access';
import type { KubeConnection } from '../../src/runtime/kube/access';
import { KubeClient } from '../../src/runtime/kube/client';
import { createJsonLogger } from '../../src/runtime/role/log';
import { testKubeconfig, testRest, useTestNamespace, waitFor, waitForNoMesh } from './support/kube';

const namespace = 'gateway-api';
useTestNamespace(namespace);
const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const ROUTES = `/apis/gateway.networking.k8s.io/v1/namespaces/${namespace}/httproutes`;
const HTTPROUTES_CRD = 'httproutes.gateway.networking.k8s.io';
const logger = createJsonLogger({
  level: 'warn',
  out: { write: (text) => process.stderr.write(text) },
  now: () => new Date(),
});
const silent = {
  start: () => undefined,
  detail: () => undefined,
  succeed: () => undefined,
  fail: () => undefined,
  note: () => undefined,
};

let connection: KubeConnection;
let admin: KubeClient;
let crds: readonly Manifest[];
/** Set once beforeAll has connected, so afterAll cleans up only what it can reach. */
let connected = false;

function context(): WaitContext {
  return {
    client: admin,
    clock: systemClock,
    progress: silent,
    signal: new AbortController().signal,
    // The faults tier may restart the shared API server meanwhile; a CRD's deletion then waits
    // for it to come back and finish its finalizer.
    deadline: Date.now() + 150_000,
    budgetMs: 60_000,
  };
}

/** deploy's Gateway API step, as the install plan has it. */
function gatewayStep(): InstallStep {
  return {
    id: 'gateway-api',
    title: 'Installing the Gateway API CRDs',
    objects: crds,
    waits: crds.map((crd) => ({ kind: 'crd-established', name: crd.metadata.name })),
    caBundles: [],
    keepForeign: true,
  };
}

/**
 * Waits until every installed Gateway API kind is served from the API server's watch cache. A
 * CRD deleted before that fails its finalizer ("storage is (re)initializing"), and on a loaded
 * machine the finalizer's retries then outlast remove's wait.
 */
async function waitForStorage(): Promise<void> {
  for (const crd of crds) {
    const spec = (crd as unknown as { spec: GatewayCrdSpec }).spec;
    const version = spec.versions.find((each) => each.served)?.name ?? 'v1';
    const path = `/apis/${spec.group}/${version}/${spec.names.plural}?resourceVersion=0&limit=1`;
    await waitFor(
      `${spec.names.plural} served from the watch cache`,
      async () => {
        if ((await admin.get(`${CRDS}/${crd.metadata.name}`)) === undefined) return true;
        try {
          return (await admin.get(path)) === undefined ? undefined : true;
        } catch {
          return undefined;
        }
      },
      120_000,
      250,
    );
  }
}

interface GatewayCrdSpec {
  readonly group: string;
  readonly names: { readonly plural: string };
  readonly versions: readonly { readonly name: string; readonly served: boolean }[];
}

/** remove's CRD step, once the kinds' storage is up. */
async function removeCrds(): Promise<void> {
  await waitForStorage();
  const installation = await findInstallation(admin, namespace);
  const step = removalSteps(installation, namespace, [], context()).find(
    (each) => each.title === 'Removing CRDs',
  );
  await step?.run();
}

async function crdLabels(name: string): Promise<Record<string, string> | undefined> {
  const crd = await admin.get<{ metadata: { labels?: Record<string, string> } }>(`${CRDS}/${name}`);
  return crd === undefined ? undefined : (crd.metadata.labels ?? {});
}

async function deleteGatewayCrds(): Promise<void> {
  for (const name of GATEWAY_API_CRD_NAMES) await admin.delete(`${CRDS}/${name}`);
  await waitFor(
    'no Gateway API CRD left',
    async () => {
      for (const name of GATEWAY_API_CRD_NAMES)
        if ((await admin.get(`${CRDS}/${name}`)) !== undefined) return undefined;
      return true;
    },
    60_000,
    200,
  );
}

/** The release's HTTPRoute CRD as another installer would create it: without our label. */
async function createForeignHttpRouteCrd(): Promise<void> {
  const crd = crds.find((each) => each.metadata.name === HTTPROUTES_CRD) as Manifest;
  const labels = Object.fromEntries(
    Object.entries(crd.metadata.labels ?? {}).filter(([key]) => key !== PART_OF_LABEL),
  );
  await admin.create(CRDS, { ...crd, metadata: { ...crd.metadata, labels } });
  await waitFor(`${HTTPROUTES_CRD} to be Established`, async () => {
    const found = await admin.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
      `${CRDS}/${HTTPROUTES_CRD}`,
    );
    return found?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
      ? true
      : undefined;
  });
}

beforeAll(async () => {
  const rest = await testRest();
  await waitForNoMesh(rest);
  rest.close();
  connection = await createKubeAccess({}).connect({
    kubeconfig: testKubeconfig(),
    timeoutMs: 15_000,
  });
  admin = new KubeClient(connection);
  crds = buildGatewayApiCrds(await loadGatewayApiRelease());
  connected = true;
  await deleteGatewayCrds();
});

afterAll(async () => {
  if (connected) await deleteGatewayCrds();
});

describe('the Gateway API CRDs', () => {
  it('are created by deploy when absent, Established and labelled, and deleted by remove', async () => {
    await applyStep(gatewayStep(), context());
    for (const name of GATEWAY_API_CRD_NAMES) {
      expect((await crdLabels(name))?.[PART_OF_LABEL]).toBe(PART_OF_VALUE);
    }
    expect([...(await findInstallation(admin, namespace)).gatewayApiCrds].sort()).toEqual(
      [...GATEWAY_API_CRD_NAMES].sort(),
    );
    // Applying again (an upgrade, a re-run deploy) changes nothing and does not stop.
    await applyStep(gatewayStep(), context());
    await removeCrds();
    for (const name of GATEWAY_API_CRD_NAMES) expect(await crdLabels(name)).toBeUndefined();
    // remove again finds nothing of them left: idempotent.
    expect((await findInstallation(admin, namespace)).gatewayApiCrds).toEqual([]);
    await removeCrds();
  });

  it('that were there before deploy stay as they were, through deploy and remove', async () => {
    await createForeignHttpRouteCrd();
    await applyStep(gatewayStep(), context());
    expect(await crdLabels(HTTPROUTES_CRD)).not.toHaveProperty(PART_OF_LABEL);
    await removeCrds();
    expect(await crdLabels(HTTPROUTES_CRD)).toBeDefined();
    for (const name of GATEWAY_API_CRD_NAMES.filter((each) => each !== HTTPROUTES_CRD)) {
      expect(await crdLabels(name)).toBeUndefined();
    }
    await deleteGatewayCrds();
  });
});

describe('the controller', () => {
  let started: ClusterCache | undefined;

  afterAll(async () => {
    await started?.stop();
  });

  it('is synced without the HTTPRoute CRD, and follows HTTPRoutes once it is installed', async () => {
    const cache = startClusterCache(connection, {
      meshNamespace: namespace,
      clock: systemClock,
      random: Math.random,
      logger,
      watchTimeoutSeconds: 60,
    });
    started = cache;
    await waitFor(
      'the cache to sync',
      () => Promise.resolve(cache.synced() ? true : undefined),
      15_000,
      50,
    );
    expect(cache.state().httpRoutes).toEqual([]);
    expect(cache.failure()).toBeUndefined();
    await applyStep(gatewayStep(), context());
    await admin.create(ROUTES, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'reviews' },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }],
        rules: [{ backendRefs: [{ name: 'reviews-v2', port: 9080 }] }],
      },
    });
    // The watch of a kind not served retries with a back-off of at most 5 s.
    await waitFor(
      'the cache to hold the HTTPRoute',
      () => Promise.resolve(cache.state().httpRoutes.length === 1 ? true : undefined),
      15_000,
      50,
    );
    expect(cache.failure()).toBeUndefined();
  });

  it("writes Accepted and ResolvedRefs into the route's status, keeping another controller's entry", async () => {
    const path = `${ROUTES}/reviews`;
    const other = {
      parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge' },
      controllerName: 'example.com/gateway',
      conditions: [
        {
          type: 'Accepted',
          status: 'True',
          reason: 'Accepted',
          message: 'edge',
          observedGeneration: 1,
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    await admin.mergePatch(`${path}/status`, { status: { parents: [other] } });
    const parentRef = { group: '', kind: 'Service', name: 'reviews', port: 9080 };
    const status = (resolved: 'True' | 'False'): RouteStatus => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      namespace,
      name: 'reviews',
      generation: 1,
      parents: [
        {
          parentRef,
          accepted: { status: 'True', reason: 'Accepted', message: 'accepted' },
          resolvedRefs:
            resolved === 'True'
              ? { status: 'True', reason: 'ResolvedRefs', message: 'resolved' }
              : {
                  status: 'False',
                  reason: 'BackendNotFound',
                  message: 'spec.rules[0].backendRefs[0]: no Service reviews-v2',
                },
        },
      ],
    });
    const writer = createRouteStatusWriter({ client: admin, clock: systemClock, logger });
    const route = async () =>
      (await admin.get<Record<string, unknown>>(path)) as Record<string, unknown>;
    expect(await writer.report([status('False')], [await route()])).toBe(1);
    type Parent = {
      controllerName: string;
      parentRef: unknown;
      conditions: {
        type: string;
        status: string;
        reason: string;
        observedGeneration: number;
        lastTransitionTime: string;
      }[];
    };
    const parents = async () => ((await route()).status as { parents: Parent[] }).parents;
    const written = await parents();
    expect(written[0]).toEqual(other);
    expect(written[1]?.controllerName).toBe(GATEWAY_CONTROLLER_NAME);
    expect(written[1]?.parentRef).toEqual(parentRef);
    expect(
      written[1]?.conditions.map((c) => [c.type, c.status, c.reason, c.observedGeneration]),
    ).toEqual([
      ['Accepted', 'True', 'Accepted', 1],
      ['ResolvedRefs', 'False', 'BackendNotFound', 1],
    ]);
    // The same status again: nothing is written.
    expect(await writer.report([status('False')], [await route()])).toBe(0);
    // ResolvedRefs turns True: its transition time moves, Accepted's stays.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await writer.report([status('True')], [await route()])).toBe(1);
    const [, again] = await parents();
    expect(again?.conditions[0]?.lastTransitionTime).toBe(
      written[1]?.conditions[0]?.lastTransitionTime,
    );
    expect(again?.conditions[1]?.lastTransitionTime).not.toBe(
      written[1]?.conditions[1]?.lastTransitionTime,
    );
    expect(again?.conditions[1]?.status).toBe('True');
    // The route no longer attaches to a Service: our entry goes, the other stays.
    expect(await writer.report([], [await route()])).toBe(1);
    expect(await parents()).toEqual([other]);
  });

  it('empties the kind when its CRD is deleted', async () => {
    const cache = started;
    if (cache === undefined) throw new Error('the cache was not started by the first test');
    await deleteGatewayCrds();
    await waitFor(
      'the cache to drop the HTTPRoute',
      () => Promise.resolve(cache.state().httpRoutes.length === 0 ? true : undefined),
      15_000,
      50,
    );
  });
});
