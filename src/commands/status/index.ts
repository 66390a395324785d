// `status`: is the mesh up? NGINX Service Mesh looked at its controller only; here every
// control-plane component is listed, ready against desired, with its version, and any component
// that is not ready makes the command fail. For such a component it says why: each pod that is
// not ready is asked its readiness probe through the API server (the roles answer with what they
// wait for), or the kubelet's reason is given when a container does not run. Pods that restarted
// lately, the control plane's and the sidecars', are named even when ready again.
import { MeshctlError, describeError } from '../../errors';
import {
  CONTROLLER_NAME,
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
  PART_OF_LABEL,
  PART_OF_VALUE,
  READY_SERVING_PATH,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_METRICS_PORT,
  SIDECAR_READY_PATH,
} from '../../manifests/constants';
import { VERSION_LABEL } from '../../manifests/install/objects';
import type { ComponentStatus, PodProblem } from '../../render/status';
import {
  isHealthy,
  renderNotReady,
  renderRestarted,
  renderStatusTable,
  statusDocument,
} from '../../render/status';
import type { Io } from '../../runtime/io';
import type { KubeAccess, KubeTarget } from '../../runtime/kube/access';
import { getJson } from '../../runtime/kube/get-json';
import type { GlobalOptionsReader } from '../global-flags';
import { outputFlag, printDocument } from '../output';
import type { CommandSpec } from '../spec';

export interface StatusDeps {
  readonly io: Io;
  readonly kube: KubeAccess;
}

interface DeploymentStatus {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> };
    template?: { spec?: { containers?: { readinessProbe?: ProbeSpec }[] } };
  };
  status?: {
    readyReplicas?: number;
    conditions?: { type?: string; status?: string; message?: string }[];
  };
}

interface ProbeSpec {
  httpGet?: { path?: string; port?: number | string; scheme?: string };
}

interface PodStatus {
  metadata?: {
    name?: string;
    namespace?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    ownerReferences?: { kind?: string; name?: string }[];
  };
  spec?: {
    containers?: {
      name?: string;
      readinessProbe?: ProbeSpec;
      ports?: { name?: string; containerPort?: number }[];
    }[];
  };
  status?: {
    phase?: string;
    conditions?: { type?: string; status?: string; reason?: string; message?: string }[];
    initContainerStatuses?: ContainerStatusView[];
    containerStatuses?: ContainerStatusView[];
  };
}

interface ContainerStatusView {
  name?: string;
  ready?: boolean;
  restartCount?: number;
  state?: {
    waiting?: { reason?: string; message?: string };
    terminated?: { reason?: string; exitCode?: number };
  };
  lastState?: {
    terminated?: { reason?: string; exitCode?: number; signal?: number; finishedAt?: string };
  };
}

/**
 * How long after a sidecar's container ended status still names the restart. A crash the kubelet
 * mends within a second leaves the pod ready again before most readers look; the restart is
 * still the news an operator wants.
 */
export const RESTART_RECENT_MS = 10 * 60_000;

/** "restarted 12s ago (exit 137, Error)", when the container last ended within RESTART_RECENT_MS. */
function recentRestart(
  container: ContainerStatusView | undefined,
  now: number,
): string | undefined {
  const ended = container?.lastState?.terminated;
  const finished = Date.parse(ended?.finishedAt ?? '');
  if (ended === undefined || !Number.isFinite(finished) || now - finished > RESTART_RECENT_MS)
    return undefined;
  const ago = Math.max(0, Math.round((now - finished) / 1000));
  const how = [
    ...(ended.exitCode === undefined ? [] : [`exit ${ended.exitCode}`]),
    ...(ended.reason === undefined ? [] : [ended.reason]),
  ].join(', ');
  const count = container?.restartCount ?? 0;
  return `restarted ${ago}s ago${how === '' ? '' : ` (${how})`}; ${count} restart${count === 1 ? '' : 's'} in all`;
}

/**
 * A pod created this long after its ReplicaSet took the place of one that was lost (deleted,
 * evicted, its node gone) or was added by a scale-up: either way the component restarted there.
 * Pods of a rollout are created within moments of their ReplicaSet.
 */
export const REPLACED_AFTER_MS = 10_000;

/** "restarted 3s ago as a new pod (…)", when the pod replaced another within RESTART_RECENT_MS. */
function recentReplacement(
  pod: PodStatus,
  replicaSetCreated: ReadonlyMap<string, number>,
  now: number,
): string | undefined {
  const created = Date.parse(pod.metadata?.creationTimestamp ?? '');
  const owner = pod.metadata?.ownerReferences?.find((each) => each.kind === 'ReplicaSet')?.name;
  const since = owner === undefined ? undefined : replicaSetCreated.get(owner);
  if (
    since === undefined ||
    !Number.isFinite(created) ||
    now - created > RESTART_RECENT_MS ||
    created - since < REPLACED_AFTER_MS
  )
    return undefined;
  const ago = Math.max(0, Math.round((now - created) / 1000));
  return `restarted ${ago}s ago as a new pod (its ReplicaSet ${owner ?? ''} is ${Math.round((now - since) / 1000)}s old)`;
}

/** The mesh namespace's pods, listed once for every component; or why they could not be. */
type ListedPods = { readonly items: readonly PodStatus[] } | { readonly error: string };

async function listPods(
  kube: KubeAccess,
  target: KubeTarget,
  namespace: string,
): Promise<ListedPods> {
  try {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
    return { items: (await getJson<{ items: PodStatus[] }>(kube, target, path)).items };
  } catch (error) {
    return { error: describeError(error) };
  }
}

/** The pods of those listed that the Deployment's selector (its matchLabels) selects. */
function podsOf(deployment: DeploymentStatus, pods: readonly PodStatus[]): PodStatus[] {
  const labels = Object.entries(deployment.spec?.selector?.matchLabels ?? {});
  return pods.filter((pod) =>
    labels.every(([key, value]) => pod.metadata?.labels?.[key] === value),
  );
}

/**
 * Pods of each control-plane component that restarted lately: a container that ended, or a pod
 * that replaced a lost one. A component the kubelet or its ReplicaSet mends within a second is
 * ready again before most readers look; that it went down is still the news. Best effort: a list
 * that fails leaves the lines out.
 */
async function controlPlaneRestarts(
  kube: KubeAccess,
  target: KubeTarget,
  namespace: string,
  deployments: readonly DeploymentStatus[],
  listed: Promise<ListedPods>,
): Promise<Map<string, PodProblem[]>> {
  const [pods, replicaSets] = await Promise.all([
    listed,
    getJson<{ items: { metadata?: { name?: string; creationTimestamp?: string } }[] }>(
      kube,
      target,
      `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/replicasets`,
    ).catch(() => ({ items: [] })),
  ]);
  if ('error' in pods) return new Map();
  const created = new Map(
    replicaSets.items.map((each) => [
      each.metadata?.name ?? '',
      Date.parse(each.metadata?.creationTimestamp ?? ''),
    ]),
  );
  const now = Date.now();
  const restarts = new Map<string, PodProblem[]>();
  for (const deployment of deployments) {
    if (Object.keys(deployment.spec?.selector?.matchLabels ?? {}).length === 0) continue;
    const found = podsOf(deployment, pods.items)
      .filter((pod) => pod.metadata?.deletionTimestamp === undefined)
      .flatMap((pod) => {
        const containers = [
          ...(pod.status?.initContainerStatuses ?? []),
          ...(pod.status?.containerStatuses ?? []),
        ];
        const reason =
          containers.map((each) => recentRestart(each, now)).find((each) => each !== undefined) ??
          recentReplacement(pod, created, now);
        return reason === undefined ? [] : [{ pod: pod.metadata?.name ?? '', reason }];
      });
    if (found.length > 0)
      restarts.set(
        deployment.metadata?.name ?? '',
        found.sort((a, b) => a.pod.localeCompare(b.pod)),
      );
  }
  return restarts;
}

/** Longest reason quoted from a probe's answer. */
const REASON_LIMIT = 300;

function oneLine(text: string): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > REASON_LIMIT ? `${line.slice(0, REASON_LIMIT)}…` : line;
}

type ContainerStatus = ContainerStatusView;
type ContainerSpec = NonNullable<NonNullable<PodStatus['spec']>['containers']>[number];

/** The kubelet's reason when a container does not run (waiting or terminated), if any. */
function stateProblem(statuses: readonly ContainerStatus[]): string | undefined {
  for (const container of statuses) {
    const name = container.name ?? '';
    const waiting = container.state?.waiting;
    if (waiting?.reason !== undefined) {
      const message = waiting.message === undefined ? '' : `: ${oneLine(waiting.message)}`;
      return `container ${name}: ${waiting.reason}${message}`;
    }
    const terminated = container.state?.terminated;
    if (terminated !== undefined) {
      const code = terminated.exitCode ?? '?';
      return `container ${name}: ${terminated.reason ?? 'terminated'} (exit code ${code})`;
    }
  }
  return undefined;
}

/** Why a pod without container statuses does not run yet. */
function pendingProblem(pod: PodStatus): string {
  const unscheduled = pod.status?.conditions?.find(
    (each) => each.type === 'PodScheduled' && each.status === 'False',
  );
  if (unscheduled === undefined) return `pod ${pod.status?.phase ?? 'Pending'}`;
  return `not scheduled: ${oneLine(unscheduled.message ?? unscheduled.reason ?? '')}`;
}

/** The pod proxy takes a port number; a probe may name the container's port instead. */
function probePort(port: number | string, container: ContainerSpec): number | string | undefined {
  if (typeof port === 'number' || /^\d+$/.test(port)) return port;
  return container.ports?.find((each) => each.name === port)?.containerPort;
}

/** What a running container's readiness probe answers, asked through the API server. */
/**
 * The message of the API server's own Status object, which it answers through the pod proxy
 * when it cannot reach the pod ("error trying to reach service: dial tcp …: connection refused").
 */
function apiStatusMessage(body: string): string | undefined {
  if (!body.startsWith('{')) return undefined;
  try {
    const status = JSON.parse(body) as { kind?: unknown; message?: unknown };
    return status.kind === 'Status' && typeof status.message === 'string'
      ? oneLine(status.message)
      : undefined;
  } catch {
    return undefined;
  }
}

async function probeProblem(
  kube: KubeAccess,
  target: KubeTarget,
  pod: { readonly namespace: string; readonly name: string; readonly containers: number },
  container: ContainerSpec,
): Promise<string> {
  const label = pod.containers > 1 ? `container ${container.name ?? ''}: ` : '';
  const probe = container.readinessProbe?.httpGet;
  if (probe?.port === undefined) return `${label}not ready`;
  const scheme = probe.scheme === 'HTTPS' ? 'https:' : '';
  const port = probePort(probe.port, container);
  if (port === undefined) return `${label}readiness probe names no port of the container`;
  // A role probed for serving only tells the whole truth on /readyz.
  const probePath = probe.path === READY_SERVING_PATH ? '/readyz' : (probe.path ?? '/');
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${scheme}${encodeURIComponent(pod.name)}:${port}/proxy${probePath}`;
  try {
    const answer = await kube.getRaw(target, path);
    if (answer.status >= 200 && answer.status < 400) return `${label}ready now`;
    const apiMessage = apiStatusMessage(answer.body);
    if (apiMessage !== undefined) return `${label}readiness probe unreachable: ${apiMessage}`;
    const body = oneLine(answer.body).replace(/^not ready: /, '');
    return `${label}${body === '' ? `readiness probe answered ${answer.status}` : body}`;
  } catch (error) {
    return `${label}readiness probe unreachable: ${describeError(error)}`;
  }
}

/** Why one pod is not ready: the kubelet's reason, or what its readiness probe answers. */
async function podProblem(
  kube: KubeAccess,
  target: KubeTarget,
  namespace: string,
  pod: PodStatus,
): Promise<string> {
  if (pod.metadata?.deletionTimestamp !== undefined) return 'terminating';
  const statuses = pod.status?.containerStatuses ?? [];
  if (statuses.length === 0) return pendingProblem(pod);
  const state = stateProblem(statuses);
  if (state !== undefined) return state;
  const containers = pod.spec?.containers ?? [];
  const where = { namespace, name: pod.metadata?.name ?? '', containers: containers.length };
  const reasons = await Promise.all(
    containers
      .filter((container) => statuses.find((each) => each.name === container.name)?.ready !== true)
      .map((container) => probeProblem(kube, target, where, container)),
  );
  return reasons.length === 0 ? 'not ready' : reasons.join('; ');
}

/** Whether the component's readiness probe asks only whether it serves (see READY_SERVING_PATH). */
function probedForServing(deployment: DeploymentStatus): boolean {
  return (deployment.spec?.template?.spec?.containers ?? []).some(
    (container) => container.readinessProbe?.httpGet?.path === READY_SERVING_PATH,
  );
}

/**
 * Every pod of a component that is not ready, with why; best effort, never fails status. Of a
 * component probed for serving only, ready pods are asked too: they may serve and still not do
 * their whole job (a controller that cannot publish).
 */
async function problemsOf(
  kube: KubeAccess,
  target: KubeTarget,
  namespace: string,
  deployment: DeploymentStatus,
  listed: ListedPods,
): Promise<PodProblem[]> {
  if ('error' in listed) return [{ pod: '-', reason: `cannot list its pods: ${listed.error}` }];
  const pods = podsOf(deployment, listed.items);
  const isReady = (pod: PodStatus): boolean =>
    pod.status?.conditions?.find((each) => each.type === 'Ready')?.status === 'True' &&
    pod.metadata?.deletionTimestamp === undefined;
  const serving = probedForServing(deployment);
  if (pods.length === 0) {
    const failure = deployment.status?.conditions?.find(
      (each) => each.type === 'ReplicaFailure' && each.status === 'True',
    );
    return [{ pod: '-', reason: failure?.message ?? 'no pods' }];
  }
  const problems = await Promise.all(
    pods.map(async (pod) => {
      const name = pod.metadata?.name ?? '';
      if (!isReady(pod))
        return { pod: name, reason: await podProblem(kube, target, namespace, pod) };
      if (!serving) return undefined;
      const containers = pod.spec?.containers ?? [];
      const where = { namespace, name, containers: containers.length };
      const reasons = await Promise.all(
        containers
          .filter((container) => container.readinessProbe?.httpGet?.path === READY_SERVING_PATH)
          .map((container) => probeProblem(kube, target, where, container)),
      );
      const problems = reasons.filter((reason) => !reason.endsWith('ready now'));
      return problems.length === 0 ? undefined : { pod: name, reason: problems.join('; ') };
    }),
  );
  return problems
    .filter((each): each is PodProblem => each !== undefined)
    .sort((a, b) => a.pod.localeCompare(b.pod));
}

/** Why a pod's sidecar is not ready, or undefined when it is. */
/**
 * A new pod whose sidecar has not been ready yet and never restarted is starting, not failing:
 * creating pods is the mesh at work. One still not ready after STARTING_MS counts.
 */
const STARTING_MS = 120_000;

function starting(pod: PodStatus, sidecar: ContainerStatusView | undefined, now: number): boolean {
  const created = Date.parse(pod.metadata?.creationTimestamp ?? '');
  return (
    (sidecar?.restartCount ?? 0) === 0 && Number.isFinite(created) && now - created < STARTING_MS
  );
}

/** The status of a pod's sidecar container (a native sidecar is among the init containers). */
function sidecarOf(pod: PodStatus): ContainerStatusView | undefined {
  return [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ].find((each) => each.name === SIDECAR_CONTAINER_NAME);
}

async function sidecarProblem(
  kube: KubeAccess,
  target: KubeTarget,
  pod: PodStatus,
  now: number,
): Promise<string | undefined> {
  const sidecar = sidecarOf(pod);
  if (sidecar?.ready === true || starting(pod, sidecar, now)) return undefined;
  const state = sidecar === undefined ? pendingProblem(pod) : stateProblem([sidecar]);
  if (state !== undefined) return state;
  const where = {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    containers: 1,
  };
  const reason = await probeProblem(kube, target, where, {
    name: SIDECAR_CONTAINER_NAME,
    readinessProbe: { httpGet: { path: SIDECAR_READY_PATH, port: SIDECAR_METRICS_PORT } },
  });
  return reason.endsWith('ready now') ? undefined : reason;
}

function isMeshed(pod: PodStatus): boolean {
  return (
    pod.metadata?.annotations?.[INJECTION_STATUS_ANNOTATION] === INJECTION_STATUS_INJECTED &&
    pod.metadata.deletionTimestamp === undefined &&
    pod.status?.phase !== 'Succeeded' &&
    pod.status?.phase !== 'Failed'
  );
}

/** The row of the mesh's sidecars: every running pod that carries one, and why any is not ready. */
export const SIDECARS_ROW = 'sidecars';

/**
 * Every pod that carries the sidecar, ready or not by its sidecar container, with why not: the
 * kubelet's reason, or what the agent's /readyz says. undefined when the pods cannot be listed
 * (status then says nothing of sidecars rather than guess).
 */
async function sidecarsOf(
  kube: KubeAccess,
  target: KubeTarget,
): Promise<ComponentStatus | undefined> {
  let pods: PodStatus[];
  try {
    pods = (await getJson<{ items: PodStatus[] }>(kube, target, '/api/v1/pods')).items;
  } catch {
    return undefined;
  }
  const meshed = pods.filter(isMeshed);
  const now = Date.now();
  if (meshed.length === 0) return undefined;
  const answers = await Promise.all(
    meshed.map(async (pod) => {
      const reason = await sidecarProblem(kube, target, pod, now);
      const name = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
      return reason === undefined ? undefined : { pod: name, reason };
    }),
  );
  const problems = answers.filter((each): each is PodProblem => each !== undefined);
  const restarted = meshed.flatMap((pod) => {
    const reason = recentRestart(sidecarOf(pod), now);
    const name = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
    return reason === undefined ? [] : [{ pod: name, reason }];
  });
  return {
    name: SIDECARS_ROW,
    ready: meshed.length - problems.length,
    desired: meshed.length,
    version: '',
    notReady: problems.sort((a, b) => a.pod.localeCompare(b.pod)),
    ...(restarted.length === 0
      ? {}
      : { restarted: restarted.sort((a, b) => a.pod.localeCompare(b.pod)) }),
  };
}

function firstReason(component: ComponentStatus): string {
  const first = component.notReady?.[0];
  return first === undefined ? '' : `: ${first.reason}`;
}

function componentOf(deployment: DeploymentStatus): ComponentStatus {
  return {
    name: deployment.metadata?.name ?? '',
    ready: deployment.status?.readyReplicas ?? 0,
    desired: deployment.spec?.replicas ?? 1,
    version: deployment.metadata?.labels?.[VERSION_LABEL] ?? '',
  };
}

export function statusCommand(globals: GlobalOptionsReader, deps: StatusDeps): CommandSpec {
  return {
    name: 'status',
    short: 'Check connection to NGINX Service Mesh',
    long: 'Check connection to NGINX Service Mesh: every control-plane component, ready against desired replicas, with its version; why any pod is not ready; and which pods restarted lately (a container that ended, or a control-plane pod that replaced a lost one), ready again or not.',
    flags: [outputFlag(['table', 'json', 'yaml'])],
    action: async (context) => {
      const { kubeconfig, namespace, timeoutMs } = globals(context);
      const output = context.string('output');
      const target = { kubeconfig, timeoutMs };
      const ns = encodeURIComponent(namespace);
      if (output === 'table') deps.io.out.write('Checking NGINX Service Mesh setup....\n');
      // The sidecars side by side with the control plane: one moment's picture of both.
      const sidecarsPending = sidecarsOf(deps.kube, target);
      // Awaited below; until then a failure must not count as unhandled.
      sidecarsPending.catch(() => undefined);
      let components: ComponentStatus[];
      let deployments: DeploymentStatus[];
      try {
        const controller = await getJson<DeploymentStatus>(
          deps.kube,
          target,
          `/apis/apps/v1/namespaces/${ns}/deployments/${CONTROLLER_NAME}`,
        );
        const selector = encodeURIComponent(`${PART_OF_LABEL}=${PART_OF_VALUE}`);
        const list = await getJson<{ items: DeploymentStatus[] }>(
          deps.kube,
          target,
          `/apis/apps/v1/namespaces/${ns}/deployments?labelSelector=${selector}`,
        );
        const others = list.items.filter((each) => each.metadata?.name !== CONTROLLER_NAME);
        deployments = [controller, ...others];
        components = deployments.map(componentOf);
      } catch (error) {
        throw new MeshctlError(describeError(error), {
          cause: error,
          hint: `Is NGINX Service Mesh deployed in namespace "${namespace}"? Use -n to name another namespace.`,
        });
      }
      // The namespace's pods, once: for why components are not ready and for their restarts.
      const podsPending = listPods(deps.kube, target, namespace);
      const restartsPending = controlPlaneRestarts(
        deps.kube,
        target,
        namespace,
        deployments,
        podsPending,
      );
      // Why, for the components that are not ready; side by side, each bounded by --timeout.
      components = (
        await Promise.all(
          components.map(async (component, index) =>
            deployments[index] === undefined ||
            (isHealthy(component) && !probedForServing(deployments[index]))
              ? component
              : {
                  ...component,
                  notReady: await problemsOf(
                    deps.kube,
                    target,
                    namespace,
                    deployments[index],
                    await podsPending,
                  ),
                },
          ),
        )
      ).sort((a, b) => a.name.localeCompare(b.name));
      const restarts = await restartsPending;
      components = components.map((component) => {
        const restarted = restarts.get(component.name);
        return restarted === undefined ? component : { ...component, restarted };
      });
      const sidecars = await sidecarsPending;
      if (sidecars !== undefined) components = [...components, sidecars];
      if (output === 'table') {
        deps.io.out.write(renderStatusTable(components));
        deps.io.out.write(renderNotReady(components));
        deps.io.out.write(renderRestarted(components));
      } else {
        await printDocument(deps.io, output, statusDocument(components));
      }
      const controller = components.find((each) => each.name === CONTROLLER_NAME);
      if (controller === undefined || !isHealthy(controller)) {
        throw new MeshctlError(
          `mesh controller unavailable${controller === undefined ? '' : firstReason(controller)}`,
          {
            hint: `Check the ${CONTROLLER_NAME} pods and their logs in namespace "${namespace}".`,
          },
        );
      }
      const unhealthy = components.filter((each) => !isHealthy(each));
      if (unhealthy.length > 0) {
        throw new MeshctlError(
          `mesh components unavailable: ${unhealthy.map((each) => `${each.name} (${each.ready}/${each.desired} ready${firstReason(each)})`).join(', ')}`,
          { hint: `Check their pods and logs in namespace "${namespace}".` },
        );
      }
      if (output === 'table') {
        deps.io.out.write('Connection to NGINX Service Mesh was successful.\n');
      }
    },
  };
}
