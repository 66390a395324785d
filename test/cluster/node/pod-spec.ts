// Pure decisions of the node agent: which program a container runs, its environment, and the
// pod status that follows from the containers' states.
import type { V1Container, V1EnvVar, V1Pod, V1Service } from '@kubernetes/client-node';

/** What an image runs on this node, as a Dockerfile's ENTRYPOINT and CMD would. */
export interface ImageProgram {
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  /** In-image paths of executables mapped to their host paths (e.g. /usr/bin/nginx-meshctl). */
  readonly paths: Readonly<Record<string, string>>;
  /** The image's own environment (a Dockerfile's ENV); the container's env overrides it. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface ImageRule {
  /** Matches the image reference without its tag or digest's effect on meaning. */
  readonly pattern: RegExp;
  readonly program: ImageProgram;
}

/** The image's environment, or none for an unknown image. */
export function imageEnv(
  container: V1Container,
  rules: readonly ImageRule[],
): Readonly<Record<string, string>> {
  const image = container.image ?? '';
  return rules.find((candidate) => candidate.pattern.test(image))?.program.env ?? {};
}

/** The argv a container runs, with Kubernetes' command/args semantics, or undefined for an unknown image. */
export function resolveArgv(
  container: V1Container,
  rules: readonly ImageRule[],
): string[] | undefined {
  const image = container.image ?? '';
  const rule = rules.find((candidate) => candidate.pattern.test(image));
  if (rule === undefined) return undefined;
  const { program } = rule;
  const command = container.command ?? [];
  const args = container.args ?? [];
  const argv =
    command.length > 0
      ? [...command, ...args]
      : [...program.entrypoint, ...(container.args === undefined ? program.cmd : args)];
  const [first, ...rest] = argv;
  if (first === undefined) return undefined;
  return [program.paths[first] ?? first, ...rest];
}

export interface EnvSources {
  /** Services of the pod's namespace, for the Docker-links style variables. */
  readonly services: readonly V1Service[];
  /** default/kubernetes, for KUBERNETES_SERVICE_HOST/PORT. */
  readonly kubernetesService: V1Service | undefined;
  readonly configMaps: ReadonlyMap<string, Readonly<Record<string, string>>>;
  readonly secrets: ReadonlyMap<string, Readonly<Record<string, string>>>;
  readonly hostIP: string;
  readonly podIP: string;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function serviceVars(service: V1Service): Record<string, string> {
  const vars: Record<string, string> = {};
  const ip = service.spec?.clusterIP;
  const ports = service.spec?.ports ?? [];
  const first = ports[0];
  if (ip === undefined || ip === 'None' || ip === '' || first === undefined) return vars;
  const name = (service.metadata?.name ?? '').toUpperCase().replace(/-/g, '_');
  vars[`${name}_SERVICE_HOST`] = ip;
  vars[`${name}_SERVICE_PORT`] = String(first.port);
  for (const port of ports) {
    if (port.name !== undefined && port.name !== '') {
      vars[`${name}_SERVICE_PORT_${port.name.toUpperCase().replace(/-/g, '_')}`] = String(
        port.port,
      );
    }
  }
  return vars;
}

type FieldSources = Pick<EnvSources, 'hostIP' | 'podIP'>;

/** Downward-API field paths the node supports, each with how to read it. */
const FIELDS: Readonly<Record<string, (pod: V1Pod, sources: FieldSources) => string>> = {
  'metadata.name': (pod) => pod.metadata?.name ?? '',
  'metadata.namespace': (pod) => pod.metadata?.namespace ?? '',
  'metadata.uid': (pod) => pod.metadata?.uid ?? '',
  'spec.nodeName': (pod) => pod.spec?.nodeName ?? '',
  'spec.serviceAccountName': (pod) => pod.spec?.serviceAccountName ?? 'default',
  'status.podIP': (_pod, sources) => sources.podIP,
  'status.podIPs': (_pod, sources) => sources.podIP,
  'status.hostIP': (_pod, sources) => sources.hostIP,
  'status.hostIPs': (_pod, sources) => sources.hostIP,
};

/** Resolves a downward-API field path; undefined when the path is not supported. */
export function fieldValue(pod: V1Pod, path: string, sources: FieldSources): string | undefined {
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (keyed !== null) {
    const map = keyed[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[keyed[2] ?? ''] ?? '';
  }
  return FIELDS[path]?.(pod, sources);
}

/** $(VAR) references expand from variables defined before; $$ escapes. */
function expand(value: string, env: Readonly<Record<string, string>>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match: string, name?: string) =>
    match === '$$' ? '$' : (env[name ?? ''] ?? match),
  );
}

function envVarValue(
  pod: V1Pod,
  variable: V1EnvVar,
  env: Record<string, string>,
  sources: EnvSources,
): string {
  const from = variable.valueFrom;
  if (from === undefined) return expand(variable.value ?? '', env);
  if (from.fieldRef !== undefined) return fieldValue(pod, from.fieldRef.fieldPath, sources) ?? '';
  if (from.configMapKeyRef !== undefined) {
    return (
      sources.configMaps.get(from.configMapKeyRef.name ?? '')?.[from.configMapKeyRef.key] ?? ''
    );
  }
  if (from.secretKeyRef !== undefined) {
    return sources.secrets.get(from.secretKeyRef.name ?? '')?.[from.secretKeyRef.key] ?? '';
  }
  return '';
}

function serviceLinkVars(pod: V1Pod, sources: EnvSources): Record<string, string> {
  if (pod.spec?.enableServiceLinks === false) return {};
  const sorted = [...sources.services].sort((a, b) =>
    (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
  );
  return Object.assign({}, ...sorted.map(serviceVars)) as Record<string, string>;
}

function kubernetesVars(service: V1Service | undefined): Record<string, string> {
  if (service === undefined) return {};
  const ports = service.spec?.ports ?? [];
  const port = String(
    (ports.find((candidate) => candidate.name === 'https') ?? ports[0])?.port ?? 443,
  );
  return {
    KUBERNETES_SERVICE_HOST: service.spec?.clusterIP ?? '',
    KUBERNETES_SERVICE_PORT: port,
    KUBERNETES_SERVICE_PORT_HTTPS: port,
  };
}

function envFromVars(container: V1Container, sources: EnvSources): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const data =
      source.configMapRef !== undefined
        ? sources.configMaps.get(source.configMapRef.name ?? '')
        : sources.secrets.get(source.secretRef?.name ?? '');
    for (const [key, value] of Object.entries(data ?? {}))
      vars[`${source.prefix ?? ''}${key}`] = value;
  }
  return vars;
}

/** The container's environment, in the order and precedence the kubelet uses. */
export function buildEnv(
  pod: V1Pod,
  container: V1Container,
  sources: EnvSources,
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOSTNAME: pod.metadata?.name ?? '',
    ...serviceLinkVars(pod, sources),
    ...kubernetesVars(sources.kubernetesService),
    ...envFromVars(container, sources),
  };
  for (const variable of container.env ?? []) {
    env[variable.name] = envVarValue(pod, variable, env, sources);
  }
  return env;
}

export type ContainerState =
  | { readonly kind: 'waiting'; readonly reason: string; readonly message?: string }
  | { readonly kind: 'running'; readonly startedAt: string }
  | {
      readonly kind: 'terminated';
      readonly exitCode: number;
      readonly reason: string;
      readonly startedAt: string;
      readonly finishedAt: string;
    };

export interface ContainerRuntime {
  readonly name: string;
  readonly image: string;
  /** An init container that is not a native sidecar. */
  readonly init: boolean;
  /** An init container with restartPolicy Always, kept running next to the app. */
  readonly sidecar: boolean;
  readonly state: ContainerState;
  readonly lastTermination?: ContainerState | undefined;
  readonly ready: boolean;
  readonly started: boolean;
  readonly restartCount: number;
  readonly containerID: string;
}

export interface PodRuntime {
  readonly restartPolicy: 'Always' | 'OnFailure' | 'Never';
  readonly containers: readonly ContainerRuntime[];
  readonly initContainers: readonly ContainerRuntime[];
  /** Every regular init container has succeeded (and every sidecar has started). */
  readonly initialized: boolean;
  /** A regular init container failed and will not be retried. */
  readonly initFailed: boolean;
  readonly networkReady: boolean;
  readonly podIP: string | undefined;
  readonly hostIP: string;
  readonly startTime: string;
  readonly now: string;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

interface ContainerCounts {
  running: number;
  waiting: number;
  failed: number;
}

/** A container waiting to be restarted counts as running, as the kubelet counts it. */
function countContainers(containers: readonly ContainerRuntime[]): ContainerCounts {
  const counts: ContainerCounts = { running: 0, waiting: 0, failed: 0 };
  for (const { state, restartCount } of containers) {
    if (state.kind === 'running' || (state.kind === 'waiting' && restartCount > 0))
      counts.running += 1;
    else if (state.kind === 'waiting') counts.waiting += 1;
    else if (state.exitCode !== 0) counts.failed += 1;
  }
  return counts;
}

/** The pod phase the kubelet would report for these container states. */
export function podPhase(pod: PodRuntime): PodPhase {
  if (pod.initFailed) return 'Failed';
  if (!pod.initialized) return 'Pending';
  const { running, waiting, failed } = countContainers(pod.containers);
  if (running > 0) return 'Running';
  if (waiting > 0) return 'Pending';
  switch (pod.restartPolicy) {
    case 'Always':
      return 'Running';
    case 'OnFailure':
      return failed === 0 ? 'Succeeded' : 'Running';
    case 'Never':
      return failed > 0 ? 'Failed' : 'Succeeded';
  }
}

function toApiState(state: ContainerState): Record<string, unknown> {
  switch (state.kind) {
    case 'waiting':
      return {
        waiting: {
          reason: state.reason,
          ...(state.message === undefined ? {} : { message: state.message }),
        },
      };
    case 'running':
      return { running: { startedAt: state.startedAt } };
    case 'terminated':
      return {
        terminated: {
          exitCode: state.exitCode,
          reason: state.reason,
          startedAt: state.startedAt,
          finishedAt: state.finishedAt,
        },
      };
  }
}

function toContainerStatus(container: ContainerRuntime): Record<string, unknown> {
  return {
    name: container.name,
    image: container.image,
    imageID: `nmk://${container.image}`,
    containerID: container.containerID,
    ready: container.ready,
    started: container.started,
    restartCount: container.restartCount,
    state: toApiState(container.state),
    lastState: container.lastTermination === undefined ? {} : toApiState(container.lastTermination),
  };
}

/** The status object the agent writes to the API for this pod. */
export function buildPodStatus(pod: PodRuntime): Record<string, unknown> {
  const phase = podPhase(pod);
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const containersReady =
    !terminal &&
    pod.initialized &&
    pod.containers.every((container) => container.ready) &&
    pod.initContainers
      .filter((container) => container.sidecar)
      .every((container) => container.ready);
  const condition = (type: string, status: boolean, reason?: string): Record<string, unknown> => ({
    type,
    status: status ? 'True' : 'False',
    lastTransitionTime: pod.startTime,
    ...(status || reason === undefined ? {} : { reason }),
  });
  return {
    phase,
    hostIP: pod.hostIP,
    hostIPs: [{ ip: pod.hostIP }],
    ...(pod.podIP === undefined ? {} : { podIP: pod.podIP, podIPs: [{ ip: pod.podIP }] }),
    startTime: pod.startTime,
    conditions: [
      condition('PodReadyToStartContainers', pod.networkReady),
      condition('Initialized', pod.initialized, 'ContainersNotInitialized'),
      condition('Ready', containersReady, terminal ? 'PodCompleted' : 'ContainersNotReady'),
      condition(
        'ContainersReady',
        containersReady,
        terminal ? 'PodCompleted' : 'ContainersNotReady',
      ),
      condition('PodScheduled', true),
    ],
    initContainerStatuses: pod.initContainers.map(toContainerStatus),
    containerStatuses: pod.containers.map(toContainerStatus),
  };
}
