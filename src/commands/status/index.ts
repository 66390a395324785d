// `status`: is the mesh up? NGINX Service Mesh looked at its controller only; here every
// control-plane component is listed, ready against desired, with its version, and any component
// that is not ready makes the command fail.
import { MeshctlError, describeError } from '../../errors';
import { CONTROLLER_NAME, PART_OF_LABEL, PART_OF_VALUE } from '../../manifests/constants';
import { VERSION_LABEL } from '../../manifests/install/objects';
import type { ComponentStatus } from '../../render/status';
import { isHealthy, renderStatusTable, statusDocument } from '../../render/status';
import type { Io } from '../../runtime/io';
import type { KubeAccess } from '../../runtime/kube/access';
import { getJson } from '../../runtime/kube/get-json';
import type { GlobalOptionsReader } from '../global-flags';
import { outputFlag, printDocument } from '../output';
import type { CommandSpec } from '../spec';

export interface StatusDeps {
  readonly io: Io;
  readonly kube: KubeAccess;
}

interface DeploymentStatus {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: { replicas?: number };
  status?: { readyReplicas?: number };
}

function componentOf(deployment: DeploymentStatus): ComponentStatus {
  return {
    name: deployment.metadata?.name ?? '',
    ready: deployment.status?.readyReplicas ?? 0,
    desired: deployment.spec?.replicas ?? 1,
    version: deployment.metadata?.labels?.[VERSION_LABEL] ?? '',
  };
}

export function statusCommand(globals: GlobalOptionsReader, deps: StatusDeps): CommandSpec {
  return {
    name: 'status',
    short: 'Check connection to NGINX Service Mesh',
    long: 'Check connection to NGINX Service Mesh: every control-plane component, ready against desired replicas, with its version.',
    flags: [outputFlag(['table', 'json', 'yaml'])],
    action: async (context) => {
      const { kubeconfig, namespace, timeoutMs } = globals(context);
      const output = context.string('output');
      const target = { kubeconfig, timeoutMs };
      const ns = encodeURIComponent(namespace);
      if (output === 'table') deps.io.out.write('Checking NGINX Service Mesh setup....\n');
      let components: ComponentStatus[];
      try {
        const controller = await getJson<DeploymentStatus>(
          deps.kube,
          target,
          `/apis/apps/v1/namespaces/${ns}/deployments/${CONTROLLER_NAME}`,
        );
        const selector = encodeURIComponent(`${PART_OF_LABEL}=${PART_OF_VALUE}`);
        const list = await getJson<{ items: DeploymentStatus[] }>(
          deps.kube,
          target,
          `/apis/apps/v1/namespaces/${ns}/deployments?labelSelector=${selector}`,
        );
        const others = list.items.filter((each) => each.metadata?.name !== CONTROLLER_NAME);
        components = [controller, ...others]
          .map(componentOf)
          .sort((a, b) => a.name.localeCompare(b.name));
      } catch (error) {
        throw new MeshctlError(describeError(error), {
          cause: error,
          hint: `Is NGINX Service Mesh deployed in namespace "${namespace}"? Use -n to name another namespace.`,
        });
      }
      if (output === 'table') {
        deps.io.out.write(renderStatusTable(components));
      } else {
        await printDocument(deps.io, output, statusDocument(components));
      }
      const controller = components.find((each) => each.name === CONTROLLER_NAME);
      if (controller === undefined || !isHealthy(controller)) {
        throw new MeshctlError('mesh controller unavailable', {
          hint: `Check the ${CONTROLLER_NAME} pods and their logs in namespace "${namespace}".`,
        });
      }
      const unhealthy = components.filter((each) => !isHealthy(each));
      if (unhealthy.length > 0) {
        throw new MeshctlError(
          `mesh components unavailable: ${unhealthy.map((each) => `${each.name} (${each.ready}/${each.desired} ready)`).join(', ')}`,
          { hint: `Check their pods and logs in namespace "${namespace}".` },
        );
      }
      if (output === 'table') {
        deps.io.out.write('Connection to NGINX Service Mesh was successful.\n');
      }
    },
  };
}
