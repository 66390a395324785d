// Sidecar injection: one pure function from a pod template to the injected template. The
// `inject` command, the admission webhook and the tests all call it.
import {
  AUTO_INJECT_DISABLED,
  AUTO_INJECT_LABEL,
  IDENTITY_VOLUME_NAME,
  INIT_CONTAINER_NAME,
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
  OWNER_LABEL_PREFIX,
  SIDECAR_CONFIG_VOLUME_NAME,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_HEALTH_HTTP_PORT,
  SIDECAR_METRICS_PORT,
} from '../constants';
import { parsePodAnnotations } from './annotations';
import { buildInitContainer, buildSidecarContainer, buildSidecarVolumes } from './containers';
import { injectionError } from './errors';
import type { JsonObject } from './json';
import { arrayOf, isObject, objectOf, stringMapOf } from './json';
import type { ProbeRewrite } from './probes';
import { rewriteProbes } from './probes';
import type { InjectionOutcome, InjectionSettings, PodOwner, PodTemplate } from './types';
import {
  containerPorts,
  nameOf,
  resolveIgnorePorts,
  validateMtlsMode,
  validateServingPorts,
  validateUserIds,
} from './validate-pod';

/** The parts of a pod template injection reads, each already checked for shape. */
interface PodParts {
  readonly metadata: JsonObject;
  readonly spec: JsonObject;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly containers: readonly JsonObject[];
  readonly initContainers: readonly JsonObject[];
}

/**
 * Injects the mesh's init container and sidecar into a pod template.
 *
 * Guarantees: the input is never modified; the same input gives a deep-equal output; the user's
 * containers, init containers and volumes keep their order and content except for rewritten
 * httpGet probes; keys already in the template keep their positions and added keys follow in a
 * fixed order; no object is reachable twice in the result (a YAML printer would alias it), though
 * parts the injection leaves alone are shared with the input, so callers copy before mutating;
 * injecting the result again answers `unchanged`.
 *
 * Answers `unchanged` for a pod that already carries the sidecar or the init container, `skipped`
 * for one that must not or cannot be meshed (hostNetwork, auto-inject disabled, no containers),
 * and throws an InjectionError naming
 * `objectName` when the template cannot be injected as written.
 *
 * Layouts: classic (NGINX Service Mesh's) appends the init container after the user's init
 * containers and the sidecar after the user's containers, so the user's init containers run
 * before the redirect exists and outside the mesh. Native puts the init container first and the
 * sidecar (restartPolicy: Always) right after it, so everything that follows, the user's init
 * containers included, starts with the proxy ready and its traffic meshed.
 */
export function injectPodTemplate(
  template: PodTemplate,
  owner: PodOwner,
  settings: InjectionSettings,
  objectName: string,
): InjectionOutcome {
  const pod = readPod(template, objectName);
  const unchanged = alreadyInjected(pod, objectName);
  if (unchanged !== undefined) return { status: 'unchanged', reason: unchanged };
  const skipped = notInjectable(pod, objectName);
  if (skipped !== undefined) return { status: 'skipped', reason: skipped };

  const annotations = parsePodAnnotations(pod.annotations, objectName);
  const userNativeSidecars = pod.initContainers.filter((c) => c.restartPolicy === 'Always');
  const serving = [...pod.containers, ...userNativeSidecars];
  validateServingPorts(serving, objectName);
  validateUserIds(
    [...pod.containers, ...pod.initContainers],
    objectOf(pod.spec.securityContext),
    objectName,
  );
  validateMtlsMode(settings, annotations, objectName);
  validateVolumeNames(pod.spec, objectName);
  const ignore = resolveIgnorePorts(settings, annotations, objectName);

  // Probes of the user's native sidecars are rewritten only when the mesh sidecar starts before
  // them: in the classic layout a rewritten startup probe would wait forever for a sidecar that
  // starts only after every init container.
  const probes = rewriteAllProbes(settings.nativeSidecar ? serving : pod.containers, objectName);
  const initContainer = buildInitContainer({
    settings,
    ignoreIncomingPorts: unique([
      SIDECAR_METRICS_PORT,
      ...ignore.incoming,
      ...(probes.usesHttp || probes.usesHttps
        ? [SIDECAR_HEALTH_HTTP_PORT, SIDECAR_HEALTH_HTTPS_PORT]
        : []),
    ]),
    ignoreOutgoingPorts: unique(ignore.outgoing),
  });
  const sidecar = buildSidecarContainer({
    settings,
    owner,
    containerPorts: servingPortNumbers(serving),
    healthRedirects: probes.redirects,
    usesHttpRedirect: probes.usesHttp,
    usesHttpsRedirect: probes.usesHttps,
    mtlsMode: annotations.mtlsMode,
    clientMaxBodySize: annotations.clientMaxBodySize,
    defaultEgressAllowed: annotations.defaultEgressAllowed,
  });
  const spec = {
    ...pod.spec,
    ...placeContainers(pod, probes.applied, initContainer, sidecar, settings.nativeSidecar),
    volumes: [...arrayOf(pod.spec.volumes), ...buildSidecarVolumes()],
    ...pullSecrets(pod.spec, settings),
  };
  return {
    status: 'injected',
    template: { ...template, metadata: injectedMetadata(pod, owner), spec },
    warnings: annotations.warnings,
  };
}

interface AllProbes {
  /** The container with its probes rewritten, or the container itself. */
  readonly applied: (container: JsonObject) => JsonObject;
  readonly redirects: Readonly<Record<string, JsonObject>>;
  readonly usesHttp: boolean;
  readonly usesHttps: boolean;
}

function rewriteAllProbes(containers: readonly JsonObject[], objectName: string): AllProbes {
  const rewrites = new Map<JsonObject, ProbeRewrite>();
  const redirects: Record<string, JsonObject> = {};
  for (const container of containers) {
    const rewrite = rewriteProbes(container, objectName);
    rewrites.set(container, rewrite);
    Object.assign(redirects, rewrite.redirects);
  }
  const all = [...rewrites.values()];
  return {
    applied: (container) => rewrites.get(container)?.container ?? container,
    redirects,
    usesHttp: all.some((rewrite) => rewrite.usesHttp),
    usesHttps: all.some((rewrite) => rewrite.usesHttps),
  };
}

function placeContainers(
  pod: PodParts,
  applied: (container: JsonObject) => JsonObject,
  initContainer: JsonObject,
  sidecar: JsonObject,
  native: boolean,
): JsonObject {
  const userInit = pod.initContainers.map(applied);
  const userContainers = pod.containers.map(applied);
  if (native) {
    return { initContainers: [initContainer, sidecar, ...userInit], containers: userContainers };
  }
  return { initContainers: [...userInit, initContainer], containers: [...userContainers, sidecar] };
}

function readPod(template: PodTemplate, objectName: string): PodParts {
  const metadata = objectOf(template.metadata);
  const spec = objectOf(template.spec);
  return {
    metadata,
    spec,
    labels: stringMapOf(metadata.labels),
    annotations: stringMapOf(metadata.annotations),
    containers: readContainers(spec, 'containers', objectName),
    initContainers: readContainers(spec, 'initContainers', objectName),
  };
}

function readContainers(spec: JsonObject, field: string, objectName: string): JsonObject[] {
  return arrayOf(spec[field]).map((container, index) => {
    if (!isObject(container)) {
      throw injectionError(objectName, `${field}[${index}] is not an object`);
    }
    return container;
  });
}

function alreadyInjected(pod: PodParts, objectName: string): string | undefined {
  if (pod.annotations[INJECTION_STATUS_ANNOTATION] === INJECTION_STATUS_INJECTED) {
    return `"${objectName}" is already injected (${INJECTION_STATUS_ANNOTATION}: ${INJECTION_STATUS_INJECTED})`;
  }
  const meshContainer = [...pod.containers, ...pod.initContainers]
    .map(nameOf)
    .find((name) => name === SIDECAR_CONTAINER_NAME || name === INIT_CONTAINER_NAME);
  if (meshContainer !== undefined) {
    return `"${objectName}" already has a container named ${meshContainer}`;
  }
  return undefined;
}

function notInjectable(pod: PodParts, objectName: string): string | undefined {
  if (pod.spec.hostNetwork === true) {
    return `"${objectName}" uses hostNetwork: the redirect would capture the node's traffic`;
  }
  if (pod.containers.length === 0) {
    return `"${objectName}" has no containers`;
  }
  if (pod.labels[AUTO_INJECT_LABEL] === AUTO_INJECT_DISABLED) {
    return `"${objectName}" is labelled ${AUTO_INJECT_LABEL}: ${AUTO_INJECT_DISABLED}`;
  }
  return undefined;
}

/**
 * The sidecar's volumes would shadow or clash with user volumes of the same name; and a user
 * container mounting one by name (the mount resolves once the sidecar's volume is added) would
 * read the sidecar's keys and token, and reach its stats socket.
 */
function validateVolumeNames(spec: JsonObject, objectName: string): void {
  const reserved = (name: unknown): boolean =>
    name === IDENTITY_VOLUME_NAME || name === SIDECAR_CONFIG_VOLUME_NAME;
  for (const volume of arrayOf(spec.volumes)) {
    const name = objectOf(volume).name;
    if (reserved(name)) {
      throw injectionError(objectName, `volume name "${String(name)}" is reserved for the sidecar`);
    }
  }
  for (const container of [...arrayOf(spec.initContainers), ...arrayOf(spec.containers)]) {
    for (const mount of arrayOf(objectOf(container).volumeMounts)) {
      const name = objectOf(mount).name;
      if (reserved(name)) {
        throw injectionError(
          objectName,
          `container "${String(objectOf(container).name)}" mounts volume "${String(name)}", which is reserved for the sidecar`,
        );
      }
    }
  }
}

function servingPortNumbers(containers: readonly JsonObject[]): number[] {
  const numbers = containers.flatMap((container) =>
    containerPorts(container).map((port) => port.containerPort as number),
  );
  return unique(numbers).sort((a, b) => a - b);
}

function pullSecrets(spec: JsonObject, settings: InjectionSettings): JsonObject {
  const name = settings.registryKeyName;
  if (name === undefined || name === '') return {};
  const secrets = arrayOf(spec.imagePullSecrets);
  if (secrets.some((secret) => objectOf(secret).name === name)) return {};
  return { imagePullSecrets: [...secrets, { name }] };
}

function injectedMetadata(pod: PodParts, owner: PodOwner): JsonObject {
  return {
    ...pod.metadata,
    labels: {
      ...objectOf(pod.metadata.labels),
      [`${OWNER_LABEL_PREFIX}${owner.kind.toLowerCase()}`]: owner.name,
    },
    annotations: {
      ...objectOf(pod.metadata.annotations),
      [INJECTION_STATUS_ANNOTATION]: INJECTION_STATUS_INJECTED,
    },
  };
}

function unique(values: readonly number[]): number[] {
  return [...new Set(values)];
}
