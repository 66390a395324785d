import { MeshctlError, describeError } from '../../errors';
import { CLI_NAME, CONTROLLER_NAME, CONTROLLER_VERSION_PORT } from '../../manifests/constants';
import type { BuildInfo } from '../../render/versions';
import {
  renderClientVersion,
  renderComponentVersions,
  renderVersionsUnavailable,
} from '../../render/versions';
import type { Io } from '../../runtime/io';
import type { KubeAccess } from '../../runtime/kube/access';

export interface VersionOptions {
  readonly kubeconfig: string;
  readonly namespace: string;
  readonly timeoutMs: number;
}

export interface VersionDeps {
  readonly io: Io;
  readonly build: BuildInfo;
  readonly kube: KubeAccess;
}

/**
 * Prints the client's version, then asks the controller for the control plane's versions. An
 * unreachable mesh is reported, not failed: the client version alone is still an answer.
 */
export async function runVersion(options: VersionOptions, deps: VersionDeps): Promise<void> {
  deps.io.out.write(renderClientVersion(CLI_NAME, deps.build));
  try {
    const versions = await fetchComponentVersions(options, deps.kube);
    deps.io.out.write(renderComponentVersions(versions));
  } catch (error) {
    deps.io.err.write(
      renderVersionsUnavailable(options.namespace, options.kubeconfig, describeError(error)),
    );
  }
}

export async function fetchComponentVersions(
  options: VersionOptions,
  kube: KubeAccess,
): Promise<Record<string, string[]>> {
  const path = `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/services/${CONTROLLER_NAME}:${CONTROLLER_VERSION_PORT}/proxy/version`;
  const response = await kube.getRaw(
    { kubeconfig: options.kubeconfig, timeoutMs: options.timeoutMs },
    path,
  );
  if (response.status !== 200) throw new MeshctlError(`bad status code: ${response.status}`);
  return parseVersions(response.body);
}

/** The controller answers {"<component>": ["<version>", …]}; anything else is an error. */
export function parseVersions(body: string): Record<string, string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new MeshctlError('error decoding API response: not JSON', { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MeshctlError('error decoding API response: expected an object of version lists');
  }
  const result: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
      throw new MeshctlError(`error decoding API response: versions of "${name}" are not strings`);
    }
    result[name] = value;
  }
  return result;
}
