// Bounded waits for what deploy and upgrade need before the next step: CRDs Established,
// Deployments rolled out and Ready, APIServices Available. A wait that runs out names the object
// and why it is not ready (a container's waiting reason, its last exit, the pod's latest warning
// event); an image that cannot be pulled ends the wait at once, as NGINX Service Mesh does.
import { MeshctlError } from '../../errors';
import { formatDuration } from '../../manifests/duration';
import type { InstallWait } from '../../manifests/install/plan';
import type { Clock } from '../clock';
import type { KubeClient, KubeObject } from '../kube/client';
import type { Progress } from '../progress';

const POLL_MS = 500;
/** Container waiting reasons that mean the image will not arrive without a change. */
const PULL_FAILURES = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName']);

export interface WaitContext {
  readonly client: KubeClient;
  readonly clock: Clock;
  readonly progress: Progress;
  readonly signal: AbortSignal;
  /** Epoch milliseconds after which every wait fails. */
  readonly deadline: number;
  /** The whole budget, for messages ("after 5m0s"). */
  readonly budgetMs: number;
}

/** One look at a condition: done, or why not yet. */
export type Check = { readonly done: true } | { readonly done: false; readonly why: string };

/** The deadline ran out: the message names what was not ready and why. */
export class WaitTimeoutError extends MeshctlError {}

/** An image cannot be pulled: waiting longer will not help. */
export class ImagePullError extends MeshctlError {}

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

interface WithConditions extends KubeObject {
  readonly status?: { readonly conditions?: readonly Condition[] };
}

function condition(object: WithConditions | undefined, type: string): Condition | undefined {
  return object?.status?.conditions?.find((each) => each.type === type);
}

async function crdEstablished(client: KubeClient, name: string): Promise<Check> {
  const crd = await client.get<WithConditions>(
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
  );
  if (crd === undefined) return { done: false, why: 'it does not exist' };
  const established = condition(crd, 'Established');
  if (established?.status === 'True') return { done: true };
  const names = condition(crd, 'NamesAccepted');
  if (names?.status === 'False') return { done: false, why: names.message ?? 'names not accepted' };
  return { done: false, why: 'not Established yet' };
}

async function apiServiceAvailable(client: KubeClient, name: string): Promise<Check> {
  const service = await client.get<WithConditions>(
    `/apis/apiregistration.k8s.io/v1/apiservices/${name}`,
  );
  if (service === undefined) return { done: false, why: 'it does not exist' };
  const available = condition(service, 'Available');
  if (available?.status === 'True') return { done: true };
  return {
    done: false,
    why: available?.message ?? available?.reason ?? 'not Available yet',
  };
}

interface DeploymentObject extends KubeObject {
  readonly metadata?: KubeObject['metadata'] & { readonly generation?: number };
  readonly spec?: {
    readonly replicas?: number;
    readonly selector?: { matchLabels?: Record<string, string> };
  };
  readonly status?: {
    readonly observedGeneration?: number;
    readonly replicas?: number;
    readonly updatedReplicas?: number;
    readonly readyReplicas?: number;
    readonly availableReplicas?: number;
  };
}

interface ContainerStatus {
  readonly name: string;
  readonly ready?: boolean;
  readonly restartCount?: number;
  readonly state?: {
    readonly waiting?: { readonly reason?: string; readonly message?: string };
    readonly terminated?: { readonly reason?: string; readonly exitCode?: number };
  };
  readonly lastState?: {
    readonly terminated?: { readonly exitCode?: number; readonly reason?: string };
  };
}

interface PodObject extends KubeObject {
  readonly status?: {
    readonly phase?: string;
    readonly conditions?: readonly Condition[];
    readonly containerStatuses?: readonly ContainerStatus[];
    readonly initContainerStatuses?: readonly ContainerStatus[];
  };
}

interface EventObject extends KubeObject {
  readonly type?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastTimestamp?: string;
  readonly eventTime?: string;
}

function containerWhy(status: ContainerStatus): { why: string; pull: boolean } | undefined {
  const waiting = status.state?.waiting;
  const last = status.lastState?.terminated;
  const lastExit = last === undefined ? '' : `; last exit code ${last.exitCode ?? '?'}`;
  if (waiting !== undefined) {
    const reason = waiting.reason ?? 'Waiting';
    const message =
      waiting.message === undefined || waiting.message === '' ? '' : `: ${waiting.message}`;
    return {
      why: `container ${status.name} is waiting (${reason}${message}${lastExit})`,
      pull: PULL_FAILURES.has(reason),
    };
  }
  const terminated = status.state?.terminated;
  if (terminated !== undefined) {
    return {
      why: `container ${status.name} exited with code ${terminated.exitCode ?? '?'} (${terminated.reason ?? 'Error'})`,
      pull: false,
    };
  }
  if (status.ready !== true) {
    return {
      why: `container ${status.name} is running but not ready (readiness probe)${lastExit}`,
      pull: false,
    };
  }
  return undefined;
}

async function latestWarning(client: KubeClient, namespace: string, pod: string): Promise<string> {
  const selector = new URLSearchParams({
    fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${pod},type=Warning`,
  });
  const list = await client.get<{ items: readonly EventObject[] }>(
    `/api/v1/namespaces/${namespace}/events?${selector.toString()}`,
  );
  const events = [...(list?.items ?? [])].sort((a, b) =>
    (a.lastTimestamp ?? a.eventTime ?? '').localeCompare(b.lastTimestamp ?? b.eventTime ?? ''),
  );
  const last = events.at(-1);
  return last === undefined ? '' : `; event ${last.reason ?? ''}: ${last.message ?? ''}`;
}

/** Why one pod is not ready (without its events), or undefined when it is. */
function podWhy(pod: PodObject): { why: string; pull: boolean } | undefined {
  const statuses = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  const found = statuses.map(containerWhy).find((each) => each !== undefined);
  if (found !== undefined) return found;
  if (condition(pod, 'Ready')?.status === 'True') return undefined;
  const scheduled = condition(pod, 'PodScheduled');
  const why =
    scheduled?.status === 'False'
      ? `not scheduled (${scheduled.message ?? scheduled.reason ?? 'pending'})`
      : (pod.status?.phase ?? 'Pending');
  return { why, pull: false };
}

/** Why the pods of a Deployment are not ready, and whether an image cannot be pulled. */
async function podsWhy(
  client: KubeClient,
  namespace: string,
  selector: Readonly<Record<string, string>>,
): Promise<{ why: string; pull: boolean }> {
  const labelSelector = Object.entries(selector)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
  const pods =
    (await client.list<PodObject>(`/api/v1/namespaces/${namespace}/pods`, labelSelector)) ?? [];
  const live = pods.filter((pod) => pod.metadata?.deletionTimestamp === undefined);
  if (live.length === 0) return { why: 'no pod has been created', pull: false };
  const reasons: string[] = [];
  let pull = false;
  for (const pod of live) {
    const found = podWhy(pod);
    if (found === undefined) continue;
    const name = pod.metadata?.name ?? '?';
    pull ||= found.pull;
    reasons.push(`pod ${name}: ${found.why}${await latestWarning(client, namespace, name)}`);
  }
  return { why: reasons.length === 0 ? 'rollout in progress' : reasons.join('; '), pull };
}

/** Every replica runs the current template and is available, and no old one is left. */
function rolledOut(deployment: DeploymentObject): boolean {
  const wanted = deployment.spec?.replicas ?? 1;
  const status = deployment.status ?? {};
  return (
    (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0) &&
    (status.updatedReplicas ?? 0) >= wanted &&
    (status.replicas ?? 0) === wanted &&
    (status.availableReplicas ?? 0) >= wanted
  );
}

async function deploymentReady(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<Check & { pull?: boolean }> {
  const deployment = await client.get<DeploymentObject>(
    `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`,
  );
  if (deployment === undefined) return { done: false, why: 'it does not exist' };
  if (rolledOut(deployment)) return { done: true };
  const pods = await podsWhy(client, namespace, deployment.spec?.selector?.matchLabels ?? {});
  return {
    done: false,
    why: `${deployment.status?.readyReplicas ?? 0}/${deployment.spec?.replicas ?? 1} ready; ${pods.why}`,
    pull: pods.pull,
  };
}

function describeWait(wait: InstallWait): string {
  switch (wait.kind) {
    case 'crd-established':
      return `CustomResourceDefinition ${wait.name} to be Established`;
    case 'deployment-ready':
      return `Deployment ${wait.namespace}/${wait.name} to be ready`;
    case 'apiservice-available':
      return `APIService ${wait.name} to be Available`;
  }
}

async function check(client: KubeClient, wait: InstallWait): Promise<Check & { pull?: boolean }> {
  switch (wait.kind) {
    case 'crd-established':
      return crdEstablished(client, wait.name);
    case 'deployment-ready':
      return deploymentReady(client, wait.namespace, wait.name);
    case 'apiservice-available':
      return apiServiceAvailable(client, wait.name);
  }
}

/**
 * Polls check every POLL_MS, showing why it is not done yet, until it is done or the deadline
 * comes; resolves to the last result either way (the caller decides what a timeout means).
 */
export async function pollUntil(
  context: WaitContext,
  deadline: number,
  check: () => Promise<Check>,
): Promise<Check> {
  for (;;) {
    const result = await check();
    if (result.done) return result;
    context.progress.detail(result.why);
    if (context.clock.now().getTime() + POLL_MS > deadline) return result;
    await context.clock.sleep(POLL_MS, context.signal);
  }
}

/** Polls until the condition holds; fails at the deadline, or at once when an image cannot be pulled. */
export async function waitFor(wait: InstallWait, context: WaitContext): Promise<void> {
  const result = await pollUntil(context, context.deadline, async () => {
    const current = await check(context.client, wait);
    if (!current.done && current.pull === true) {
      throw new ImagePullError(`could not pull images: ${current.why}`, {
        hint: 'Check --registry-server, --image-tag and the registry credentials.',
      });
    }
    return current;
  });
  if (result.done) return;
  throw new WaitTimeoutError(
    `timed out after ${formatDuration(context.budgetMs)} waiting for ${describeWait(wait)}: ${result.why}`,
    wait.kind === 'deployment-ready'
      ? { hint: `Check its logs: kubectl logs -n ${wait.namespace} deployment/${wait.name}` }
      : {},
  );
}

/** Waits until the object at path is gone; fails at the deadline naming it. */
export async function waitGone(
  context: WaitContext,
  what: string,
  path: string,
  hint?: string,
): Promise<void> {
  const result = await pollUntil(context, context.deadline, async () =>
    (await context.client.get(path)) === undefined
      ? { done: true }
      : { done: false, why: `waiting for ${what} to be deleted` },
  );
  if (result.done) return;
  throw new WaitTimeoutError(
    `timed out after ${formatDuration(context.budgetMs)} waiting for ${what} to be deleted`,
    hint === undefined ? {} : { hint },
  );
}

/** How often a CRD whose instances the API server failed to list is touched, so it retries. */
export const CRD_NUDGE_MS = 3_000;
/** The annotation touched (its value counts the touches). */
export const CRD_NUDGE_ANNOTATION = 'nsm.nginx.com/removal-retry';

interface CrdView {
  readonly metadata?: { readonly deletionTimestamp?: string };
  readonly status?: {
    readonly conditions?: readonly {
      readonly type?: string;
      readonly status?: string;
      readonly reason?: string;
      readonly message?: string;
    }[];
  };
}

/**
 * Waits until a deleted CRD is gone; fails at the deadline naming it. The API server removes a
 * CRD once its cleanup has listed and deleted every instance, and the kind's storage restarts as
 * the deletion starts: a list in that moment fails ("storage is (re)initializing", condition
 * Terminating, reason InstanceDeletionFailed) and is retried with an exponential backoff that,
 * on a busy API server, grows to minutes. Any change to the CRD other than that condition makes
 * the API server retry at once, so while the CRD reports the failure an annotation is touched,
 * at most every CRD_NUDGE_MS.
 */
export async function waitCrdGone(context: WaitContext, name: string, path: string): Promise<void> {
  let nudgedAt = Number.NEGATIVE_INFINITY;
  let nudges = 0;
  const result = await pollUntil(context, context.deadline, async () => {
    const crd = await context.client.get<CrdView>(path);
    if (crd === undefined) return { done: true };
    const terminating = crd.status?.conditions?.find((each) => each.type === 'Terminating');
    const failed =
      crd.metadata?.deletionTimestamp !== undefined &&
      terminating?.status === 'True' &&
      terminating.reason === 'InstanceDeletionFailed';
    const now = context.clock.now().getTime();
    if (failed && now - nudgedAt >= CRD_NUDGE_MS) {
      nudgedAt = now;
      nudges += 1;
      // Best effort: gone in the meantime, or not ours to touch, the wait goes on as it was.
      await context.client
        .mergePatch(path, { metadata: { annotations: { [CRD_NUDGE_ANNOTATION]: String(nudges) } } })
        .catch(() => undefined);
    }
    return {
      done: false,
      why: `waiting for CustomResourceDefinition ${name} to be deleted${failed ? ` (the API server: ${terminating.message ?? terminating.reason})` : ''}`,
    };
  });
  if (result.done) return;
  throw new WaitTimeoutError(`timed out after ${formatDuration(context.budgetMs)} ${result.why}`);
}
