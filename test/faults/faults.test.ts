// The mesh under the faults a cluster meets, on the test cluster: nginx-meshctl deploys the mesh
// (SVIDs living one minute, deploy's shortest), the webhook injects an echo server of two
// replicas and a client, and the client sends GETs through both sidecars all along. One fault
// after another — each control-plane role killed alone, all of them at once, NATS away for a
// minute, the API server and etcd restarted, the registrar away while every SVID expires, a
// sidecar's agent killed, a CA handover, an upgrade from the previous commit's mesh — is put in
// place and undone, and each must keep the promises fault-run.ts checks: no failed request, a
// policy change made after recovery applied by every sidecar within 10 s, and a `status` that
// named what was broken while it was. The table of what happened is written at the end.
import { execa } from 'execa';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONTROLLER_NAME, NATS_NAME, REGISTRAR_NAME } from '../../src/manifests/constants';
import type { KubeRest } from '../cluster/harness/kube-rest';
import {
  apiServiceAnswers,
  stopApiServerAndEtcd,
  testControlPlaneDir,
} from '../cluster/support/control-plane-restart';
import type { StoppedApiServer } from '../cluster/support/control-plane-restart';
import {
  deleteNamespace,
  isReady,
  listPods,
  testKubeconfig,
  testRest,
  waitFor,
  waitForNoMesh,
} from '../cluster/support/kube';
import {
  applyObjects,
  clusterIPOf,
  createInjectedNamespace,
  echoDeployment,
  httpService,
  kubectl,
  meshctl as meshctlIn,
  netnsOf,
  readyPodOf,
  removeMesh,
  shellDeployment,
  waitForSidecarConfig,
} from '../cluster/support/mesh-apps';
import type { ControlPlaneRole } from '../cluster/support/mesh-faults';
import {
  CONTROL_PLANE,
  injectedPods,
  killRoles,
  killSidecar,
  podsOfRole,
  restartDeployment,
  sawRolesDown,
  scaleDeployment,
  sidecarImageOf,
  sidecarStatusOf,
  waitForControlPlane,
  waitForNoPods,
} from '../cluster/support/mesh-faults';
import { importPreviousMesh, previousMesh } from '../cluster/support/previous-images';
import { ageRegistrarCa, svidOf } from '../cluster/support/registrar-ca';
import type { AgedCa } from '../cluster/support/registrar-ca';
import type { MovableTraffic } from '../cluster/support/traffic-generator';
import { movableTraffic } from '../cluster/support/traffic-generator';
import { IMAGE_TAG, LOCAL_IMAGE_FLAGS } from '../support/images';
import type { FaultOutcome, FaultSpec } from './fault-run';
import { measureFault } from './fault-run';
import { publishFaultReport } from './report';

const root = join(__dirname, '..', '..');
const meshNamespace = 'mesh-faults';
const apps = 'faults-apps';
/** deploy's shortest --mtls-svid-ttl: short enough to outlast, long enough for the other faults. */
const SVID_TTL = '1m';
const SVID_TTL_MS = 60_000;
const NATS_DOWN_MS = 60_000;
const API_SERVER_DOWN_MS = 10_000;
/** The aged CA's whole life: its successor signs a sixth of it (one SVID TTL) after it appears. */
const CA_LIFE_MS = 6 * SVID_TTL_MS;
/** A client started after the CA handover in g. */
const LATE_CLIENT = 'late-client';
/** After the registrar is back, the time a sidecar may take to renew an expired SVID. */
const RENEWAL_GRACE_MS = 5_000;

let rest: KubeRest;
let traffic: MovableTraffic | undefined;
const outcomes: FaultOutcome[] = [];
const tierStartedAt = Date.now();
/** Changes made so far: each fault's change sets a clientMaxBodySize no earlier one set. */
let changes = 0;

function meshctl(args: readonly string[]) {
  return meshctlIn(meshNamespace, args);
}

function appTraffic(): MovableTraffic {
  if (traffic === undefined) throw new Error('no app traffic: the set-up did not finish');
  return traffic;
}

/** Sends the GETs from the Ready pod app=<app> from now on. */
async function moveTrafficTo(app: string): Promise<void> {
  const client = await readyPodOf(rest, apps, app);
  await appTraffic().moveTo(await netnsOf(client.status?.podIP ?? ''));
}

/** Sends the GETs from the Ready pod app=<app> from now on, and waits until they succeed. */
async function sendTrafficFrom(app: string): Promise<void> {
  await moveTrafficTo(app);
  if (!(await appTraffic().waitForCompleted(20, 60_000)))
    throw new Error(`GETs from ${app} to the web Service do not succeed`);
}

/** Until the web Deployment's two pods and the client are Ready. */
async function waitForApps(): Promise<void> {
  await waitFor(
    'two Ready web pods and a Ready client',
    async () => {
      const web = (await listPods(rest, apps, 'app=web')).filter(isReady);
      const client = (await listPods(rest, apps, 'app=client')).filter(isReady);
      return web.length === 2 && client.length === 1 ? true : undefined;
    },
    180_000,
    500,
  );
}

/** Measures a fault and keeps its outcome for the table. */
async function runFault(spec: FaultSpec): Promise<FaultOutcome> {
  const outcome = await measureFault(
    {
      rest,
      meshNamespace,
      appsNamespace: apps,
      traffic: appTraffic(),
      changeTo: `${(changes += 1) + 100}k`,
    },
    spec,
  );
  outcomes.push(outcome);
  process.stderr.write(
    `${outcome.name}: ${outcome.failed.length}/${outcome.requests} failed, converged ${outcome.convergeSeconds?.toFixed(1) ?? 'never'} s, status: ${outcome.statusSaid}\n${[...outcome.problems, ...outcome.notes].map((line) => `  ${line}`).join('\n')}\n`,
  );
  return outcome;
}

/** A control-plane role killed while the rest of the mesh runs. */
function killed(name: string, roles: readonly ControlPlaneRole[]): FaultSpec {
  let gone: string[] = [];
  return {
    name,
    status: {
      kind: 'reports',
      components: roles.map((role) => [role]),
      // Its pods are replaced: status names them after, however quickly they came back.
      restartNamedAfter: true,
    },
    inject: async () => {
      gone = await killRoles(rest, meshNamespace, roles);
    },
    visible: () => sawRolesDown(rest, meshNamespace, roles),
    // Its Deployment replaces it.
    undo: () => Promise.resolve(),
    recovered: () => waitForControlPlane(rest, meshNamespace, gone),
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The app pods' SVIDs' expiry times, now. */
async function appSvidExpiries(): Promise<number[]> {
  const pods = await injectedPods(rest, apps);
  return pods.map((pod) => svidOf(pod.metadata.uid)?.notAfter.getTime() ?? 0);
}

beforeAll(async () => {
  rest = await testRest();
  // One mesh at a time on the cluster: an earlier file's must be gone.
  await waitForNoMesh(rest);
  const deployed = await meshctl(['deploy', ...LOCAL_IMAGE_FLAGS, '--mtls-svid-ttl', SVID_TTL]);
  if (deployed.exitCode !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
  await createInjectedNamespace(rest, apps);
  const web = echoDeployment(apps, 'web', { labels: { app: 'web' } }) as {
    spec: { replicas: number };
  };
  web.spec.replicas = 2;
  await applyObjects([
    web,
    shellDeployment(apps, 'client'),
    httpService(apps, 'web', { app: 'web' }),
  ]);
  await waitForApps();
  await waitForSidecarConfig(
    rest,
    { meshNamespace, namespace: apps, app: 'client' },
    'the upstream of web',
    (config) => config.includes('web_80'),
  );
  traffic = movableTraffic(`http://${await clusterIPOf(rest, apps, 'web')}/`);
  await sendTrafficFrom('client');
}, 300_000);

afterAll(async () => {
  await traffic?.stop();
  const windows = outcomes.map((outcome) => [outcome.startedAt, outcome.endedAt] as const);
  const between = (traffic?.failures() ?? []).filter(
    (failure) => !windows.some(([from, to]) => failure.at >= from && failure.at < to),
  );
  const dir = process.env.NMK_TEST_STATE_DIR ?? root;
  const path = publishFaultReport(
    { outcomes, between, tierSeconds: (Date.now() - tierStartedAt) / 1000 },
    dir,
  );
  process.stderr.write(`fault table written to ${path}\n`);
  await deleteNamespace(rest, apps);
  await removeMesh(meshNamespace);
  rest.close();
}, 200_000);

describe('the mesh under faults', () => {
  for (const role of CONTROL_PLANE) {
    test(`a. keeps serving and converging when ${role} alone is killed`, async () => {
      const outcome = await runFault(killed(`a. ${role} killed`, [role]));
      expect(outcome.problems).toEqual([]);
    }, 240_000);
  }

  test('b. keeps serving and converging when every control-plane pod is killed at once', async () => {
    const outcome = await runFault(killed('b. all control-plane pods killed', CONTROL_PLANE));
    expect(outcome.problems).toEqual([]);
  }, 240_000);

  test('c. keeps serving while NATS is away for a minute, and converges once it is back', async () => {
    const outcome = await runFault({
      name: 'c. NATS away 60 s',
      status: { kind: 'reports', components: [[NATS_NAME]] },
      inject: async () => {
        await scaleDeployment(meshNamespace, NATS_NAME, 0);
        await waitForNoPods(rest, meshNamespace, NATS_NAME);
      },
      visible: () => sawRolesDown(rest, meshNamespace, [NATS_NAME]),
      hold: () => sleep(NATS_DOWN_MS),
      undo: () => scaleDeployment(meshNamespace, NATS_NAME, 1),
      recovered: () => waitForControlPlane(rest, meshNamespace),
    });
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test('d. keeps serving while kube-apiserver and etcd restart, and converges after', async () => {
    let stopped: StoppedApiServer | undefined;
    let serviceAt = 0;
    const server = new URL(rest.server).host;
    const outcome = await runFault({
      name: 'd. kube-apiserver + etcd restarted',
      status: { kind: 'reports', components: [['kube-apiserver', 'API server', server]] },
      inject: async () => {
        stopped = await stopApiServerAndEtcd(testControlPlaneDir());
      },
      hold: () => sleep(API_SERVER_DOWN_MS),
      undo: async () => {
        await stopped?.start();
      },
      recovered: async () => {
        // The controller reaches it through the kubernetes Service: from its own network
        // namespace, kube-proxy must send it to the API server again.
        const [controller] = await podsOfRole(rest, meshNamespace, CONTROLLER_NAME);
        const netns = await netnsOf(controller?.status?.podIP ?? '');
        await waitFor(
          "the kubernetes Service answering in the controller's network namespace",
          async () => ((await apiServiceAnswers(netns)) ? true : undefined),
          120_000,
          500,
        );
        serviceAt = Date.now();
        await waitForControlPlane(rest, meshNamespace);
      },
      notes: () => [
        `the kubernetes Service answered in the controller's network namespace again at ${iso(serviceAt)}`,
      ],
    });
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test('e. recovers once the registrar is back after every sidecar SVID expired', async () => {
    let firstExpiry = 0;
    let lastExpiry = 0;
    let registrarBackAt = 0;
    const outcome = await runFault({
      name: 'e. registrar away across SVID expiry',
      status: { kind: 'reports', components: [[REGISTRAR_NAME]] },
      inject: async () => {
        await scaleDeployment(meshNamespace, REGISTRAR_NAME, 0);
        await waitForNoPods(rest, meshNamespace, REGISTRAR_NAME);
      },
      visible: () => sawRolesDown(rest, meshNamespace, [REGISTRAR_NAME]),
      // Until the last SVID a sidecar got before the registrar left has expired.
      hold: async () => {
        const expiries = await appSvidExpiries();
        if (expiries.length === 0 || expiries.includes(0))
          throw new Error('an app sidecar holds no SVID before the registrar leaves');
        firstExpiry = Math.min(...expiries);
        lastExpiry = Math.max(...expiries);
        const until = Math.min(lastExpiry, Date.now() + SVID_TTL_MS) + 3_000;
        await sleep(Math.max(0, until - Date.now()));
      },
      undo: () => scaleDeployment(meshNamespace, REGISTRAR_NAME, 1),
      recovered: async () => {
        await waitForControlPlane(rest, meshNamespace);
        registrarBackAt = Date.now();
        await waitFor(
          'every app sidecar holding a valid SVID again',
          async () => ((await appSvidExpiries()).every((at) => at > Date.now()) ? true : undefined),
          60_000,
          500,
        );
      },
      expectedFailures: () => ({
        fromMs: firstExpiry - 1_000,
        toMs: registrarBackAt + RENEWAL_GRACE_MS,
        why: 'while SVIDs had expired and the registrar was away',
      }),
      notes: () => [
        `app SVIDs expired from ${iso(firstExpiry)} to ${iso(lastExpiry)}; registrar ready again at ${iso(registrarBackAt)}`,
      ],
    });
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test('f. keeps serving and converging when a server sidecar agent is killed', async () => {
    const [target] = (await injectedPods(rest, apps)).filter(
      (pod) => pod.metadata.labels?.app === 'web',
    );
    if (target === undefined) throw new Error('no web pod to kill the sidecar of');
    let restarts = 0;
    const outcome = await runFault({
      name: 'f. web sidecar agent killed',
      status: { kind: 'reports', components: [[target.metadata.name]] },
      inject: async () => {
        restarts = await killSidecar(target);
      },
      visible: () =>
        waitFor(
          `${target.metadata.name} not Ready`,
          async () => {
            const same = (await listPods(rest, apps, 'app=web')).find(
              (each) => each.metadata.uid === target.metadata.uid,
            );
            return same !== undefined && !isReady(same) ? true : undefined;
          },
          10_000,
          100,
        ).catch(() => false),
      // The kubelet restarts it.
      undo: () => Promise.resolve(),
      recovered: async () => {
        await waitFor(
          `the sidecar of ${target.metadata.name} restarted and Ready`,
          async () => {
            const [pod] = (await injectedPods(rest, apps)).filter(
              (each) => each.metadata.uid === target.metadata.uid,
            );
            if (pod === undefined || !isReady(pod)) return undefined;
            return (sidecarStatusOf(pod)?.restartCount ?? 0) > restarts ? true : undefined;
          },
          120_000,
          250,
        );
        await waitForControlPlane(rest, meshNamespace);
      },
    });
    expect(outcome.problems).toEqual([]);
  }, 240_000);

  test('g. keeps serving through a CA handover, to clients old and new', async () => {
    let aged: AgedCa | undefined;
    let agedAt = 0;
    let handedOverAt = 0;
    const outcome = await runFault({
      name: 'g. CA handover',
      status: { kind: 'healthy' },
      inject: async () => {
        aged = await ageRegistrarCa(rest, meshNamespace, CA_LIFE_MS);
        agedAt = Date.now();
      },
      // Until every app sidecar holds an SVID of the successor; then a client that starts now
      // (its first SVID from the successor, no TLS session with anyone) calls the servers,
      // whose sidecars have not reloaded nginx since the handover.
      hold: async () => {
        const subject = aged?.subject;
        await waitFor(
          'every app sidecar holding an SVID of the new CA',
          async () => {
            const pods = await injectedPods(rest, apps);
            const issuers = pods.map((pod) => svidOf(pod.metadata.uid)?.issuer);
            return issuers.every((issuer) => issuer !== undefined && issuer !== subject)
              ? true
              : undefined;
          },
          CA_LIFE_MS / 6 + SVID_TTL_MS + 60_000,
          1_000,
        );
        handedOverAt = Date.now();
        await applyObjects([shellDeployment(apps, LATE_CLIENT)]);
        await waitFor(
          'the late client Ready',
          () => readyPodOf(rest, apps, LATE_CLIENT).catch(() => undefined),
          120_000,
          500,
        );
        await moveTrafficTo(LATE_CLIENT);
        await appTraffic().waitForCompleted(20, 30_000);
      },
      undo: async () => {
        // The successor lives the configured CA TTL: only the late client goes.
        await moveTrafficTo('client');
        const deleted = await kubectl(['delete', 'deployment', LATE_CLIENT, '-n', apps]);
        if (deleted.exitCode !== 0) throw new Error(deleted.stderr);
      },
      recovered: () => waitForControlPlane(rest, meshNamespace),
      notes: () => [
        `CA aged at ${iso(agedAt)} (handover due after ${aged === undefined ? '?' : iso(aged.handoverAfter.getTime())}); every app SVID from the successor at ${iso(handedOverAt)}`,
      ],
    });
    expect(outcome.problems).toEqual([]);
  }, 420_000);

  test("h. keeps serving through an upgrade from the previous commit's mesh", async () => {
    const buildStarted = Date.now();
    const previous = await previousMesh(root);
    await importPreviousMesh(previous);
    process.stderr.write(
      `previous mesh ${previous.commit.slice(0, 12)} (tag ${previous.tag}): ${previous.built ? 'built' : 'cached'}, ready in ${((Date.now() - buildStarted) / 1000).toFixed(0)} s\n`,
    );
    const old = (args: readonly string[]) =>
      execa(previous.binary, [...args, '-n', meshNamespace], {
        env: { KUBECONFIG: testKubeconfig() },
        reject: false,
        timeout: 300_000,
      });
    // The mesh as the previous commit runs it: its control plane, and its sidecars in every pod.
    await appTraffic().stop();
    const downgraded = await old([
      'upgrade',
      '--allow-downgrade',
      '--image-tag',
      previous.tag,
      '-y',
      '-t',
      '240s',
    ]);
    if (downgraded.exitCode !== 0)
      throw new Error(
        `the previous commit's upgrade to its own images failed:\n${downgraded.stderr}`,
      );
    await waitForControlPlane(rest, meshNamespace);
    await restartDeployment(apps, 'web');
    await restartDeployment(apps, 'client');
    await waitForApps();
    const sidecarImages = (await injectedPods(rest, apps)).map(sidecarImageOf);
    expect(sidecarImages.every((image) => image?.endsWith(`:${previous.tag}`))).toBe(true);
    await sendTrafficFrom('client');

    const steps: string[] = [];
    const outcome = await runFault({
      name: `h. upgrade from ${previous.commit.slice(0, 7)}`,
      status: { kind: 'record' },
      inject: async () => {
        steps.push(`upgrade started ${iso(Date.now())}`);
        const upgraded = await meshctl(['upgrade', '-y', '-t', '240s']);
        if (upgraded.exitCode !== 0) throw new Error(`upgrade failed:\n${upgraded.stderr}`);
        steps.push(`upgraded ${iso(Date.now())}`);
        // As upgrade advises: the servers' pods are rolled to get the new sidecar.
        await restartDeployment(apps, 'web');
        steps.push(`web rolled ${iso(Date.now())}`);
      },
      notes: () => steps,
      undo: () => Promise.resolve(),
      recovered: async () => {
        await waitForControlPlane(rest, meshNamespace);
        await waitFor(
          `two Ready web pods with the sidecar tagged ${IMAGE_TAG}`,
          async () => {
            const web = (await injectedPods(rest, apps)).filter(
              (pod) =>
                pod.metadata.labels?.app === 'web' &&
                isReady(pod) &&
                sidecarImageOf(pod)?.endsWith(`:${IMAGE_TAG}`) === true,
            );
            return web.length === 2 ? true : undefined;
          },
          120_000,
          500,
        );
      },
    });
    expect(outcome.problems).toEqual([]);
  }, 900_000);
});
