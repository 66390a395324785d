// Whether a live pod is a member of the mesh, decided from its spec, never from annotations or
// labels its author may write. A pod is a member when it runs the mesh's sidecar exactly as the
// injector renders it and nothing else in the pod can reach what the sidecar holds (the token for
// the registrar and the SVID it obtains); a control-plane pod is a member through the one
// container of its component that asks for an SVID. Pure: every answer is a one-line reason
// naming the container or volume, or undefined when the pod passes.
import {
  CERT_RELOADER_NAME,
  CONTROLLER_NAME,
  IDENTITY_TOKEN_AUDIENCE,
  NATS_SERVICE_ACCOUNT_NAME,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_UID,
} from '../constants';
import { sidecarEnvNames } from '../inject/containers';
import type { ContainerFacts, PodFacts } from './pod-facts';

/** Images the registrar trusts, from the mesh configuration it was started with. */
export interface MeshImages {
  readonly sidecarImage: string;
  /** The image of the controller and the cert-reloader. */
  readonly controlPlaneImage: string;
}

/**
 * The control-plane components that obtain SVIDs, by ServiceAccount (in the mesh namespace): the
 * container that asks and the role it runs. No other control-plane account gets one.
 */
export const CONTROL_PLANE_SVID_HOLDERS: ReadonlyMap<
  string,
  { readonly container: string; readonly role: string }
> = new Map([
  [CONTROLLER_NAME, { container: CONTROLLER_NAME, role: 'controller' }],
  [NATS_SERVICE_ACCOUNT_NAME, { container: CERT_RELOADER_NAME, role: 'cert-reloader' }],
]);

/**
 * The repository of an image reference, without tag or digest. Images are compared by
 * repository: a pod injected before an upgrade keeps the sidecar tag it was given and must go on
 * renewing its SVID; every tag of the mesh's repository runs the mesh's sidecar.
 */
export function imageRepositoryOf(image: string): string {
  const withoutDigest = image.split('@')[0] ?? '';
  const colon = withoutDigest.lastIndexOf(':');
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
}

/** Whether args start the executable's role: `run --role <role>` or `run --role=<role>`. */
function runsRole(args: readonly string[], role: string): boolean {
  if (args[0] !== 'run') return false;
  return args[1] === `--role=${role}` || (args[1] === '--role' && args[2] === role);
}

/** Volumes that carry a token for the registrar: whoever mounts one can ask for the pod's SVID. */
function tokenVolumes(pod: PodFacts): Set<string> {
  return new Set(
    pod.volumes
      .filter((volume) => volume.tokenAudiences.includes(IDENTITY_TOKEN_AUDIENCE))
      .map((volume) => volume.name),
  );
}

/** The first container other than holder that mounts one of volumes, with the volume. */
function otherMount(
  pod: PodFacts,
  holder: ContainerFacts,
  volumes: ReadonlySet<string>,
): { container: string; volume: string } | undefined {
  for (const container of pod.containers) {
    if (container === holder) continue;
    const volume = container.volumeMounts.find((name) => volumes.has(name));
    if (volume !== undefined) return { container: container.name, volume };
  }
  return undefined;
}

/** The reason the holder does not run the agent as the injector renders it, or undefined. */
function sidecarProblem(sidecar: ContainerFacts, images: MeshImages): string | undefined {
  const where = `container ${SIDECAR_CONTAINER_NAME}`;
  if (sidecar.placement === 'ephemeral') return `${where} is an ephemeral container`;
  if (sidecar.placement === 'init' && sidecar.restartPolicy !== 'Always') {
    return `${where} is an init container without restartPolicy: Always`;
  }
  if (imageRepositoryOf(sidecar.image) !== imageRepositoryOf(images.sidecarImage)) {
    return `${where} runs image "${sidecar.image}", not the mesh's sidecar image ${images.sidecarImage}`;
  }
  if (sidecar.command.length > 0) return `${where} overrides the image's command`;
  if (!runsRole(sidecar.args, 'agent') && !runsRole(sidecar.args, 'gateway'))
    return `${where} runs neither the agent role nor the gateway role`;
  if (sidecar.runAsUser !== SIDECAR_UID) {
    return `${where} does not run as UID ${SIDECAR_UID}`;
  }
  const allowed = new Set(sidecarEnvNames());
  const extra = sidecar.envNames.find((name) => !allowed.has(name));
  if (extra !== undefined) return `${where} sets environment variable ${extra}`;
  if (sidecar.envFrom) return `${where} takes environment variables from envFrom`;
  if (sidecar.runsCommands) return `${where} has lifecycle hooks or exec probes`;
  return undefined;
}

/**
 * Why an application pod is not a mesh member, or undefined when it is: it runs the sidecar as
 * the injector renders it, and no other container mounts a volume the sidecar mounts (its SVID
 * directory, its token) or any other volume with a token for the registrar.
 */
export function sidecarMembershipProblem(pod: PodFacts, images: MeshImages): string | undefined {
  const sidecar = pod.containers.find((container) => container.name === SIDECAR_CONTAINER_NAME);
  if (sidecar === undefined) return `it has no container ${SIDECAR_CONTAINER_NAME}`;
  const problem = sidecarProblem(sidecar, images);
  if (problem !== undefined) return problem;
  if (pod.sharesProcesses) {
    return `it shares its process namespace: other containers could read container ${SIDECAR_CONTAINER_NAME}'s files`;
  }
  // Every container gets the kubelet's API-access volume: sharing it shares nothing of the
  // sidecar's. Any other volume the sidecar mounts is its own.
  const apiAccess = new Set(
    pod.volumes.filter((volume) => volume.apiAccessOnly).map((volume) => volume.name),
  );
  const guarded = new Set([
    ...sidecar.volumeMounts.filter((name) => !apiAccess.has(name)),
    ...tokenVolumes(pod),
  ]);
  const shared = otherMount(pod, sidecar, guarded);
  if (shared !== undefined) {
    return `container ${shared.container} mounts volume ${shared.volume}, which only ${SIDECAR_CONTAINER_NAME} may mount`;
  }
  return undefined;
}

/**
 * Why a pod of a control-plane ServiceAccount is not that component, or undefined when it is:
 * the component's container runs the control-plane image and its role, and it alone mounts a
 * token for the registrar. (Other containers of the pod may read what it writes: NATS serves
 * with the cert-reloader's SVID.)
 */
export function controlPlaneMembershipProblem(
  pod: PodFacts,
  images: MeshImages,
): string | undefined {
  const holder = CONTROL_PLANE_SVID_HOLDERS.get(pod.serviceAccountName);
  if (holder === undefined) {
    return `ServiceAccount ${pod.serviceAccountName} is not a control-plane component that holds an SVID`;
  }
  const where = `container ${holder.container}`;
  const container = pod.containers.find((each) => each.name === holder.container);
  if (container === undefined || container.placement === 'ephemeral') {
    return `it has no ${where}`;
  }
  if (imageRepositoryOf(container.image) !== imageRepositoryOf(images.controlPlaneImage)) {
    return `${where} runs image "${container.image}", not the control-plane image ${images.controlPlaneImage}`;
  }
  if (container.command.length > 0) return `${where} overrides the image's command`;
  if (!runsRole(container.args, holder.role))
    return `${where} does not run the ${holder.role} role`;
  const shared = otherMount(pod, container, tokenVolumes(pod));
  if (shared !== undefined) {
    return `container ${shared.container} mounts volume ${shared.volume}, which only ${holder.container} may mount`;
  }
  return undefined;
}
