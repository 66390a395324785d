// `status`: is the mesh's controller up? One look at its Deployment, as NGINX Service Mesh.
import { MeshctlError, describeError } from '../../errors';
import { CONTROLLER_NAME } from '../../manifests/constants';
import type { Io } from '../../runtime/io';
import type { KubeAccess } from '../../runtime/kube/access';
import { getJson } from '../../runtime/kube/get-json';
import type { GlobalOptionsReader } from '../global-flags';
import type { CommandSpec } from '../spec';

export interface StatusDeps {
  readonly io: Io;
  readonly kube: KubeAccess;
}

export function statusCommand(globals: GlobalOptionsReader, deps: StatusDeps): CommandSpec {
  return {
    name: 'status',
    short: 'Check connection to NGINX Service Mesh',
    long: 'Check connection to NGINX Service Mesh.',
    action: async (context) => {
      const { kubeconfig, namespace, timeoutMs } = globals(context);
      deps.io.out.write('Checking NGINX Service Mesh setup....\n');
      let deployment: { status?: { readyReplicas?: number } };
      try {
        deployment = await getJson(
          deps.kube,
          { kubeconfig, timeoutMs },
          `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${CONTROLLER_NAME}`,
        );
      } catch (error) {
        throw new MeshctlError(describeError(error), {
          cause: error,
          hint: `Is NGINX Service Mesh deployed in namespace "${namespace}"? Use -n to name another namespace.`,
        });
      }
      if ((deployment.status?.readyReplicas ?? 0) < 1) {
        throw new MeshctlError('mesh controller unavailable', {
          hint: `Check the ${CONTROLLER_NAME} pods and their logs in namespace "${namespace}".`,
        });
      }
      deps.io.out.write('Connection to NGINX Service Mesh was successful.\n');
    },
  };
}
