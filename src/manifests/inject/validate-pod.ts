// Pre-checks on a pod template before injection. Each throws an InjectionError naming the object
// and the offending value; none of them changes anything.
import {
  IGNORE_INCOMING_PORTS_ANNOTATION,
  IGNORE_OUTGOING_PORTS_ANNOTATION,
  SIDECAR_RESERVED_PORT_FIRST,
  SIDECAR_RESERVED_PORT_LAST,
  SIDECAR_UID,
} from '../constants';
import type { PodAnnotations } from './annotations';
import { invalidPort, isValidPort } from './annotations';
import { injectionError } from './errors';
import type { JsonObject } from './json';
import { arrayOf, isObject, objectOf, stringOf } from './json';
import type { InjectionSettings } from './types';

const ALLOWED_PROTOCOLS: ReadonlySet<unknown> = new Set([undefined, '', 'TCP', 'UDP']);

/** The declared ports of a container (entries that are not objects are ignored). */
export function containerPorts(container: JsonObject): readonly JsonObject[] {
  return arrayOf(container.ports).filter(isObject);
}

/**
 * Checks the ports of the containers that serve traffic while the pod runs (app containers and
 * the user's own native sidecars): TCP or UDP only, one number per pod (NGINX Service Mesh keyed
 * on the number alone), valid numbers, and none the sidecar listens on.
 */
export function validateServingPorts(containers: readonly JsonObject[], objectName: string): void {
  const seen = new Set<number>();
  for (const container of containers) {
    for (const port of containerPorts(container)) {
      const protocol = port.protocol;
      if (!ALLOWED_PROTOCOLS.has(protocol)) {
        throw injectionError(
          objectName,
          `unsupported protocol ${String(protocol)}; container protocol must be TCP`,
        );
      }
      const number = port.containerPort;
      if (typeof number !== 'number' || !isValidPort(number)) {
        throw invalidPort(String(number), `container "${nameOf(container)}"`, objectName);
      }
      if (number >= SIDECAR_RESERVED_PORT_FIRST && number <= SIDECAR_RESERVED_PORT_LAST) {
        throw injectionError(
          objectName,
          `container port ${number} of container "${nameOf(container)}" is reserved by the sidecar (${SIDECAR_RESERVED_PORT_FIRST}-${SIDECAR_RESERVED_PORT_LAST})`,
        );
      }
      if (seen.has(number)) {
        throw injectionError(
          objectName,
          `${number} container port number already defined; duplicate ports are not supported`,
        );
      }
      seen.add(number);
    }
  }
}

/**
 * Rejects user containers that would run as the sidecar's UID: the redirect exempts that UID, so
 * their traffic would silently bypass the mesh.
 */
export function validateUserIds(
  containers: readonly JsonObject[],
  podSecurityContext: JsonObject,
  objectName: string,
): void {
  const podUser = podSecurityContext.runAsUser;
  for (const container of containers) {
    const user = objectOf(container.securityContext).runAsUser ?? podUser;
    if (user === SIDECAR_UID) {
      throw injectionError(
        objectName,
        `container "${nameOf(container)}" runs as UID ${SIDECAR_UID}, which is reserved for the sidecar: its traffic would bypass the mesh`,
      );
    }
  }
}

export interface IgnorePorts {
  readonly incoming: readonly number[];
  readonly outgoing: readonly number[];
}

/**
 * The ports the redirect leaves alone. They come from the command line (settings) or from the
 * annotations; when both give a list for one direction, the two must hold the same ports.
 */
export function resolveIgnorePorts(
  settings: InjectionSettings,
  annotations: PodAnnotations,
  objectName: string,
): IgnorePorts {
  return {
    incoming: resolveDirection(
      settings.ignoreIncomingPorts,
      annotations.ignoreIncomingPorts,
      ['--ignore-incoming-ports', IGNORE_INCOMING_PORTS_ANNOTATION],
      objectName,
    ),
    outgoing: resolveDirection(
      settings.ignoreOutgoingPorts,
      annotations.ignoreOutgoingPorts,
      ['--ignore-outgoing-ports', IGNORE_OUTGOING_PORTS_ANNOTATION],
      objectName,
    ),
  };
}

function resolveDirection(
  fromFlag: readonly number[] | undefined,
  fromAnnotation: readonly number[] | undefined,
  [flag, annotation]: readonly [string, string],
  objectName: string,
): readonly number[] {
  for (const port of fromFlag ?? []) {
    if (!isValidPort(port)) throw invalidPort(String(port), flag, objectName);
  }
  const given = fromFlag !== undefined && fromFlag.length > 0 ? fromFlag : undefined;
  if (given === undefined) return fromAnnotation ?? [];
  if (fromAnnotation === undefined) return given;
  if (portSetKey(given) !== portSetKey(fromAnnotation)) {
    throw injectionError(
      objectName,
      `ignore ports in annotation do not match those provided as arguments: ${annotation} is "${fromAnnotation.join(',')}", ${flag} is "${given.join(',')}"`,
    );
  }
  return given;
}

function portSetKey(ports: readonly number[]): string {
  return [...new Set(ports)].sort((a, b) => a - b).join(',');
}

/** Under a strict global mode, a pod may not ask for a weaker one. */
export function validateMtlsMode(
  settings: InjectionSettings,
  annotations: PodAnnotations,
  objectName: string,
): void {
  const mode = annotations.mtlsMode;
  if (settings.mtlsMode === 'strict' && mode !== undefined && mode !== 'strict') {
    throw injectionError(
      objectName,
      `global mtls mode is 'strict'; mtls annotation for '${objectName}' cannot conflict`,
    );
  }
}

export function nameOf(container: JsonObject): string {
  return stringOf(container.name) ?? '';
}
