// `config`: the mesh's full configuration, as stored at deploy time (ConfigMap meshconfig).
import { MeshctlError, describeError } from '../../errors';
import { MESH_CONFIG_MAP_KEY, MESH_CONFIG_MAP_NAME } from '../../manifests/constants';
import type { Io } from '../../runtime/io';
import type { KubeAccess } from '../../runtime/kube/access';
import { getJson } from '../../runtime/kube/get-json';
import type { GlobalOptionsReader } from '../global-flags';
import { outputFlag, printDocument } from '../output';
import type { CommandSpec } from '../spec';

export interface ConfigDeps {
  readonly io: Io;
  readonly kube: KubeAccess;
}

async function fetchMeshConfig(
  deps: ConfigDeps,
  kubeconfig: string,
  namespace: string,
  timeoutMs: number,
): Promise<unknown> {
  let configMap: { data?: Record<string, string> };
  try {
    configMap = await getJson(
      deps.kube,
      { kubeconfig, timeoutMs },
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${MESH_CONFIG_MAP_NAME}`,
    );
  } catch (error) {
    throw new MeshctlError(
      `unable to get mesh config: error getting mesh ConfigMap: ${describeError(error)}`,
      {
        cause: error,
      },
    );
  }
  const text = configMap.data?.[MESH_CONFIG_MAP_KEY];
  if (text === undefined) {
    throw new MeshctlError(
      `unable to get mesh config: ConfigMap ${MESH_CONFIG_MAP_NAME} in namespace "${namespace}" has no ${MESH_CONFIG_MAP_KEY}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new MeshctlError(
      `unable to get mesh config: ${MESH_CONFIG_MAP_KEY} is not JSON: ${describeError(error)}`,
    );
  }
}

export function configCommand(globals: GlobalOptionsReader, deps: ConfigDeps): CommandSpec {
  return {
    name: 'config',
    short: 'Display the NGINX Service Mesh configuration',
    long: 'Display the NGINX Service Mesh configuration.',
    flags: [outputFlag(['json', 'yaml'])],
    action: async (context) => {
      const { kubeconfig, namespace, timeoutMs } = globals(context);
      const config = await fetchMeshConfig(deps, kubeconfig, namespace, timeoutMs);
      await printDocument(deps.io, context.string('output'), config);
    },
  };
}
