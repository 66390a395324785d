// What `upgrade` does: re-applies this executable's control plane with the stored configuration.
// CRDs are updated in place (policies survive), MeshConfig edits made with kubectl are kept, the
// Secrets deploy created are left as they are, and the control plane rolls and is waited for.
// Loaded when an upgrade runs, not at every start of the executable.
import { MeshctlError } from '../../errors';
import {
  CONTROLLER_NAME,
  MESH_CONFIG_MAP_KEY,
  MESH_CONFIG_MAP_NAME,
  MESH_CONFIG_RESOURCE_NAME,
  UPSTREAM_CA_SECRET_NAME,
} from '../../manifests/constants';
import { buildGatewayApiCrds } from '../../manifests/gateway-api/crds';
import { buildInstallPlan } from '../../manifests/install/plan';
import { VERSION_LABEL } from '../../manifests/install/objects';
import { buildMeshConfig } from '../../manifests/mesh-config/model';
import { compareVersions, upgradeInput } from '../../manifests/mesh-config/stored';
import type { FullMeshConfig } from '../../manifests/mesh-config/types';
import { loadGatewayApiRelease } from '../../runtime/install/gateway-api';
import { helmReleaseArgument, helmReleaseOf } from '../../runtime/install/inventory';
import type { KubeClient, KubeObject } from '../../runtime/kube/client';
import type { GlobalOptions } from '../global-flags';
import type { LifecycleDeps } from '../lifecycle';
import {
  base64,
  budgetOf,
  confirm,
  connectClient,
  planSteps,
  printPlan,
  runSteps,
  signalScope,
  waitContext,
} from '../lifecycle';
import type { ActionContext } from '../spec';

export interface UpgradeDeps extends LifecycleDeps {
  readonly version: string;
}

interface Stored {
  readonly config: FullMeshConfig;
  readonly upstreamCa: boolean;
  readonly deployedVersion: string | undefined;
}

/** Helm owns the mesh's objects and its record of their values: upgrading them here would fight it. */
export function helmOwnedError(namespace: string, release: string): MeshctlError {
  const name = helmReleaseArgument(release);
  return new MeshctlError(
    `NGINX Service Mesh in namespace '${namespace}' is managed by Helm (release '${name}'): upgrade it with "helm upgrade ${name} <chart> -n ${namespace}" instead`,
  );
}

async function readStored(
  client: KubeClient,
  namespace: string,
  context: ActionContext,
  deps: UpgradeDeps,
): Promise<Stored> {
  const ns = encodeURIComponent(namespace);
  const controller = await client.get<KubeObject>(
    `/apis/apps/v1/namespaces/${ns}/deployments/${CONTROLLER_NAME}`,
  );
  const release = helmReleaseOf(controller);
  if (release !== undefined) throw helmOwnedError(namespace, release);
  const configMap = await client.get<{ data?: Record<string, string> }>(
    `/api/v1/namespaces/${ns}/configmaps/${MESH_CONFIG_MAP_NAME}`,
  );
  const json = configMap?.data?.[MESH_CONFIG_MAP_KEY];
  if (controller === undefined || json === undefined) {
    throw new MeshctlError(
      `NGINX Service Mesh installation not found in namespace '${namespace}'`,
      {
        hint: 'Use -n/--namespace to name the namespace the mesh was deployed into.',
      },
    );
  }
  let storedConfig: unknown;
  try {
    storedConfig = JSON.parse(json);
  } catch (error) {
    throw new MeshctlError(
      `ConfigMap ${namespace}/${MESH_CONFIG_MAP_NAME}: ${MESH_CONFIG_MAP_KEY} is not JSON: ${(error as Error).message}`,
    );
  }
  const meshConfig = await client.get<{ spec?: unknown }>(
    `/apis/nsm.nginx.com/v1alpha2/namespaces/${ns}/meshconfigs/${MESH_CONFIG_RESOURCE_NAME}`,
  );
  const registryServer = context.string('registry-server');
  const imageTag = context.string('image-tag');
  const input = upgradeInput(storedConfig, meshConfig?.spec, {
    imageTag: imageTag === '' ? deps.version : imageTag,
    ...(registryServer === '' ? {} : { registryServer }),
  });
  const outcome = buildMeshConfig(input, { namespace, files: new Map() });
  if ('problems' in outcome) {
    throw new MeshctlError(
      `the stored configuration cannot be upgraded:\n${outcome.problems.join('\n')}`,
      {
        hint: `Fix MeshConfig ${MESH_CONFIG_RESOURCE_NAME} with kubectl edit, then upgrade again.`,
      },
    );
  }
  const keyName = (storedConfig as { registry?: { registryKeyName?: unknown } }).registry
    ?.registryKeyName;
  const config: FullMeshConfig = {
    ...outcome.config,
    registry: {
      ...outcome.config.registry,
      registryKeyName: typeof keyName === 'string' ? keyName : '',
    },
  };
  const upstream = await client.get(`/api/v1/namespaces/${ns}/secrets/${UPSTREAM_CA_SECRET_NAME}`);
  return {
    config,
    upstreamCa: upstream !== undefined,
    deployedVersion: controller.metadata?.labels?.[VERSION_LABEL],
  };
}

export async function runUpgrade(
  context: ActionContext,
  options: GlobalOptions,
  deps: UpgradeDeps,
): Promise<void> {
  const { namespace } = options;
  const client = await connectClient(deps, options);
  const stored = await readStored(client, namespace, context, deps);
  if (
    stored.deployedVersion !== undefined &&
    compareVersions(deps.version, stored.deployedVersion) < 0 &&
    !context.bool('allow-downgrade')
  ) {
    throw new MeshctlError(
      `refusing to downgrade NGINX Service Mesh from v${stored.deployedVersion} to v${deps.version}`,
      { hint: 'Pass --allow-downgrade to do it anyway.' },
    );
  }
  const plan = buildInstallPlan(
    {
      config: stored.config,
      version: deps.version,
      upstreamCa: stored.upstreamCa,
      gatewayApiCrds: buildGatewayApiCrds(await loadGatewayApiRelease()),
    },
    base64,
  );
  if (context.bool('dry-run')) {
    await printPlan(deps.io, plan);
    return;
  }
  await confirm(
    deps,
    context.bool('yes'),
    `Preparing to upgrade NGINX Service Mesh in namespace "${namespace}" from v${stored.deployedVersion ?? 'unknown'} to v${deps.version}.`,
  );
  deps.io.out.write(`Upgrading NGINX Service Mesh in namespace "${namespace}".\n`);
  const scope = signalScope(deps, 'upgrading');
  try {
    const wait = await waitContext(deps, client, budgetOf(context, options), scope.signal);
    await runSteps(
      wait.progress,
      planSteps(
        plan.filter((step) => step.id !== 'namespace'),
        wait,
      ),
    );
  } catch (error) {
    throw new MeshctlError(
      `upgrade did not finish: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
        hint: 'Every step is safe to repeat: run upgrade again once the cause is fixed.',
      },
    );
  } finally {
    scope.close();
  }
  deps.io.out.write(
    "Upgrade complete.\nTo upgrade sidecars, re-roll resources using 'kubectl rollout restart <resource>/<name>'.\n",
  );
}
