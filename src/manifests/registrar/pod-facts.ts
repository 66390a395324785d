// The parts of a live pod the registrar decides on, read from the pod as the API server returns
// it. Pure and total: a field of the wrong shape reads as absent, which the decision then treats
// as "not what the injector renders", never as a pass.
import { arrayOf, isObject, objectOf, stringOf } from '../inject/json';

/** Where a container sits in the pod spec. */
export type ContainerPlacement = 'container' | 'init' | 'ephemeral';

export interface ContainerFacts {
  readonly name: string;
  readonly placement: ContainerPlacement;
  readonly image: string;
  /** Overrides the image's entrypoint when not empty. */
  readonly command: readonly string[];
  readonly args: readonly string[];
  /** The container's runAsUser, else the pod's; undefined when neither sets one. */
  readonly runAsUser: number | undefined;
  /** "Always" for a native sidecar (an init container that keeps running). */
  readonly restartPolicy: string | undefined;
  readonly envNames: readonly string[];
  /** Whether it takes environment variables from ConfigMaps or Secrets (envFrom). */
  readonly envFrom: boolean;
  /** Whether it has lifecycle hooks or exec probes: commands the kubelet runs inside it. */
  readonly runsCommands: boolean;
  /** Names of the volumes it mounts. */
  readonly volumeMounts: readonly string[];
}

export interface VolumeFacts {
  readonly name: string;
  /** Audiences of the projected ServiceAccount tokens the volume carries. */
  readonly tokenAudiences: readonly string[];
  /**
   * Whether it holds only what the kubelet mounts into every container for the API server (the
   * ServiceAccount admission's kube-api-access volume): tokens for the API server alone, CA
   * ConfigMaps and downward API fields. Sharing it gives no container anything of the sidecar's.
   */
  readonly apiAccessOnly: boolean;
}

/** The pod as the API server has it (undefined when it does not exist). */
export interface PodFacts {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccountName: string;
  readonly deleting: boolean;
  /** Regular, init and ephemeral containers, in that order. */
  readonly containers: readonly ContainerFacts[];
  readonly volumes: readonly VolumeFacts[];
  /** Whether its containers see each other's processes (and so their files, through /proc). */
  readonly sharesProcesses: boolean;
}

const strings = (value: unknown): string[] =>
  arrayOf(value).filter((item): item is string => typeof item === 'string');

const numberOf = (value: unknown): number | undefined =>
  typeof value === 'number' ? value : undefined;

const PROBES = ['livenessProbe', 'readinessProbe', 'startupProbe'] as const;

function containerFacts(
  value: unknown,
  placement: ContainerPlacement,
  podUser: number | undefined,
): ContainerFacts {
  const container = objectOf(value);
  const lifecycle = objectOf(container.lifecycle);
  const execProbe = PROBES.some((probe) => isObject(objectOf(container[probe]).exec));
  return {
    name: stringOf(container.name) ?? '',
    placement,
    image: stringOf(container.image) ?? '',
    command: strings(container.command),
    args: strings(container.args),
    runAsUser: numberOf(objectOf(container.securityContext).runAsUser) ?? podUser,
    restartPolicy: stringOf(container.restartPolicy),
    envNames: arrayOf(container.env).map((entry) => stringOf(objectOf(entry).name) ?? ''),
    envFrom: arrayOf(container.envFrom).length > 0,
    runsCommands: Object.keys(lifecycle).length > 0 || execProbe,
    volumeMounts: arrayOf(container.volumeMounts).map(
      (mount) => stringOf(objectOf(mount).name) ?? '',
    ),
  };
}

function volumeFacts(value: unknown): VolumeFacts {
  const volume = objectOf(value);
  const sources = arrayOf(objectOf(volume.projected).sources).map(objectOf);
  const tokenAudiences = sources
    .map((source) => source.serviceAccountToken)
    .filter(isObject)
    // A token without an audience is for the API server itself.
    .map((token) => stringOf(token.audience) ?? '');
  const apiSource = (source: Readonly<Record<string, unknown>>): boolean => {
    const keys = Object.keys(source);
    if (keys.length !== 1) return false;
    if (keys[0] === 'serviceAccountToken') {
      return (stringOf(objectOf(source.serviceAccountToken).audience) ?? '') === '';
    }
    return keys[0] === 'configMap' || keys[0] === 'downwardAPI';
  };
  return {
    name: stringOf(volume.name) ?? '',
    tokenAudiences,
    apiAccessOnly: isObject(volume.projected) && sources.length > 0 && sources.every(apiSource),
  };
}

/** The facts of a Pod object (JSON, or @kubernetes/client-node's V1Pod, which has its shape). */
export function toPodFacts(pod: unknown, fallback: { namespace: string; name: string }): PodFacts {
  const metadata = objectOf(objectOf(pod).metadata);
  const spec = objectOf(objectOf(pod).spec);
  const podUser = numberOf(objectOf(spec.securityContext).runAsUser);
  const list = (field: string, placement: ContainerPlacement): ContainerFacts[] =>
    arrayOf(spec[field]).map((item) => containerFacts(item, placement, podUser));
  return {
    namespace: stringOf(metadata.namespace) ?? fallback.namespace,
    name: stringOf(metadata.name) ?? fallback.name,
    uid: stringOf(metadata.uid) ?? '',
    serviceAccountName: stringOf(spec.serviceAccountName) ?? 'default',
    deleting: metadata.deletionTimestamp !== undefined && metadata.deletionTimestamp !== null,
    containers: [
      ...list('containers', 'container'),
      ...list('initContainers', 'init'),
      ...list('ephemeralContainers', 'ephemeral'),
    ],
    volumes: arrayOf(spec.volumes).map(volumeFacts),
    sharesProcesses: spec.shareProcessNamespace === true || spec.hostPID === true,
  };
}
