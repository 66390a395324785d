// Hostile tenants on the test cluster: nginx-meshctl deploys the mesh (strict mTLS), a victim
// namespace runs an echo server and a client with injected sidecars while the client calls the
// server all along, and namespace `attacker` holds an unmeshed pod, a meshed pod of its own (a
// tenant legitimately in the mesh) and policies its author may create there. Each attack is acted
// out from inside the cluster's network, as the tenant could, and must fail in the stated way;
// after each, a policy change must still reach every victim sidecar within CONVERGE_LIMIT_S and
// the victim's requests must keep succeeding (the few a reload costs are counted and reported).
// The table of what happened is written at the end.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  CONTROLLER_NAME,
  CONTROLLER_VERSION_PORT,
  IDENTITY_MOUNT_PATH,
  IDENTITY_TOKEN_AUDIENCE,
  IDENTITY_TOKEN_EXPIRATION_SECONDS,
  IDENTITY_TOKEN_PATH,
  IDENTITY_VOLUME_NAME,
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
  NATS_CLIENT_PORT,
  NATS_CONFIG_SUBJECT,
  NATS_MONITOR_PORT,
  NATS_NAME,
  NATS_SUBSCRIPTION_SUBJECT,
  REGISTRAR_API_PORT,
  REGISTRAR_NAME,
  SIDECAR_CONFIG_MOUNT_PATH,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_STATS_PATH,
  SIDECAR_UID,
  SVID_BUNDLE_FILE_NAME,
  SVID_FILE_NAME,
} from '../../src/manifests/constants';
import { createKeyAndRequest } from '../../src/runtime/svid/csr';
import type { KubeRest } from '../cluster/harness/kube-rest';
import { KubeRestError } from '../cluster/harness/kube-rest';
import {
  createNamespace,
  deleteNamespace,
  isReady,
  listPods,
  testRest,
  waitFor,
  waitForNoMesh,
} from '../cluster/support/kube';
import type { PodSummary } from '../cluster/support/kube';
import {
  applyObjects,
  clusterIPOf,
  createInjectedNamespace,
  echoDeployment,
  httpService,
  kubectl,
  MESHCTL_BINARY,
  meshctl as meshctlIn,
  netnsOf,
  readyPodOf,
  removeMesh,
  shellDeployment,
  sidecarConfig,
  sidecarReport,
} from '../cluster/support/mesh-apps';
import type { MeshedPod } from '../cluster/support/mesh-faults';
import { changePolicyAndWait, podsOfRole, restartDeployment } from '../cluster/support/mesh-faults';
import { containerMemoryBytes, podFiles, podLogs } from '../cluster/support/node-access';
import { bundleScript, runScriptIn } from '../cluster/support/netns-script';
import { svidOf } from '../cluster/support/registrar-ca';
import type { MovableTraffic } from '../cluster/support/traffic-generator';
import { movableTraffic } from '../cluster/support/traffic-generator';
import { CLIENT_IMAGE, LOCAL_IMAGE_FLAGS } from '../support/images';
import type { HttpProbeResult, NatsProbeResult, NatsStep, Probe, SvidProbeResult } from './probe';
import type { AttackOutcome } from './report';
import { publishAttackReport } from './report';
import { generateFuzzObjects } from './fuzz';

const root = join(__dirname, '..', '..');
const meshNamespace = 'mesh-adversarial';
const victim = 'victim';
const attacker = 'attacker';
/** The most a policy change may take to reach every victim sidecar after an attack. */
const CONVERGE_LIMIT_S = 10;
/** How long the change is waited for before the mesh is repaired for the next attack. */
const CONVERGE_WAIT_MS = 20_000;
const TRUST_DOMAIN = 'example.org';
/** The tenant's meshed Deployment and its Services (policies name them). */
const TENANT = 'tenant';
/** The unmeshed pod that claims to be injected. */
const LONER = 'loner';
/** The largest integer a JSON number carries exactly: a generation no controller reaches. */
const HUGE_GENERATION = Number.MAX_SAFE_INTEGER;
/** Where the sidecar keeps its SVID and bundle (the agent's run directory's tls/). */
const SIDECAR_TLS_DIR = `${SIDECAR_CONFIG_MOUNT_PATH}/tls`;

let rest: KubeRest;
let traffic: MovableTraffic | undefined;
let probeBundle = '';
const outcomes: AttackOutcome[] = [];
const tierStartedAt = Date.now();
let changes = 0;

/** The NATS identity the new bus scheme gives namespace/ServiceAccount: its own subject. */
function subscriptionSubjectOf(namespace: string, serviceAccount: string): string {
  return `${NATS_SUBSCRIPTION_SUBJECT}.${namespace}.${serviceAccount.replaceAll('.', '_')}`;
}

function inboxOf(namespace: string, serviceAccount: string): string {
  return `_INBOX.${namespace}.${serviceAccount.replaceAll('.', '_')}`;
}

function appTraffic(): MovableTraffic {
  if (traffic === undefined) throw new Error('no victim traffic: the set-up did not finish');
  return traffic;
}

async function podNetns(pod: PodSummary): Promise<string> {
  return netnsOf(pod.status?.podIP ?? '');
}

/**
 * Runs one probe from inside the network namespace of pod, as root or as uid; bounded by
 * timeoutMs.
 */
function probeFrom<T>(pod: PodSummary, probe: Probe, timeoutMs = 60_000, uid?: number): Promise<T> {
  return podNetns(pod).then((netns) => runScriptIn<T>(netns, probeBundle, probe, timeoutMs, uid));
}

/** What `kubectl exec` prints from a container of a pod in namespace (the tenant can do this). */
async function execIn(
  namespace: string,
  pod: string,
  container: string,
  argv: readonly string[],
): Promise<string> {
  const result = await kubectl(['exec', '-n', namespace, pod, '-c', container, '--', ...argv]);
  if (result.exitCode !== 0)
    throw new Error(`exec ${argv.join(' ')} in ${namespace}/${pod} failed: ${result.stderr}`);
  return result.stdout;
}

/** The Ready tenant pod (meshed, in attacker). */
function tenantPod(): Promise<PodSummary> {
  return readyPodOf(rest, attacker, TENANT);
}

async function lonerPod(): Promise<PodSummary> {
  return rest.request<PodSummary>('GET', `/api/v1/namespaces/${attacker}/pods/${LONER}`);
}

/** The tenant's genuine SVID and bundle, read from its own sidecar. */
async function tenantSvid(): Promise<{ pem: string; bundle: string }> {
  const pod = (await tenantPod()).metadata.name;
  const pem = await execIn(attacker, pod, SIDECAR_CONTAINER_NAME, [
    'cat',
    `${SIDECAR_TLS_DIR}/${SVID_FILE_NAME}`,
  ]);
  const bundle = await execIn(attacker, pod, SIDECAR_CONTAINER_NAME, [
    'cat',
    `${SIDECAR_TLS_DIR}/${SVID_BUNDLE_FILE_NAME}`,
  ]);
  return { pem, bundle };
}

async function natsUrl(): Promise<string> {
  return `tls://${await clusterIPOf(rest, meshNamespace, NATS_NAME)}:${NATS_CLIENT_PORT}`;
}

async function registrarUrl(): Promise<string> {
  return `https://${await clusterIPOf(rest, meshNamespace, REGISTRAR_NAME)}:${REGISTRAR_API_PORT}`;
}

/** The controller container's id, for its memory. */
async function controllerContainer(): Promise<string> {
  const pods = (await podsOfRole(rest, meshNamespace, CONTROLLER_NAME)) as MeshedPod[];
  const id = pods
    .filter(isReady)
    .flatMap((pod) => pod.status?.containerStatuses ?? [])
    .find((status) => status.containerID !== undefined)?.containerID;
  if (id === undefined) throw new Error('no running controller container');
  return id;
}

const MIB = 1024 * 1024;
const mib = (bytes: number): string => `${(bytes / MIB).toFixed(1)} MiB`;

/** Whether fn rejects like an API server refusing the object (a 4xx). */
function refusedByApi(error: unknown): boolean {
  return (
    error instanceof Error &&
    /is invalid|Unsupported value|should match|must be/.test(error.message)
  );
}

/** Deletes the objects (those that exist), without waiting for their finalizers. */
async function deleteObjects(objects: readonly object[]): Promise<void> {
  const deleted = await kubectl(
    ['delete', '--ignore-not-found', '--wait=false', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  );
  if (deleted.exitCode !== 0) throw new Error(`kubectl delete failed: ${deleted.stderr}`);
}

/** The victim's sidecars and traffic after an attack, measured the same way every time. */
async function afterAttack(
  startedAt: number,
  problems: string[],
  notes: string[],
): Promise<{ convergeSeconds: number | undefined; requests: number; failed: number }> {
  const change = await changePolicyAndWait(
    rest,
    { meshNamespace, namespace: victim },
    `${(changes += 1) + 200}k`,
    CONVERGE_WAIT_MS,
  );
  let convergeSeconds: number | undefined;
  if (change.at === undefined) {
    problems.push(
      `a policy change never reached ${change.behind.join(', ')} within ${CONVERGE_WAIT_MS / 1000} s`,
    );
  } else {
    convergeSeconds = (change.at - change.changedAt) / 1000;
    if (convergeSeconds > CONVERGE_LIMIT_S)
      problems.push(
        `a policy change took ${convergeSeconds.toFixed(1)} s to reach every victim sidecar (limit ${CONVERGE_LIMIT_S} s)`,
      );
  }
  // The victim is still served: ten more requests complete (whether each succeeded is counted
  // below) within 20 s.
  const servedFrom = Date.now();
  let served = false;
  for (let round = 0; round < 100 && !served; round += 1) {
    served = appTraffic().between(servedFrom, Date.now()).completed >= 10;
    if (!served) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (!served) problems.push('no ten victim requests completed within 20 s after the attack');
  const window = appTraffic().between(startedAt, Date.now());
  // Every attack window holds at least one reload of every victim sidecar (the policy change
  // above; in access control allow, also the attacker's TrafficSplits, which every sidecar
  // renders). A reload can still cost a request under strict mTLS (about one in a few hundred
  // here): that is counted and reported; a tenant who makes a victim lose more than one request
  // in ten has broken it.
  const failures = `${window.failed.length} of ${window.completed} victim requests failed: ${window.failed
    .slice(0, 5)
    .map((each) => each.outcome)
    .join(', ')}`;
  if (window.failed.length * 10 > window.completed) problems.push(failures);
  else if (window.failed.length > 0) notes.push(failures);
  return { convergeSeconds, requests: window.completed, failed: window.failed.length };
}

/**
 * Mends the mesh for the next attack once the attack's objects are gone: a policy change must
 * reach every victim sidecar again, else the controller and the victim's pods are replaced.
 */
async function repair(notes: string[]): Promise<void> {
  const change = await changePolicyAndWait(
    rest,
    { meshNamespace, namespace: victim },
    `${(changes += 1) + 200}k`,
    CONVERGE_WAIT_MS,
  );
  if (change.at !== undefined) {
    notes.push('converged again once the attack was undone');
    return;
  }
  await restartDeployment(meshNamespace, CONTROLLER_NAME).catch(() => undefined);
  await restartDeployment(victim, 'web').catch(() => undefined);
  await restartDeployment(victim, 'client').catch(() => undefined);
  const client = await waitFor(
    'one Ready victim client',
    () => readyPodOf(rest, victim, 'client').catch(() => undefined),
    120_000,
    500,
  );
  await appTraffic().moveTo(await podNetns(client));
  await waitForVictimCurrent().catch(() => undefined);
  notes.push('the controller and the victim Deployments were restarted to mend the mesh');
}

/**
 * Acts an attack out: act performs it, pushes a problem for every way it succeeded, and returns
 * one line of what it met; then the victim is measured. Never throws for a broken promise.
 */
async function runAttack(
  name: string,
  expected: string,
  act: (problems: string[], notes: string[]) => Promise<string>,
  undo?: () => Promise<void>,
): Promise<AttackOutcome> {
  const problems: string[] = [];
  const notes: string[] = [];
  const startedAt = Date.now();
  let saw: string;
  try {
    saw = await act(problems, notes);
  } catch (error) {
    saw = 'could not be carried out';
    problems.push(`the attack could not be carried out: ${(error as Error).message}`);
  }
  const measured = await afterAttack(startedAt, problems, notes).catch((error: unknown) => {
    problems.push(`measuring the victim failed: ${(error as Error).message}`);
    return { convergeSeconds: undefined, requests: 0, failed: 0 };
  });
  await undo?.().catch((error: unknown) =>
    notes.push(`undoing the attack failed: ${(error as Error).message}`),
  );
  if (measured.convergeSeconds === undefined)
    await repair(notes).catch((error: unknown) =>
      notes.push(`mending the mesh failed: ${(error as Error).message}`),
    );
  notes.push(`took ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  const outcome: AttackOutcome = { name, expected, saw, ...measured, problems, notes };
  outcomes.push(outcome);
  process.stderr.write(
    `${name}: ${problems.length === 0 ? 'held' : 'BROKEN'}; saw ${saw}\n${[...problems, ...notes].map((line) => `  ${line}`).join('\n')}\n`,
  );
  return outcome;
}

/** The last 25 lines of every container in namespaces, to explain a set-up that failed. */
async function lastLogLines(namespaces: readonly string[]): Promise<string> {
  const sections: string[] = [];
  for (const namespace of namespaces) {
    for (const pod of await listPods(rest, namespace)) {
      for (const [container, text] of Object.entries(podLogs(pod.metadata.uid))) {
        const tail = (text ?? '').split('\n').slice(-25).join('\n');
        sections.push(`=== ${namespace}/${pod.metadata.name}/${container}\n${tail}\n`);
      }
    }
  }
  return sections.join('');
}

/**
 * Until the victim client's sidecar routes to web and every victim sidecar runs the generation in
 * force, as the controller reports it (the loner, claiming injection, never reports: it is left
 * out, as is the tenant's namespace).
 */
async function waitForVictimCurrent(): Promise<void> {
  const client = await readyPodOf(rest, victim, 'client');
  await waitFor(
    'the upstream of web in the victim client sidecar',
    () =>
      Promise.resolve((sidecarConfig(client.metadata.uid) ?? '').includes('web_80') || undefined),
    60_000,
    250,
  );
  await waitFor(
    'every victim sidecar on the generation in force',
    async () => {
      const report = await sidecarReport(rest, meshNamespace);
      const pods = (await listPods(rest, victim)).map((pod) => `${victim}/${pod.metadata.name}`);
      const reported = report.sidecars.filter((sidecar) => pods.includes(sidecar.pod));
      return reported.length === pods.length &&
        reported.every((sidecar) => sidecar.generation === report.generation)
        ? true
        : undefined;
    },
    60_000,
    250,
  );
}

/** A pod that only sleeps, claims to be injected, and mounts a registrar-audience token. */
function lonerManifest(
  name: string,
  extra: { containers?: object[]; initContainers?: object[]; volumes?: object[] } = {},
): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: attacker,
      labels: { app: name },
      annotations: { [INJECTION_STATUS_ANNOTATION]: INJECTION_STATUS_INJECTED },
    },
    spec: {
      terminationGracePeriodSeconds: 1,
      ...(extra.initContainers === undefined ? {} : { initContainers: extra.initContainers }),
      containers: [
        {
          name: 'sh',
          image: CLIENT_IMAGE,
          command: ['/bin/sh', '-c', 'sleep 3600'],
          volumeMounts: [
            { name: IDENTITY_VOLUME_NAME, mountPath: IDENTITY_MOUNT_PATH, readOnly: true },
          ],
        },
        ...(extra.containers ?? []),
      ],
      volumes: [
        {
          name: IDENTITY_VOLUME_NAME,
          projected: {
            sources: [
              {
                serviceAccountToken: {
                  audience: IDENTITY_TOKEN_AUDIENCE,
                  expirationSeconds: IDENTITY_TOKEN_EXPIRATION_SECONDS,
                  path: IDENTITY_TOKEN_PATH,
                },
              },
            ],
          },
        },
        ...(extra.volumes ?? []),
      ],
    },
  };
}

/** The tenant: a meshed Deployment in attacker, injected because its pods ask for it. */
function tenantDeployment(): object {
  const deployment = shellDeployment(attacker, TENANT, 8080) as {
    spec: { template: { metadata: { labels: Record<string, string> } } };
  };
  deployment.spec.template.metadata.labels['injector.nsm.nginx.com/auto-inject'] = 'enabled';
  return deployment;
}

async function waitForPodReady(namespace: string, name: string): Promise<PodSummary> {
  return waitFor(
    `pod ${namespace}/${name} Ready`,
    async () => {
      const pod = await rest.request<PodSummary>(
        'GET',
        `/api/v1/namespaces/${namespace}/pods/${name}`,
      );
      return isReady(pod) ? pod : undefined;
    },
    120_000,
    500,
  );
}

/**
 * One SVID request with the token of a container of pod, from the pod's network namespace. The
 * sidecar container's requests go as the sidecar's own uid: a meshed pod's other traffic to the
 * control plane, which is outside the mesh, is refused by its sidecar under strict mTLS.
 */
async function svidRequest(
  pod: PodSummary,
  container: string,
  count: number,
  concurrency = 1,
): Promise<SvidProbeResult> {
  const token = await execIn(attacker, pod.metadata.name, container, [
    'cat',
    `${IDENTITY_MOUNT_PATH}/${IDENTITY_TOKEN_PATH}`,
  ]);
  const { csrPem } = await createKeyAndRequest('ec-p256');
  return probeFrom<SvidProbeResult>(
    pod,
    {
      kind: 'svid',
      url: await registrarUrl(),
      token: token.trim(),
      csrPem,
      count,
      concurrency,
      deadlineMs: 60_000,
    },
    90_000,
    container === SIDECAR_CONTAINER_NAME ? SIDECAR_UID : undefined,
  );
}

function describeSvid(result: SvidProbeResult): string {
  const statuses = Object.entries(result.statuses)
    .map(([status, count]) => `${count}×${status}`)
    .join(' ');
  return `${statuses}${result.issued.length > 0 ? `; issued ${result.issued.join(', ')}` : ''}`;
}

/** A NATS connection from the loner's network namespace with the tenant's genuine SVID. */
async function natsAsTenant(
  steps: readonly NatsStep[],
  settleMs = 1_500,
  deadlineMs = 60_000,
): Promise<NatsProbeResult> {
  const { pem, bundle } = await tenantSvid();
  return probeFrom<NatsProbeResult>(
    await lonerPod(),
    {
      kind: 'nats',
      server: await natsUrl(),
      certPem: pem,
      keyPem: pem,
      caPem: bundle,
      steps,
      settleMs,
      deadlineMs,
    },
    deadlineMs + 30_000,
  );
}

function subscribeRequest(pod: string, generation?: number): string {
  return JSON.stringify({
    kind: 'subscribe',
    pod,
    version: '0.1.0',
    ...(generation === undefined ? {} : { generation }),
  });
}

/** The Accepted condition of a policy object, when it has one. */
async function acceptedOf(
  path: string,
): Promise<{ status: string; reason?: string; message?: string } | undefined> {
  const object = await rest.request<{
    status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
  }>('GET', path);
  return object.status?.conditions?.find((condition) => condition.type === 'Accepted');
}

const POLICY_PATHS = {
  HTTPRouteGroup: 'apis/specs.smi-spec.io/v1alpha3',
  TrafficTarget: 'apis/access.smi-spec.io/v1alpha2',
  TrafficSplit: 'apis/split.smi-spec.io/v1alpha3',
  RateLimit: 'apis/specs.smi.nginx.com/v1alpha2',
} as const;
type PolicyKind = keyof typeof POLICY_PATHS;
const PLURALS: Record<PolicyKind, string> = {
  HTTPRouteGroup: 'httproutegroups',
  TrafficTarget: 'traffictargets',
  TrafficSplit: 'trafficsplits',
  RateLimit: 'ratelimits',
};

function policyPath(kind: PolicyKind, name: string): string {
  return `/${POLICY_PATHS[kind]}/namespaces/${attacker}/${PLURALS[kind]}/${name}`;
}

/**
 * Applies the policies; then waits (bounded) until the named object carries Accepted=False with a
 * reason. Resolves with what it met: the API server's refusal, the condition, or its absence.
 */
async function hostilePolicy(
  objects: readonly object[],
  judged: { kind: PolicyKind; name: string },
  problems: string[],
): Promise<string> {
  try {
    await applyObjects(objects);
  } catch (error) {
    if (refusedByApi(error))
      return `refused by the API server: ${(error as Error).message.split('\n').find((line) => line.includes('Invalid') || line.includes('invalid')) ?? ''}`.slice(
        0,
        160,
      );
    throw error;
  }
  const condition = await waitFor(
    `an Accepted condition on ${judged.kind} ${attacker}/${judged.name}`,
    async () => {
      const found = await acceptedOf(policyPath(judged.kind, judged.name));
      return found?.status === 'False' ? found : undefined;
    },
    20_000,
    500,
  ).catch(() => undefined);
  if (condition === undefined) {
    const found = await acceptedOf(policyPath(judged.kind, judged.name)).catch(() => undefined);
    problems.push(
      `${judged.kind} ${attacker}/${judged.name} was not marked Accepted=False within 20 s (Accepted: ${found === undefined ? 'none' : `${found.status} ${found.reason ?? ''}`})`,
    );
    return `Accepted ${found?.status ?? 'none'}`;
  }
  if ((condition.reason ?? '') === '')
    problems.push(`${judged.kind} ${attacker}/${judged.name} is Accepted=False without a reason`);
  return `Accepted=False ${condition.reason ?? ''}: ${condition.message ?? ''}`.slice(0, 160);
}

function routeGroup(name: string, match: object): object {
  return {
    apiVersion: 'specs.smi-spec.io/v1alpha3',
    kind: 'HTTPRouteGroup',
    metadata: { name, namespace: attacker },
    spec: { matches: [{ name: 'm', ...match }] },
  };
}

function trafficSplit(name: string, service: string, backends: object[], group?: string): object {
  return {
    apiVersion: 'split.smi-spec.io/v1alpha3',
    kind: 'TrafficSplit',
    metadata: { name, namespace: attacker },
    spec: {
      service,
      backends,
      ...(group === undefined ? {} : { matches: [{ kind: 'HTTPRouteGroup', name: group }] }),
    },
  };
}

/** The victim's web, two replicas, as the fault tier runs it. */
function victimWeb(): object {
  const web = echoDeployment(victim, 'web', { labels: { app: 'web' } }) as {
    spec: { replicas: number };
  };
  web.spec.replicas = 2;
  return web;
}

const tenantSubject = { kind: 'ServiceAccount', name: 'default', namespace: attacker };

/** A Service in attacker in front of the tenant's pods, for policies to name. */
function tenantService(name: string): object {
  return httpService(attacker, name, { app: TENANT });
}

beforeAll(async () => {
  rest = await testRest();
  await waitForNoMesh(rest);
  probeBundle = await bundleScript(join(__dirname, 'probe.ts'));
  const deployed = await meshctlIn(meshNamespace, [
    'deploy',
    ...LOCAL_IMAGE_FLAGS,
    '--mtls-mode',
    'strict',
  ]);
  if (deployed.exitCode !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
  await createInjectedNamespace(rest, victim);
  await createNamespace(rest, attacker);
  await applyObjects([
    victimWeb(),
    shellDeployment(victim, 'client'),
    httpService(victim, 'web', { app: 'web' }),
    tenantDeployment(),
    tenantService(TENANT),
    lonerManifest(LONER),
  ]);
  await waitFor(
    'the victim web and client, the tenant and the loner Ready',
    async () => {
      const ready = async (namespace: string, app: string, count = 1) =>
        (await listPods(rest, namespace, `app=${app}`)).filter(isReady).length === count;
      const all = await Promise.all([
        ready(victim, 'web', 2),
        ready(victim, 'client'),
        ready(attacker, TENANT),
        ready(attacker, LONER),
      ]);
      return all.every(Boolean) ? true : undefined;
    },
    180_000,
    500,
  );
  // A mesh that never converges is explained by its components' last words.
  await waitForVictimCurrent().catch(async (error: unknown) => {
    process.stderr.write(await lastLogLines([meshNamespace, victim, attacker]));
    throw error;
  });
  traffic = movableTraffic(`http://${await clusterIPOf(rest, victim, 'web')}/`);
  await appTraffic().moveTo(await podNetns(await readyPodOf(rest, victim, 'client')));
  if (!(await appTraffic().waitForCompleted(20, 60_000)))
    throw new Error('GETs from the victim client to web do not succeed');
}, 300_000);

afterAll(async () => {
  await traffic?.stop();
  const dir = process.env.NMK_TEST_STATE_DIR ?? root;
  const path = publishAttackReport(
    outcomes,
    (Date.now() - tierStartedAt) / 1000,
    CONVERGE_LIMIT_S,
    dir,
  );
  process.stderr.write(`attack table written to ${path}\n`);
  await deleteNamespace(rest, attacker);
  await deleteNamespace(rest, victim);
  await removeMesh(meshNamespace);
  rest.close();
}, 200_000);

describe('hostile tenants', () => {
  test('4. invalid regexes, methods, weights and rates from attacker are marked Accepted=False and break no victim sidecar', async () => {
    const cases: { name: string; objects: object[]; judged: { kind: PolicyKind; name: string } }[] =
      [
        {
          name: 'pathRegex "(" in a TrafficTarget and a TrafficSplit',
          objects: [
            tenantService('root-paren'),
            routeGroup('paren', { pathRegex: '(' }),
            {
              apiVersion: 'access.smi-spec.io/v1alpha2',
              kind: 'TrafficTarget',
              metadata: { name: 'paren-target', namespace: attacker },
              spec: {
                destination: tenantSubject,
                sources: [tenantSubject],
                rules: [{ kind: 'HTTPRouteGroup', name: 'paren', matches: ['m'] }],
              },
            },
            trafficSplit('paren-split', 'root-paren', [{ service: TENANT, weight: 100 }], 'paren'),
          ],
          judged: { kind: 'HTTPRouteGroup', name: 'paren' },
        },
        {
          name: 'pathRegex ")|(.*"',
          objects: [
            tenantService('root-alt'),
            routeGroup('alt', { pathRegex: ')|(.*' }),
            trafficSplit('alt-split', 'root-alt', [{ service: TENANT, weight: 100 }], 'alt'),
          ],
          judged: { kind: 'HTTPRouteGroup', name: 'alt' },
        },
        {
          name: 'an invalid header regex',
          objects: [
            tenantService('root-header'),
            routeGroup('header', { headers: { 'x-evil': '[unclosed' } }),
            trafficSplit(
              'header-split',
              'root-header',
              [{ service: TENANT, weight: 100 }],
              'header',
            ),
          ],
          judged: { kind: 'HTTPRouteGroup', name: 'header' },
        },
        {
          name: 'method "GET;"',
          objects: [
            tenantService('root-method'),
            routeGroup('method', { methods: ['GET;'] }),
            trafficSplit(
              'method-split',
              'root-method',
              [{ service: TENANT, weight: 100 }],
              'method',
            ),
          ],
          judged: { kind: 'HTTPRouteGroup', name: 'method' },
        },
        {
          name: 'a TrafficSplit weight of 2^53-1',
          objects: [
            tenantService('root-weight'),
            tenantService('tenant-b'),
            trafficSplit('weight-split', 'root-weight', [
              { service: TENANT, weight: Number.MAX_SAFE_INTEGER },
              { service: 'tenant-b', weight: 1 },
            ]),
          ],
          judged: { kind: 'TrafficSplit', name: 'weight-split' },
        },
        {
          name: 'a RateLimit of 10^20 r/s with a burst of 2^53-1',
          objects: [
            {
              apiVersion: 'specs.smi.nginx.com/v1alpha2',
              kind: 'RateLimit',
              metadata: { name: 'rate-huge', namespace: attacker },
              spec: {
                destination: { kind: 'Service', name: TENANT, namespace: attacker },
                name: 'huge',
                rate: '100000000000000000000r/s',
                burst: Number.MAX_SAFE_INTEGER,
              },
            },
          ],
          judged: { kind: 'RateLimit', name: 'rate-huge' },
        },
        {
          name: 'a RateLimit of -1 r/s',
          objects: [
            {
              apiVersion: 'specs.smi.nginx.com/v1alpha2',
              kind: 'RateLimit',
              metadata: { name: 'rate-negative', namespace: attacker },
              spec: {
                destination: { kind: 'Service', name: TENANT, namespace: attacker },
                name: 'negative',
                rate: '-1r/s',
              },
            },
          ],
          judged: { kind: 'RateLimit', name: 'rate-negative' },
        },
      ];
    const results: AttackOutcome[] = [];
    for (const each of cases) {
      results.push(
        await runAttack(
          `4. ${each.name}`,
          'Accepted=False with a reason (or refused by the API server); victim converges',
          (problems) => hostilePolicy(each.objects, each.judged, problems),
          () => deleteObjects(each.objects),
        ),
      );
    }
    expect(
      results.flatMap((outcome) => outcome.problems.map((line) => `${outcome.name}: ${line}`)),
    ).toEqual([]);
  }, 600_000);

  test('1. the registrar refuses an SVID (403) to a pod that claims injection but runs no sidecar', async () => {
    const outcome = await runAttack(
      '1. SVID without a sidecar',
      '403, no certificate',
      async (problems) => {
        const result = await svidRequest(await lonerPod(), 'sh', 1);
        if (result.statuses['403'] !== 1)
          problems.push(`the registrar answered ${describeSvid(result)}, not 403`);
        if (result.issued.length > 0)
          problems.push(`the registrar issued ${result.issued.join(', ')}`);
        return describeSvid(result);
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test("1b. the registrar refuses an SVID (403) to an app container that mounts a copied sidecar's token", async () => {
    const outcome = await runAttack(
      '1b. copied sidecar, token in the app',
      '403, no certificate',
      async (problems) => {
        // The injected sidecar of the tenant, copied as it is into a pod the webhook never saw.
        const tenant = await rest.request<{
          spec: { initContainers?: object[]; containers: object[]; volumes: { name: string }[] };
        }>('GET', `/api/v1/namespaces/${attacker}/pods/${(await tenantPod()).metadata.name}`);
        const sidecar = [...(tenant.spec.initContainers ?? []), ...tenant.spec.containers].find(
          (container) => (container as { name: string }).name === SIDECAR_CONTAINER_NAME,
        );
        if (sidecar === undefined) throw new Error('the tenant pod has no sidecar to copy');
        const volumes = tenant.spec.volumes.filter(
          (volume) =>
            volume.name !== IDENTITY_VOLUME_NAME && !volume.name.startsWith('kube-api-access'),
        );
        const impostor = lonerManifest('impostor', {
          initContainers: [
            {
              ...sidecar,
              volumeMounts: (
                (sidecar as { volumeMounts?: { name: string }[] }).volumeMounts ?? []
              ).filter((mount) => !mount.name.startsWith('kube-api-access')),
            },
          ],
          volumes,
        });
        await applyObjects([impostor]);
        const pod = await waitForPodReady(attacker, 'impostor');
        const result = await svidRequest(pod, 'sh', 1);
        if (result.statuses['403'] !== 1)
          problems.push(`the registrar answered ${describeSvid(result)}, not 403`);
        if (result.issued.length > 0)
          problems.push(`the registrar issued ${result.issued.join(', ')}`);
        await kubectl(['delete', 'pod', 'impostor', '-n', attacker, '--wait=false']);
        return describeSvid(result);
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test('3e. NATS refuses the tenant reading inboxes and acks, and publishing as the legacy or the victim identity', async () => {
    const outcome = await runAttack(
      '3e. NATS eavesdropping and impersonation',
      'permission denied by NATS',
      async (problems) => {
        const forbidden: NatsStep[] = [
          { op: 'subscribe', subject: '_INBOX.>' },
          { op: 'subscribe', subject: NATS_SUBSCRIPTION_SUBJECT },
          { op: 'subscribe', subject: `${NATS_SUBSCRIPTION_SUBJECT}.>` },
          { op: 'subscribe', subject: `${inboxOf(victim, 'default')}.>` },
          {
            op: 'publish',
            subject: NATS_SUBSCRIPTION_SUBJECT,
            data: JSON.stringify({ kind: 'ack', pod: `${attacker}/x`, generation: 1 }),
          },
          {
            op: 'publish',
            subject: subscriptionSubjectOf(victim, 'default'),
            data: JSON.stringify({ kind: 'ack', pod: `${victim}/x`, generation: 1 }),
          },
        ];
        const result = await natsAsTenant(forbidden);
        if (result.connectError !== undefined)
          throw new Error(`the tenant could not connect: ${result.connectError}`);
        const allowed = result.steps.filter((step) => step.refused === undefined);
        for (const step of allowed)
          problems.push(
            `NATS let the tenant ${step.op} ${step.subject}${step.received > 0 ? ` (received ${step.received})` : ''}`,
          );
        return `${result.steps.length - allowed.length}/${result.steps.length} refused; allowed: ${allowed.map((step) => `${step.op} ${step.subject}`).join(', ') || 'none'}`;
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test('3f. NATS refuses a connection without a client certificate, and one from another CA', async () => {
    const outcome = await runAttack(
      '3f. NATS without / with a foreign certificate',
      'connection refused',
      async (problems) => {
        const { bundle } = await tenantSvid();
        const loner = await lonerPod();
        const server = await natsUrl();
        const steps: NatsStep[] = [{ op: 'subscribe', subject: NATS_CONFIG_SUBJECT }];
        const bare = await probeFrom<NatsProbeResult>(loner, {
          kind: 'nats',
          server,
          caPem: bundle,
          steps,
          settleMs: 500,
          deadlineMs: 10_000,
        });
        const dir = mkdtempSync(join(tmpdir(), 'nmk-foreign-'));
        const key = join(dir, 'key.pem');
        const cert = join(dir, 'cert.pem');
        const made = await execa(
          'openssl',
          [
            ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
            ...['-keyout', key, '-out', cert, '-days', '1', '-subj', '/O=foreign'],
            ...['-addext', `subjectAltName=URI:spiffe://${TRUST_DOMAIN}/ns/${attacker}/sa/default`],
          ],
          { reject: false },
        );
        if (made.exitCode !== 0) throw new Error(`openssl failed: ${made.stderr}`);
        const foreign = await probeFrom<NatsProbeResult>(loner, {
          kind: 'nats',
          server,
          certPem: readFileSync(cert, 'utf8'),
          keyPem: readFileSync(key, 'utf8'),
          caPem: bundle,
          steps,
          settleMs: 500,
          deadlineMs: 10_000,
        });
        if (bare.connectError === undefined)
          problems.push('NATS accepted a connection without a client certificate');
        if (foreign.connectError === undefined)
          problems.push('NATS accepted a client certificate from another CA');
        return `no certificate: ${bare.connectError ?? 'connected'}; foreign CA: ${foreign.connectError ?? 'connected'}`.slice(
          0,
          160,
        );
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test("3d. the controller answers no subscribe request on the config subject or another pod's inbox", async () => {
    const outcome = await runAttack(
      '3d. subscribe replies redirected',
      'not answered there',
      async (problems) => {
        const victimInbox = `${inboxOf(victim, 'default')}.stolen`;
        const steps: NatsStep[] = [
          // Listens where a redirected answer would land (the config subject every agent reads).
          { op: 'subscribe', subject: NATS_CONFIG_SUBJECT },
          ...[NATS_SUBSCRIPTION_SUBJECT, subscriptionSubjectOf(attacker, 'default')].flatMap(
            (subject): NatsStep[] => [
              {
                op: 'publish',
                subject,
                data: subscribeRequest(`${attacker}/redirect-a`),
                reply: NATS_CONFIG_SUBJECT,
              },
              {
                op: 'publish',
                subject,
                data: subscribeRequest(`${attacker}/redirect-b`),
                reply: victimInbox,
              },
            ],
          ),
        ];
        // The victim's inbox is watched with the victim's own SVID, read from its pod's volume.
        const [web] = await listPods(rest, victim, 'app=web');
        const victimSvid = svidFileOf(web);
        const watch = probeFrom<NatsProbeResult>(await lonerPod(), {
          kind: 'nats',
          server: await natsUrl(),
          certPem: victimSvid.pem,
          keyPem: victimSvid.pem,
          caPem: victimSvid.bundle,
          steps: [{ op: 'subscribe', subject: `${inboxOf(victim, 'default')}.>` }],
          settleMs: 8_000,
          deadlineMs: 20_000,
        });
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        const result = await natsAsTenant(steps, 3_000);
        const watched = await watch;
        if (result.connectError !== undefined)
          throw new Error(`the tenant could not connect: ${result.connectError}`);
        const onConfig = result.steps[0]?.received ?? 0;
        const onInbox = watched.steps[0]?.received ?? 0;
        if (onConfig > 0) problems.push(`${onConfig} answers landed on ${NATS_CONFIG_SUBJECT}`);
        if (onInbox > 0)
          problems.push(`${onInbox} answers landed in the victim's inbox ${victimInbox}`);
        return `answers on ${NATS_CONFIG_SUBJECT}: ${onConfig}; in the victim's inbox: ${onInbox}${watched.connectError === undefined ? '' : ` (watch: ${watched.connectError})`}`;
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test("3c. the controller refuses acks that claim the victim's sidecars applied a generation", async () => {
    const outcome = await runAttack(
      "3c. forged acks for the victim's pods",
      'refused: the victim keeps its real generation',
      async (problems) => {
        const victims = (await listPods(rest, victim)).map(
          (pod) => `${victim}/${pod.metadata.name}`,
        );
        const forged = 4_000_000_000_000_000;
        const steps: NatsStep[] = [
          NATS_SUBSCRIPTION_SUBJECT,
          subscriptionSubjectOf(attacker, 'default'),
        ].flatMap((subject) =>
          victims.map((pod): NatsStep => ({
            op: 'publish',
            subject,
            data: JSON.stringify({ kind: 'ack', pod, generation: forged }),
          })),
        );
        await natsAsTenant(steps, 1_000);
        const report = await sidecarReport(rest, meshNamespace);
        const believed = report.sidecars
          .filter((sidecar) => sidecar.generation === forged)
          .map((sidecar) => sidecar.pod);
        if (believed.length > 0)
          problems.push(
            `the controller believes ${believed.join(', ')} applied generation ${forged}`,
          );
        return believed.length > 0 ? `believed for ${believed.join(', ')}` : 'ignored';
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test('3b. 100,000 fake acks for random pods leave the controller bounded and converging', async () => {
    const outcome = await runAttack(
      '3b. 100,000 fake acks',
      'controller memory bounded; fake pods unknown',
      async (problems, notes) => {
        const before = await containerMemoryBytes(await controllerContainer());
        const started = Date.now();
        const ack = JSON.stringify({ kind: 'ack', pod: `${attacker}/fake-\${i}`, generation: 1 });
        const result = await natsAsTenant(
          [
            {
              op: 'publish',
              subject: NATS_SUBSCRIPTION_SUBJECT,
              data: ack.replace('fake-', 'legacy-'),
              repeat: 50_000,
            },
            {
              op: 'publish',
              subject: subscriptionSubjectOf(attacker, 'default'),
              data: ack,
              repeat: 50_000,
            },
          ],
          3_000,
          60_000,
        );
        const published = result.steps.reduce((sum, step) => sum + (step.published ?? 0), 0);
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        const after = await containerMemoryBytes(await controllerContainer());
        const report = await sidecarReport(rest, meshNamespace);
        const fakes = report.sidecars.filter((sidecar) =>
          /\/(fake|legacy)-/.test(sidecar.pod),
        ).length;
        notes.push(
          `published ${published} acks in ${((Date.now() - started) / 1000).toFixed(1)} s; controller memory ${mib(before)} → ${mib(after)}`,
        );
        if (fakes > 0) problems.push(`the controller records ${fakes} pods that do not exist`);
        if (after - before > 32 * MIB)
          problems.push(`the controller's memory grew ${mib(after - before)} (limit 32 MiB)`);
        return `${published} published; ${fakes} fake pods recorded; memory ${mib(before)} → ${mib(after)}`;
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test('2. an SVID request flood gets 429 answers while the registrar keeps issuing to a new victim pod', async () => {
    const outcome = await runAttack(
      '2. SVID request flood',
      '429s; a new victim pod still gets its SVID',
      async (problems) => {
        const tenant = await tenantPod();
        const flood = svidRequest(tenant, SIDECAR_CONTAINER_NAME, 300, 20);
        await applyObjects([shellDeployment(victim, 'newcomer')]);
        const result = await flood;
        const newcomer = await waitFor(
          'the new victim pod Ready',
          () => readyPodOf(rest, victim, 'newcomer').catch(() => undefined),
          120_000,
          500,
        ).catch(() => undefined);
        const svid = newcomer === undefined ? undefined : svidOf(newcomer.metadata.uid);
        if ((result.statuses['429'] ?? 0) === 0)
          problems.push(`no 429 among ${describeSvid(result)}`);
        if (svid === undefined) problems.push('the new victim pod got no SVID during the flood');
        await kubectl(['delete', 'deployment', 'newcomer', '-n', victim, '--wait=false']);
        return `${describeSvid(result).replace(/; issued .*/, '')} in ${(result.ms / 1000).toFixed(1)} s; newcomer SVID: ${svid === undefined ? 'none' : 'issued'}`;
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 300_000);

  test('5. metrics window, NATS monitor, controller /sidecars, sidecar stats, registrar RBAC and deep YAML are closed', async () => {
    const loner = await lonerPod();
    const results: AttackOutcome[] = [];
    results.push(
      await runAttack('5a. metrics API t=100000h', '400', async (problems) => {
        const path = `/apis/metrics.smi-spec.io/v1alpha1/namespaces/${victim}/deployments/web?t=100000h`;
        try {
          await rest.request('GET', path);
          problems.push('the metrics API answered 200');
          return '200';
        } catch (error) {
          const status = error instanceof KubeRestError ? error.status : undefined;
          if (status !== 400)
            problems.push(
              `the metrics API answered ${status ?? (error as Error).message}, not 400`,
            );
          return String(status);
        }
      }),
    );
    results.push(
      await runAttack(
        '5b. NATS monitor port from attacker',
        'connection refused / not listening',
        async (problems) => {
          const [nats] = await podsOfRole(rest, meshNamespace, NATS_NAME);
          const urls = [
            `http://${nats?.status?.podIP ?? ''}:${NATS_MONITOR_PORT}/varz`,
            `http://${await clusterIPOf(rest, meshNamespace, NATS_NAME)}:${NATS_MONITOR_PORT}/varz`,
          ];
          const seen: string[] = [];
          for (const url of urls) {
            const result = await probeFrom<HttpProbeResult>(loner, {
              kind: 'http',
              url,
              method: 'GET',
              timeoutMs: 3_000,
            });
            seen.push(result.outcome);
            if (!result.outcome.startsWith('error'))
              problems.push(`${url} answered ${result.outcome}`);
          }
          return seen.join(', ');
        },
      ),
    );
    results.push(
      await runAttack(
        '5c. controller /sidecars from attacker',
        'not readable',
        async (problems) => {
          const url = `http://${await clusterIPOf(rest, meshNamespace, CONTROLLER_NAME)}:${CONTROLLER_VERSION_PORT}/sidecars`;
          const result = await probeFrom<HttpProbeResult>(loner, {
            kind: 'http',
            url,
            method: 'GET',
            timeoutMs: 3_000,
          });
          if (result.outcome === '200')
            problems.push(`${url} answered 200: ${result.body.slice(0, 80)}`);
          return result.outcome;
        },
      ),
    );
    results.push(
      await runAttack(
        "5d. app container POSTs to its sidecar's stats",
        'refused',
        async (problems) => {
          const tenant = await tenantPod();
          // Where the stats were served on the pod's loopback (port 8886); the sidecar's unix
          // socket is in a volume the app does not mount.
          const script = `fetch('http://127.0.0.1:8886${SIDECAR_STATS_PATH}', { method: 'POST', signal: AbortSignal.timeout(3000) }).then((r) => console.log(r.status), (e) => console.log('error ' + (e.cause?.code ?? e.name)))`;
          const outcome = (
            await execIn(attacker, tenant.metadata.name, 'sh', ['node', '-e', script])
          ).trim();
          if (outcome === '200')
            problems.push('the app container took (and wiped) the sidecar metrics');
          return outcome;
        },
      ),
    );
    results.push(
      await runAttack(
        '5e. registrar creating ConfigMaps in attacker',
        'denied',
        async (problems) => {
          // RBAC allows create (it cannot be narrowed by name); the admission policy must refuse.
          const created = await kubectl([
            'create',
            'configmap',
            'registrar-forged',
            '--from-literal=bundle.crt=x',
            '-n',
            attacker,
            '--as',
            `system:serviceaccount:${meshNamespace}:${REGISTRAR_NAME}`,
          ]);
          if (created.exitCode === 0) {
            problems.push('the registrar created ConfigMap registrar-forged');
            return 'created';
          }
          const denied = /may write only ConfigMap/.test(created.stderr);
          if (!denied) problems.push(`refused for another reason: ${created.stderr.trim()}`);
          return denied ? 'denied by admission policy' : created.stderr.trim().slice(0, 80);
        },
      ),
    );
    results.push(
      await runAttack(
        '5f. inject of 100,000-deep YAML',
        'exit 1, one-line error',
        async (problems) => {
          const dir = mkdtempSync(join(tmpdir(), 'nmk-deep-'));
          const file = join(dir, 'deep.yaml');
          writeFileSync(file, `${'['.repeat(100_000)}${']'.repeat(100_000)}\n`);
          const result = await execa(MESHCTL_BINARY, ['inject', '-f', file], {
            reject: false,
            timeout: 60_000,
          });
          const lines = result.stderr.trim().split('\n');
          if (result.exitCode !== 1) problems.push(`exit ${result.exitCode}`);
          if (lines.length !== 1)
            problems.push(`${lines.length} lines on stderr: ${lines.slice(0, 3).join(' | ')}`);
          if (/RangeError|Maximum call stack| {4}at /.test(result.stderr))
            problems.push('a stack overflow or trace on stderr');
          return `exit ${result.exitCode}: ${lines[0]?.slice(0, 100) ?? ''}`;
        },
      ),
    );
    expect(
      results.flatMap((outcome) => outcome.problems.map((line) => `${outcome.name}: ${line}`)),
    ).toEqual([]);
  }, 600_000);

  test('6. 1,000 malformed policies each get a condition naming them, and the victim keeps converging', async () => {
    const outcome = await runAttack(
      '6. fuzz: 1,000 malformed policies',
      'every object Accepted=False; memory bounded',
      async (problems, notes) => {
        const before = await containerMemoryBytes(await controllerContainer());
        const started = Date.now();
        const objects = generateFuzzObjects({
          seed: 20_240_601,
          count: 1_000,
          namespace: attacker,
          services: [TENANT],
        });
        let refused = 0;
        for (let index = 0; index < objects.length; index += 100) {
          const batch = objects.slice(index, index + 100);
          try {
            await applyObjects(batch.map((each) => each.object));
          } catch {
            // One invalid object fails kubectl's whole List: each of the batch is applied alone.
            for (const each of batch) await applyObjects([each.object]).catch(() => (refused += 1));
          }
        }
        const judged = await waitFor(
          'an Accepted condition on every fuzzed object',
          async () => {
            const conditions = await fuzzConditions();
            return conditions.size >= objects.length - refused || Date.now() - started > 150_000
              ? conditions
              : undefined;
          },
          180_000,
          2_000,
        );
        const rejected = [...judged.values()].filter((status) => status === 'False').length;
        const after = await containerMemoryBytes(await controllerContainer());
        notes.push(
          `${objects.length} objects (${refused} refused by the API server) in ${((Date.now() - started) / 1000).toFixed(0)} s; ${judged.size} with an Accepted condition, ${rejected} False; controller memory ${mib(before)} → ${mib(after)}`,
        );
        const missing = objects.length - refused - rejected;
        if (missing > 0)
          problems.push(`${missing} malformed objects were not marked Accepted=False`);
        if (after - before > 64 * MIB)
          problems.push(`the controller's memory grew ${mib(after - before)} (limit 64 MiB)`);
        await kubectl([
          'delete',
          'httproutegroups,trafficsplits,ratelimits',
          '-n',
          attacker,
          '-l',
          'fuzz=true',
          '--wait=false',
        ]);
        return `${rejected}/${objects.length - refused} Accepted=False (${refused} refused by the API); memory ${mib(before)} → ${mib(after)}`;
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 600_000);

  test('3a. a subscribe request with generation 2^53-1 leaves the controller on a normal generation', async () => {
    // Last: where it succeeds, every sidecar holds a generation no later change can pass.
    const outcome = await runAttack(
      '3a. subscribe with generation 2^53-1',
      'ignored; generation stays normal',
      async (problems) => {
        const steps: NatsStep[] = [
          NATS_SUBSCRIPTION_SUBJECT,
          subscriptionSubjectOf(attacker, 'default'),
        ].map((subject) => ({
          op: 'request',
          subject,
          data: subscribeRequest(`${attacker}/${LONER}`, HUGE_GENERATION),
        }));
        await natsAsTenant(steps, 1_000);
        const report = await sidecarReport(rest, meshNamespace);
        const normal = Date.now() + 3_600_000;
        if ((report.generation ?? 0) > normal)
          problems.push(`the controller moved to generation ${report.generation}`);
        return `controller generation ${report.generation}`;
      },
    );
    expect(outcome.problems).toEqual([]);
  }, 300_000);
});

/** Accepted status per fuzzed object ("<kind>/<name>"), as the API server shows it now. */
async function fuzzConditions(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const kind of ['HTTPRouteGroup', 'TrafficSplit', 'RateLimit'] as const) {
    const list = await rest.request<{
      items: {
        metadata: { name: string };
        status?: { conditions?: { type: string; status: string }[] };
      }[];
    }>(
      'GET',
      `/${POLICY_PATHS[kind]}/namespaces/${attacker}/${PLURALS[kind]}?labelSelector=fuzz%3Dtrue`,
    );
    for (const item of list.items) {
      const accepted = item.status?.conditions?.find((condition) => condition.type === 'Accepted');
      if (accepted !== undefined) found.set(`${kind}/${item.metadata.name}`, accepted.status);
    }
  }
  return found;
}

/** The SVID and bundle in the volumes of pod, read through the node (the test's own view). */
function svidFileOf(pod: PodSummary | undefined): { pem: string; bundle: string } {
  if (pod === undefined) throw new Error('no victim pod to read the SVID of');
  const [pem] = podFiles(pod.metadata.uid, SVID_FILE_NAME);
  if (pem === undefined) throw new Error(`no SVID in the volumes of ${pod.metadata.name}`);
  return {
    pem: readFileSync(pem, 'utf8'),
    bundle: readFileSync(join(dirname(pem), SVID_BUNDLE_FILE_NAME), 'utf8'),
  };
}
