// Removes a mesh in the order that keeps applications serving: sidecars are told to pass
// traffic through first, and each must confirm it to the leading controller before anything is
// deleted; then the webhook configuration and the APIService go before the control plane behind
// them, then RBAC, the CRDs (and with them every policy) and the namespace. A sidecar that does
// not confirm stops the removal unless it is forced, and is named either way. Every deletion
// tolerates "already gone", so a remove that was interrupted, or a deploy that stopped half-way,
// is finished by running remove again.
import { MeshctlError, describeError } from '../../errors';
import {
  CLI_NAME,
  CONTROLLER_NAME,
  HELM_RELEASE_NAME_LABEL,
  HELM_RELEASE_OWNER_LABEL,
  HELM_RELEASE_OWNER_VALUE,
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
  MESH_CONFIG_API_VERSION,
  MESH_CONFIG_MAP_NAME,
  MESH_CONFIG_MAP_TRANSPARENT_KEY,
  MESH_CONFIG_RESOURCE_NAME,
  SIDECAR_CONTAINER_NAME,
} from '../../manifests/constants';
import { formatDuration } from '../../manifests/duration';
import { collectionPath, resourceTypeOfKind } from '../../manifests/install/resources';
import type { KubeClient, KubeObject } from '../kube/client';
import { apiError } from '../kube/client';
import { requestSidecarReport } from '../kube/controller-report';
import type { Found, Installation } from './inventory';
import { findBundles, findLabelled } from './inventory';
import type { WaitContext } from './waits';
import { pollUntil, waitCrdGone, waitGone } from './waits';

/** How long sidecars get to confirm they went transparent (NGINX Service Mesh: 15 s). */
export const TRANSPARENT_WAIT_MS = 15_000;
/** The longest one request for the controller's report may take, so that the wait keeps its bound. */
const REPORT_TIMEOUT_MS = 5_000;
/** How many pods a message names before "and N more". */
const NAMED_PODS_MAX = 10;

export interface ProxiedWorkload {
  readonly namespace: string;
  /** kind/name of the pod's owner (a Deployment rather than its ReplicaSet), or pod/name. */
  readonly resource: string;
}

function foundPath(found: Found): string {
  return `${collectionPath(found.type, found.namespace)}/${encodeURIComponent(found.name)}`;
}

async function ownerOf(client: KubeClient, pod: KubeObject): Promise<string> {
  const owner = pod.metadata?.ownerReferences?.find((each) => each.controller === true);
  if (owner === undefined) return `pod/${pod.metadata?.name ?? ''}`;
  if (owner.kind === 'ReplicaSet') {
    const replicaSet = await client.get<KubeObject>(
      `/apis/apps/v1/namespaces/${pod.metadata?.namespace ?? ''}/replicasets/${owner.name}`,
    );
    const top = replicaSet?.metadata?.ownerReferences?.find((each) => each.controller === true);
    if (top !== undefined) return `${top.kind.toLowerCase()}/${top.name}`;
  }
  return `${owner.kind.toLowerCase()}/${owner.name}`;
}

/** Workloads whose pods carry the sidecar, each once, sorted. */
export async function findProxiedWorkloads(client: KubeClient): Promise<ProxiedWorkload[]> {
  const pods = (await client.list<KubeObject>('/api/v1/pods')) ?? [];
  const seen = new Map<string, ProxiedWorkload>();
  for (const pod of pods) {
    if (pod.metadata?.annotations?.[INJECTION_STATUS_ANNOTATION] !== INJECTION_STATUS_INJECTED)
      continue;
    const namespace = pod.metadata.namespace ?? '';
    const resource = await ownerOf(client, pod);
    seen.set(`${namespace}/${resource}`, { namespace, resource });
  }
  return [...seen.values()].sort((a, b) =>
    `${a.namespace}/${a.resource}`.localeCompare(`${b.namespace}/${b.resource}`),
  );
}

/** The leading controller's GET /sidecars, as far as remove needs it. */
export interface SidecarReportView {
  readonly leader: boolean;
  /** The generation of the mesh configuration in force; 0 before the first publication. */
  readonly generation: number;
  /** Pods ("<namespace>/<name>") whose sidecar reported at least once. */
  readonly heard: readonly string[];
  /** Pods whose sidecar is not on the generation in force, failed to apply it, or never reported. */
  readonly behind: readonly string[];
}

function stringsOf(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const strings = value.filter((each): each is string => typeof each === 'string');
  return strings.length === value.length ? strings : undefined;
}

/** GET /sidecars's body, or what is wrong with it. */
export function parseSidecarReport(body: string): SidecarReportView | { readonly missing: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { missing: 'its sidecar report is not JSON' };
  }
  const report = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<
    string,
    unknown
  >;
  const behind = stringsOf(report.behind);
  const sidecars = Array.isArray(report.sidecars) ? (report.sidecars as unknown[]) : undefined;
  const heard = sidecars
    ?.map((each) => (each as { pod?: unknown } | null)?.pod)
    .filter((pod): pod is string => typeof pod === 'string');
  if (behind === undefined || heard === undefined || typeof report.leader !== 'boolean') {
    return { missing: 'its sidecar report lacks leader, sidecars or behind' };
  }
  const generation = typeof report.generation === 'number' ? report.generation : 0;
  return { leader: report.leader, generation, heard, behind };
}

/** What remove knows, at one look, about the sidecars' pass-through. */
export interface TransparencyFacts {
  /** "<namespace>/<name>" of every pod whose sidecar runs (injected, not finished). */
  readonly pods: readonly string[];
  /** The controller's report, or why there is none. */
  readonly report: SidecarReportView | { readonly missing: string };
  /**
   * MeshConfig status.transparent was true at some look during this removal: the controller
   * published the pass-through configuration and saw every sidecar apply it.
   */
  readonly statusSeen: boolean;
  /** The sidecars had already been told before this removal (by a remove that stopped). */
  readonly toldBefore: boolean;
  /** The leader's generation just before the sidecars were told, when it answered then. */
  readonly generationBefore: number | undefined;
  /**
   * The wait is over: a report that every sidecar applied the pass-through configuration is
   * taken without MeshConfig's status (which a controller writes only once all agree).
   */
  readonly settled: boolean;
}

export interface TransparencyVerdict {
  /** Every running sidecar confirmed that it passes traffic through. */
  readonly confirmed: boolean;
  /** Pods whose sidecar did not confirm, sorted. */
  readonly unconfirmed: readonly string[];
  /** Why they did not, or what is still awaited; empty once confirmed. */
  readonly why: string;
}

/**
 * Which sidecars confirmed pass-through. A sidecar confirms by acknowledging, to the leading
 * controller, a generation that carries the pass-through configuration; a generation does once
 * MeshConfig status said so, when the sidecars had been told before, or when it was published
 * after they were told. Without an answer from the leader nothing is confirmed.
 */
export function judgeTransparency(facts: TransparencyFacts): TransparencyVerdict {
  const pods = [...new Set(facts.pods)].sort();
  if (pods.length === 0) return { confirmed: true, unconfirmed: [], why: '' };
  const none = (why: string): TransparencyVerdict => ({ confirmed: false, unconfirmed: pods, why });
  const { report } = facts;
  if ('missing' in report) return none(`the controller did not answer: ${report.missing}`);
  if (!report.leader) return none('the controller that answered does not lead the mesh');
  if (report.generation <= 0) return none('the controller has not published a configuration');
  const published =
    facts.statusSeen ||
    facts.toldBefore ||
    (facts.generationBefore !== undefined && report.generation > facts.generationBefore);
  if (!published) return none('the controller has not published the pass-through configuration');
  const heard = new Set(report.heard);
  const behind = new Set(report.behind);
  const unconfirmed = pods.filter((pod) => behind.has(pod) || !heard.has(pod));
  if (unconfirmed.length > 0) {
    return {
      confirmed: false,
      unconfirmed,
      why: 'they have not acknowledged the pass-through configuration',
    };
  }
  if (facts.statusSeen || facts.settled) return { confirmed: true, unconfirmed: [], why: '' };
  return {
    confirmed: false,
    unconfirmed: [],
    why: 'waiting for the controller to confirm in MeshConfig status',
  };
}

/** Names sorted, at most max of them, then "and N more". */
export function describePods(pods: readonly string[], max = NAMED_PODS_MAX): string {
  const sorted = [...pods].sort();
  const shown = sorted.slice(0, Math.max(1, max)).join(', ');
  const more = sorted.length - Math.max(1, max);
  return more > 0 ? `${shown} and ${more} more` : shown;
}

/** What remove confirmed about the sidecars' pass-through. */
export interface TransparencyOutcome {
  /** "<namespace>/<name>" of every pod whose sidecar runs, sorted. */
  readonly pods: readonly string[];
  /** Those whose sidecar did not confirm pass-through, sorted. */
  readonly unconfirmed: readonly string[];
  /** Why they did not; empty when every sidecar confirmed. */
  readonly why: string;
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** One line: how many sidecars did not confirm, why, and which pods. */
export function describeUnconfirmed(outcome: TransparencyOutcome): string {
  return `${outcome.unconfirmed.length} of ${plural(outcome.pods.length, 'sidecar', 'sidecars')} did not confirm pass-through within ${formatDuration(TRANSPARENT_WAIT_MS)} (${outcome.why}): ${describePods(outcome.unconfirmed)}`;
}

/** Sidecars did not confirm pass-through and the removal was not forced: nothing was deleted. */
export class SidecarsUnconfirmedError extends MeshctlError {
  constructor(
    readonly outcome: TransparencyOutcome,
    namespace: string,
  ) {
    super(`${describeUnconfirmed(outcome)}; NGINX Service Mesh was not removed`, {
      hint: `The control plane was kept and the other sidecars stay told to pass traffic through. Check the named pods' sidecars ("kubectl logs -n <namespace> <pod> -c ${SIDECAR_CONTAINER_NAME}") and run "${CLI_NAME} remove -n ${namespace}" again, or add --force to remove the mesh anyway.`,
    });
  }
}

/** "<namespace>/<name>" of every pod whose sidecar runs: injected and not finished, sorted. */
async function findSidecarPods(client: KubeClient): Promise<string[]> {
  const pods =
    (await client.list<KubeObject & { status?: { phase?: string } }>('/api/v1/pods')) ?? [];
  return pods
    .filter(
      (pod) =>
        pod.metadata?.annotations?.[INJECTION_STATUS_ANNOTATION] === INJECTION_STATUS_INJECTED &&
        pod.status?.phase !== 'Succeeded' &&
        pod.status?.phase !== 'Failed',
    )
    .map((pod) => `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`)
    .sort();
}

/** The controller's GET /sidecars (requestSidecarReport), or why not. */
async function fetchSidecarReport(
  client: KubeClient,
  namespace: string,
): Promise<SidecarReportView | { readonly missing: string }> {
  try {
    const response = await requestSidecarReport(client, namespace, REPORT_TIMEOUT_MS);
    if (response.status !== 200) return { missing: apiError(response).message };
    return parseSidecarReport(response.body);
  } catch (error) {
    return { missing: describeError(error) };
  }
}

async function meshConfigTransparent(client: KubeClient, namespace: string): Promise<boolean> {
  const path = `/apis/${MESH_CONFIG_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/meshconfigs/${MESH_CONFIG_RESOURCE_NAME}`;
  const current = await client.get<{ status?: { transparent?: boolean } }>(path);
  return current?.status?.transparent === true;
}

/**
 * Tells every sidecar to pass traffic through (the mesh ConfigMap's transparent key), then, when
 * waitForSidecars, waits up to TRANSPARENT_WAIT_MS (within the removal's deadline) until the
 * leading controller reports that each running sidecar applied it. Never throws for a sidecar
 * that does not confirm: the outcome names it.
 */
export async function makeSidecarsTransparent(
  installation: Installation,
  namespace: string,
  waitForSidecars: boolean,
  context: WaitContext,
): Promise<TransparencyOutcome> {
  const { client } = context;
  const pods = waitForSidecars ? await findSidecarPods(client) : [];
  /** The outcome when the sidecars cannot be asked: none of them confirmed. */
  const unasked = (why: string): TransparencyOutcome =>
    pods.length === 0 ? { pods, unconfirmed: [], why: '' } : { pods, unconfirmed: pods, why };
  if (!installation.namespaceExists) return unasked(`namespace ${namespace} does not exist`);
  if (installation.namespaceTerminating) return unasked(`namespace ${namespace} is being deleted`);
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${MESH_CONFIG_MAP_NAME}`;
  const map = await client.get<{ data?: Record<string, string> }>(path);
  if (map === undefined) {
    return unasked(`ConfigMap ${namespace}/${MESH_CONFIG_MAP_NAME} does not exist`);
  }
  const toldBefore = map.data?.[MESH_CONFIG_MAP_TRANSPARENT_KEY] === 'true';
  const asked = pods.length > 0 && installation.controller;
  const before = asked ? await fetchSidecarReport(client, namespace) : undefined;
  const generationBefore =
    before !== undefined && !('missing' in before) && before.leader ? before.generation : undefined;
  await client.mergePatch(path, { data: { [MESH_CONFIG_MAP_TRANSPARENT_KEY]: 'true' } });
  if (!asked) return unasked(`Deployment ${namespace}/${CONTROLLER_NAME} does not exist`);

  let statusSeen = false;
  let last: TransparencyFacts | undefined;
  // MeshConfig's status before the report: a report read after it covers what the status said.
  const look = async (): Promise<TransparencyFacts> => {
    statusSeen ||= await meshConfigTransparent(client, namespace);
    last = {
      pods: await findSidecarPods(client),
      report: await fetchSidecarReport(client, namespace),
      statusSeen,
      toldBefore,
      generationBefore,
      settled: false,
    };
    return last;
  };
  const deadline = Math.min(context.deadline, context.clock.now().getTime() + TRANSPARENT_WAIT_MS);
  await pollUntil(context, deadline, async () => {
    const facts = await look();
    const verdict = judgeTransparency(facts);
    if (verdict.confirmed) return { done: true };
    if (verdict.unconfirmed.length === 0) return { done: false, why: verdict.why };
    return {
      done: false,
      why: `${verdict.unconfirmed.length} of ${plural(facts.pods.length, 'sidecar', 'sidecars')} not confirmed yet (${verdict.why}): ${describePods(verdict.unconfirmed, 3)}`,
    };
  });
  const final = last ?? (await look());
  const verdict = judgeTransparency({ ...final, settled: true });
  return { pods: [...final.pods].sort(), unconfirmed: verdict.unconfirmed, why: verdict.why };
}

async function deleteAll(context: WaitContext, objects: readonly Found[]): Promise<void> {
  for (const found of objects) {
    context.progress.detail(`deleting ${found.type.kind} ${found.name}`);
    await context.client.delete(foundPath(found));
  }
}

/**
 * Kinds of the mesh's own objects in its namespace besides the control plane's Deployments and
 * Services: deleted one by one, and the control plane's pods waited for, when the namespace
 * stays (one remove did not create, such as the one a Helm release was installed into).
 */
const NAMESPACED_KINDS: readonly string[] = [
  'ConfigMap',
  'Secret',
  'ServiceAccount',
  'RoleBinding',
  'Role',
  'NetworkPolicy',
  'Lease',
];

/**
 * The Secrets in which Helm records a release: once its objects are gone, the release is gone
 * too, so that the chart can be installed again under the same name.
 */
async function findHelmRecords(
  client: KubeClient,
  namespace: string,
  release: string,
): Promise<Found[]> {
  const type = resourceTypeOfKind('Secret');
  const selector = `${HELM_RELEASE_OWNER_LABEL}=${HELM_RELEASE_OWNER_VALUE},${HELM_RELEASE_NAME_LABEL}=${release}`;
  const items = (await client.list<KubeObject>(collectionPath(type, namespace), selector)) ?? [];
  return items.map((item) => ({ type, name: item.metadata?.name ?? '', namespace }));
}

async function removeFromKeptNamespace(
  context: WaitContext,
  installation: Installation,
  namespace: string,
): Promise<void> {
  for (const kind of NAMESPACED_KINDS) {
    await deleteAll(context, await findLabelled(context.client, kind, namespace));
  }
  // No namespace deletion waits for them: the control plane's pods are waited for here.
  for (const pod of await findLabelled(context.client, 'Pod', namespace)) {
    await waitGone(context, `pod ${namespace}/${pod.name}`, foundPath(pod));
  }
  const release = installation.helmRelease;
  if (release === undefined || release === '') return;
  await deleteAll(context, await findHelmRecords(context.client, namespace, release));
}

export interface RemoveStep {
  readonly title: string;
  run(): Promise<void>;
}

export interface RemovalOptions {
  /** Go on when sidecars did not confirm pass-through: warn, naming them, instead of failing. */
  readonly force?: boolean;
  /** Gets what the sidecars confirmed, before anything is deleted. */
  readonly onTransparency?: (outcome: TransparencyOutcome) => void;
}

/**
 * The removal as titled steps, for progress; run them in order. The first tells the sidecars to
 * pass traffic through and, when proxied names workloads, waits for each running sidecar to
 * confirm it: one that does not fails the step with SidecarsUnconfirmedError (nothing deleted
 * yet), or, with force, gets a warning that names it.
 */
export function removalSteps(
  installation: Installation,
  namespace: string,
  proxied: readonly ProxiedWorkload[],
  context: WaitContext,
  options: RemovalOptions = {},
): RemoveStep[] {
  const front = installation.clusterObjects.filter(
    (found) =>
      found.type.kind === 'MutatingWebhookConfiguration' || found.type.kind === 'APIService',
  );
  const rbac = installation.clusterObjects.filter((found) => !front.includes(found));
  const live = installation.namespaceExists && !installation.namespaceTerminating;
  return [
    {
      title: 'Making sidecar proxies transparent',
      run: async () => {
        const outcome = await makeSidecarsTransparent(
          installation,
          namespace,
          proxied.length > 0,
          context,
        );
        options.onTransparency?.(outcome);
        if (outcome.unconfirmed.length === 0) return;
        if (options.force !== true) throw new SidecarsUnconfirmedError(outcome, namespace);
        context.progress.note(
          `Warning: ${describeUnconfirmed(outcome)}. Removing anyway (--force): those sidecars keep the configuration they last applied until their pods are re-created.`,
        );
      },
    },
    {
      title: 'Removing the injection webhook and the metrics API',
      run: () => deleteAll(context, front),
    },
    {
      title: 'Stopping the control plane',
      run: async () => {
        if (!live) return;
        await deleteAll(context, await findLabelled(context.client, 'Deployment', namespace));
        await deleteAll(context, await findLabelled(context.client, 'Service', namespace));
      },
    },
    {
      // After the controller, which would make them again. The Gateways are the users'.
      title: 'Removing the gateways',
      run: () => deleteAll(context, installation.gateways),
    },
    { title: 'Removing RBAC', run: () => deleteAll(context, rbac) },
    {
      // After RBAC: a registrar still stopping can no longer publish them again.
      title: 'Removing trust bundles',
      run: async () => deleteAll(context, await findBundles(context.client, namespace)),
    },
    {
      title: 'Removing CRDs',
      run: async () => {
        const type = resourceTypeOfKind('CustomResourceDefinition');
        // The Gateway API CRDs only where deploy installed them: ones that were there stay.
        const crds = [...installation.crds, ...installation.gatewayApiCrds].map((name) => ({
          type,
          name,
        }));
        await deleteAll(context, crds);
        for (const crd of crds) await waitCrdGone(context, crd.name, foundPath(crd));
      },
    },
    ...(live && !installation.namespaceOwned
      ? [
          {
            title: `Removing NGINX Service Mesh objects from namespace ${namespace}`,
            run: () => removeFromKeptNamespace(context, installation, namespace),
          },
        ]
      : []),
    // Only a namespace deploy created: a Helm release's namespace is the user's.
    ...(installation.namespaceOwned
      ? [
          {
            title: `Deleting namespace ${namespace}`,
            run: async () => {
              const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
              await context.client.delete(path);
              await waitGone(
                context,
                `namespace ${namespace}`,
                path,
                `Check what holds it with "kubectl get all -n ${namespace}" and run remove again.`,
              );
            },
          },
        ]
      : []),
  ];
}
