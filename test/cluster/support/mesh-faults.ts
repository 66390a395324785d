// Breaking and mending a deployed mesh on the test cluster, as an operator or a node failure
// would: control-plane pods killed, Deployments scaled to zero and back, a sidecar's process
// killed, a mesh-wide setting changed; and the checks that tell when the mesh is whole again:
// every control-plane Deployment ready with pods that are not the killed ones, and every
// sidecar running a configuration. Every wait is bounded.
import {
  CONTROLLER_NAME,
  METRICS_NAME,
  NATS_NAME,
  REGISTRAR_NAME,
  SIDECAR_CONTAINER_NAME,
} from '../../../src/manifests/constants';
import type { KubeRest } from '../harness/kube-rest';
import type { PodSummary } from './kube';
import { isReady, listPods, waitFor } from './kube';
import { kubectl, sidecarConfig } from './mesh-apps';
import { killContainer } from './node-access';

/** The control plane's Deployments, one per role (NATS's pod also runs the cert-reloader). */
export const CONTROL_PLANE = [CONTROLLER_NAME, REGISTRAR_NAME, METRICS_NAME, NATS_NAME] as const;
export type ControlPlaneRole = (typeof CONTROL_PLANE)[number];

/** The label every control-plane pod carries with its Deployment's name. */
const NAME_LABEL = 'app.kubernetes.io/name';
const INJECTED_ANNOTATION = 'injector.nsm.nginx.com/status';

interface DeploymentState {
  metadata: { name: string; generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
  };
}

/** A pod with what the fault tests read beyond PodSummary. */
export type MeshedPod = PodSummary & {
  metadata: { annotations?: Record<string, string>; deletionTimestamp?: string };
  spec?: {
    initContainers?: { name: string; image: string }[];
    containers?: { name: string; image: string }[];
  };
  status?: {
    initContainerStatuses?: { name: string; containerID?: string; restartCount?: number }[];
    containerStatuses?: { name: string; containerID?: string; restartCount?: number }[];
  };
};

/** The pods of one control-plane Deployment. */
export function podsOfRole(
  rest: KubeRest,
  meshNamespace: string,
  role: ControlPlaneRole,
): Promise<PodSummary[]> {
  return listPods(rest, meshNamespace, `${NAME_LABEL}=${role}`);
}

/**
 * Kills pods as a crash or a node reboot does: deleted at once, without a grace period, so a
 * replacement starts while nothing released what the old one held (the leader Lease, say).
 */
export async function killPods(namespace: string, names: readonly string[]): Promise<void> {
  const killed = await kubectl([
    ...['delete', 'pod', '-n', namespace, '--grace-period=0', '--force', '--wait=false'],
    ...names,
  ]);
  if (killed.exitCode !== 0)
    throw new Error(`deleting pods ${names.join(', ')} failed: ${killed.stderr}`);
}

/** Kills every pod of the given roles; resolves with the killed pods' uids. */
export async function killRoles(
  rest: KubeRest,
  meshNamespace: string,
  roles: readonly ControlPlaneRole[],
): Promise<string[]> {
  const pods = (
    await Promise.all(roles.map((role) => podsOfRole(rest, meshNamespace, role)))
  ).flat();
  if (pods.length === 0) throw new Error(`no pods of ${roles.join(', ')} to kill`);
  await killPods(
    meshNamespace,
    pods.map((pod) => pod.metadata.name),
  );
  return pods.map((pod) => pod.metadata.uid);
}

/** Scales Deployment namespace/name to replicas. */
export async function scaleDeployment(
  namespace: string,
  name: string,
  replicas: number,
): Promise<void> {
  const scaled = await kubectl([
    ...['scale', 'deployment', name, '-n', namespace, `--replicas=${replicas}`],
  ]);
  if (scaled.exitCode !== 0) throw new Error(`scaling ${name} failed: ${scaled.stderr}`);
}

/** Waits until no pod of the role is left (after a scale to zero). */
export async function waitForNoPods(
  rest: KubeRest,
  meshNamespace: string,
  role: ControlPlaneRole,
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(
    `no ${role} pod left`,
    async () => ((await podsOfRole(rest, meshNamespace, role)).length === 0 ? true : undefined),
    timeoutMs,
    250,
  );
}

/** Whether Deployment state has rolled out and every desired replica is ready. */
function rolledOut(deployment: DeploymentState): boolean {
  const desired = deployment.spec?.replicas ?? 1;
  const status = deployment.status ?? {};
  return (
    desired > 0 &&
    (status.observedGeneration ?? 0) >= (deployment.metadata.generation ?? 0) &&
    (status.updatedReplicas ?? 0) === desired &&
    (status.readyReplicas ?? 0) === desired &&
    (status.replicas ?? 0) === desired
  );
}

/**
 * Until the API server shows one of the roles' Deployments short of ready replicas; false when it
 * never did within timeoutMs (a replacement ready before anyone looked).
 */
export async function sawRolesDown(
  rest: KubeRest,
  meshNamespace: string,
  roles: readonly ControlPlaneRole[],
  timeoutMs = 10_000,
): Promise<boolean> {
  return waitFor(
    `one of ${roles.join(', ')} not ready`,
    async () => {
      for (const role of roles) {
        const deployment = await rest.request<DeploymentState>(
          'GET',
          `/apis/apps/v1/namespaces/${meshNamespace}/deployments/${role}`,
        );
        if (!rolledOut(deployment)) return true;
      }
      return undefined;
    },
    timeoutMs,
    100,
  ).catch(() => false);
}

/**
 * Until every control-plane Deployment is rolled out and ready, with none of the `gone` pods
 * (killed ones) left; as the API server reports it.
 */
export async function waitForControlPlane(
  rest: KubeRest,
  meshNamespace: string,
  gone: readonly string[] = [],
  timeoutMs = 120_000,
): Promise<void> {
  await waitFor(
    'every control-plane Deployment ready',
    async () => {
      for (const role of CONTROL_PLANE) {
        const deployment = await rest.request<DeploymentState>(
          'GET',
          `/apis/apps/v1/namespaces/${meshNamespace}/deployments/${role}`,
        );
        if (!rolledOut(deployment)) return undefined;
        const pods = await podsOfRole(rest, meshNamespace, role);
        if (pods.some((pod) => gone.includes(pod.metadata.uid) || !isReady(pod))) return undefined;
      }
      return true;
    },
    timeoutMs,
    250,
  );
}

/** The injected pods of namespace that run and are not being deleted, Ready or not. */
export async function injectedPods(rest: KubeRest, namespace: string): Promise<MeshedPod[]> {
  const pods = (await listPods(rest, namespace)) as MeshedPod[];
  return pods.filter(
    (pod) =>
      pod.metadata.annotations?.[INJECTED_ANNOTATION] === 'injected' &&
      pod.metadata.deletionTimestamp === undefined &&
      pod.status?.phase === 'Running',
  );
}

/** The sidecar container's status in pod: a native sidecar (init container) or a container. */
export function sidecarStatusOf(
  pod: MeshedPod,
): { containerID?: string; restartCount?: number } | undefined {
  return [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ].find((status) => status.name === SIDECAR_CONTAINER_NAME);
}

/** The image of the pod's sidecar container. */
export function sidecarImageOf(pod: MeshedPod): string | undefined {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
    (container) => container.name === SIDECAR_CONTAINER_NAME,
  )?.image;
}

/** Kills the agent (the sidecar's main process) of the pod; resolves with its restart count then. */
export async function killSidecar(pod: MeshedPod): Promise<number> {
  const status = sidecarStatusOf(pod);
  if (status?.containerID === undefined)
    throw new Error(`pod ${pod.metadata.name} has no running ${SIDECAR_CONTAINER_NAME}`);
  await killContainer(status.containerID);
  return status.restartCount ?? 0;
}

/** Sets MeshConfig's clientMaxBodySize: a setting every sidecar renders, so all must reload. */
export async function setClientMaxBodySize(meshNamespace: string, size: string): Promise<void> {
  const patched = await kubectl([
    ...['patch', 'meshconfig', 'nginx-mesh-config', '-n', meshNamespace, '--type', 'merge'],
    ...['-p', JSON.stringify({ spec: { clientMaxBodySize: size } })],
  ]);
  if (patched.exitCode !== 0) throw new Error(`patching MeshConfig failed: ${patched.stderr}`);
}

/** The nginx directive a sidecar runs once it applied clientMaxBodySize size. */
export function clientMaxBodySizeDirective(size: string): string {
  return `client_max_body_size ${size};`;
}

/**
 * Until the configuration of every injected pod's sidecar in namespace contains text; resolves
 * with the time it was first seen in all of them, or undefined when timeoutMs passed. Pods are
 * listed again on each round, so replaced pods count too.
 */
export async function waitForEverySidecar(
  rest: KubeRest,
  namespace: string,
  text: string,
  timeoutMs: number,
): Promise<{ at: number | undefined; behind: string[] }> {
  const deadline = Date.now() + timeoutMs;
  let behind: string[] = [];
  for (;;) {
    const pods = await injectedPods(rest, namespace).catch(() => undefined);
    if (pods !== undefined && pods.length > 0) {
      behind = pods
        .filter((pod) => !(sidecarConfig(pod.metadata.uid) ?? '').includes(text))
        .map((pod) => pod.metadata.name);
      if (behind.length === 0) return { at: Date.now(), behind };
    }
    if (Date.now() >= deadline) return { at: undefined, behind };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** When a policy change was made, and when every sidecar ran it (undefined: not in time). */
export interface PolicyChange {
  readonly changedAt: number;
  readonly at: number | undefined;
  /** The pods whose sidecar did not run it when the wait ended. */
  readonly behind: readonly string[];
}

/**
 * Makes a mesh-wide policy change (MeshConfig's clientMaxBodySize to size, which every sidecar
 * renders) and waits at most timeoutMs until every sidecar in namespace runs it.
 */
export async function changePolicyAndWait(
  rest: KubeRest,
  where: { readonly meshNamespace: string; readonly namespace: string },
  size: string,
  timeoutMs: number,
): Promise<PolicyChange> {
  const changedAt = Date.now();
  await setClientMaxBodySize(where.meshNamespace, size);
  const applied = await waitForEverySidecar(
    rest,
    where.namespace,
    clientMaxBodySizeDirective(size),
    timeoutMs,
  );
  return { changedAt, ...applied };
}

/** Restarts Deployment namespace/name and waits for its rollout, bounded. */
export async function restartDeployment(
  namespace: string,
  name: string,
  timeoutSeconds = 120,
): Promise<void> {
  const restarted = await kubectl(['rollout', 'restart', `deployment/${name}`, '-n', namespace]);
  if (restarted.exitCode !== 0) throw new Error(`restarting ${name} failed: ${restarted.stderr}`);
  const rolled = await kubectl([
    ...['rollout', 'status', `deployment/${name}`, '-n', namespace],
    `--timeout=${timeoutSeconds}s`,
  ]);
  if (rolled.exitCode !== 0) throw new Error(`${name} did not roll out: ${rolled.stderr}`);
}
