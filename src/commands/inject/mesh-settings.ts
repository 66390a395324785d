// Injection settings from a deployed mesh's configuration (ConfigMap meshconfig, key
// meshconfig.json, NGINX Service Mesh's format). Pure.
import { MeshctlError } from '../../errors';
import type { ImagePullPolicy, InjectionSettings, MtlsMode } from '../../manifests/inject/types';
import { MTLS_MODES } from '../../manifests/mesh-config/deploy-flags';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringField(object: Json, key: string): string | undefined {
  const value = object[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

const PULL_POLICIES: readonly string[] = ['Always', 'IfNotPresent', 'Never'];
const MESH_MTLS_MODES: readonly string[] = MTLS_MODES;

/**
 * Overlays what the mesh configuration says on the defaults. Fields it does not set keep their
 * default; a value of the wrong type or outside its enumeration is an error naming the field.
 */
export function settingsFromMeshConfig(
  json: string,
  defaults: InjectionSettings,
): InjectionSettings {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new MeshctlError(`mesh configuration: meshconfig.json is not JSON: ${String(error)}`, {
      cause: error,
    });
  }
  if (!isObject(parsed))
    throw new MeshctlError('mesh configuration: meshconfig.json is not an object');
  const registry = isObject(parsed.registry) ? parsed.registry : {};
  const mtls = isObject(parsed.mtls) ? parsed.mtls : {};
  const pullPolicy = stringField(registry, 'imagePullPolicy') ?? defaults.imagePullPolicy;
  if (!PULL_POLICIES.includes(pullPolicy)) {
    throw new MeshctlError(`mesh configuration: invalid registry.imagePullPolicy "${pullPolicy}"`);
  }
  const mode = stringField(mtls, 'mode') ?? defaults.mtlsMode;
  if (!MESH_MTLS_MODES.includes(mode))
    throw new MeshctlError(`mesh configuration: invalid mtls.mode "${mode}"`);
  return {
    ...defaults,
    meshNamespace: stringField(parsed, 'namespace') ?? defaults.meshNamespace,
    sidecarImage: stringField(registry, 'sidecarImage') ?? defaults.sidecarImage,
    initImage: stringField(registry, 'sidecarInitImage') ?? defaults.initImage,
    imagePullPolicy: pullPolicy as ImagePullPolicy,
    registryKeyName: stringField(registry, 'registryKeyName') ?? defaults.registryKeyName,
    mtlsMode: mode as MtlsMode,
    enableUdp: parsed.enableUDP === true,
  };
}
