// `deploy`: validate every flag at once, then either print the manifests (--dry-run, no cluster
// needed) or apply them step by step, waiting for each component, and remove what was applied if
// anything fails (--cleanup-on-error, on by default).
import { InterruptedError, MeshctlError } from '../../errors';
import { CLI_NAME } from '../../manifests/constants';
import type { InstallStep } from '../../manifests/install/plan';
import { buildGatewayApiCrds } from '../../manifests/gateway-api/crds';
import { buildInstallPlan } from '../../manifests/install/plan';
import type { DeployInput } from '../../manifests/mesh-config/deploy-input';
import { buildMeshConfig } from '../../manifests/mesh-config/model';
import type { FullMeshConfig, MeshSecrets } from '../../manifests/mesh-config/types';
import { upstreamCaFilePaths } from '../../manifests/mesh-config/upstream-ca';
import { loadGatewayApiRelease } from '../../runtime/install/gateway-api';
import type { Installation } from '../../runtime/install/inventory';
import { findInstallation, helmReleaseArgument } from '../../runtime/install/inventory';
import { removalSteps } from '../../runtime/install/remove';
import type { KubeClient } from '../../runtime/kube/client';
import type { InputReader } from '../inject/run-inject';
import type { GlobalOptions } from '../global-flags';
import type { LifecycleDeps, SignalScope } from '../lifecycle';
import {
  base64,
  connectClient,
  planSteps,
  printPlan,
  runSteps,
  signalScope,
  waitContext,
} from '../lifecycle';

export interface DeployDeps extends LifecycleDeps {
  readonly input: InputReader;
  readonly version: string;
}

export interface DeployOptions {
  readonly input: DeployInput;
  readonly dryRun: boolean;
  readonly cleanupOnError: boolean;
  readonly budgetMs: number;
}

/** The files the flags name, by path; unreadable ones are left out (the model reports them). */
async function readDeployFiles(
  input: DeployInput,
  reader: InputReader,
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const read = async (path: string): Promise<string | undefined> => {
    if (path === '' || files.has(path)) return files.get(path);
    try {
      const text = await reader.readFile(path);
      files.set(path, text);
      return text;
    } catch {
      return undefined;
    }
  };
  await read(input.registryKey);
  const conf = await read(input.mtlsUpstreamCaConf);
  for (const path of conf === undefined ? [] : upstreamCaFilePaths(conf)) await read(path);
  return files;
}

/** The validated configuration, or every problem with the flags at once. */
export async function meshConfigFromFlags(
  input: DeployInput,
  namespace: string,
  deps: DeployDeps,
): Promise<{ config: FullMeshConfig; secrets: MeshSecrets }> {
  const outcome = buildMeshConfig(input, {
    namespace,
    files: await readDeployFiles(input, deps.input),
  });
  if ('problems' in outcome) throw new MeshctlError(outcome.problems.join('\n'));
  for (const warning of outcome.warnings) {
    deps.io.err.write(`${deps.io.styles.warning('Warning:')} ${warning}\n`);
  }
  return { config: outcome.config, secrets: outcome.secrets };
}

/** Why a mesh cannot be deployed over what is there, or undefined when the way is clear. */
export function existingMeshProblem(
  installation: Installation,
  namespace: string,
): string | undefined {
  if (installation.namespaceTerminating) {
    return `namespace '${namespace}' is being deleted: wait until it is gone, then deploy again`;
  }
  const [foreign] = installation.foreignCrds;
  if (foreign !== undefined) {
    return `NGINX Service Mesh not detected, but '${foreign}' CRD already exists. Please remove before deploying NGINX Service Mesh`;
  }
  if (installation.helmRelease !== undefined) {
    const release = helmReleaseArgument(installation.helmRelease);
    return `mesh already exists: found NGINX Service Mesh installed with Helm (release '${release}') in namespace '${namespace}'. To remove it, run "helm uninstall ${release} -n ${namespace}"`;
  }
  if (
    installation.controller ||
    installation.namespaceOwned ||
    installation.clusterObjects.length > 0 ||
    installation.bundles.length > 0
  ) {
    return `mesh already exists: found existing NGINX Service Mesh in namespace '${namespace}'. To remove the existing mesh, run "${CLI_NAME} remove"`;
  }
  if (installation.crds.length > 0) {
    return `mesh already exists: NGINX Service Mesh CRDs detected: '${installation.crds.join(', ')}'. Delete before deploying the mesh`;
  }
  if (installation.namespaceExists) {
    return `namespace '${namespace}' already exists and is not a mesh namespace: deploy creates its own; choose another with -n/--namespace`;
  }
  return undefined;
}

async function cleanUp(
  client: KubeClient,
  namespace: string,
  deps: DeployDeps,
  scope: SignalScope,
  budgetMs: number,
): Promise<void> {
  deps.io.err.write('Cleaning up NGINX Service Mesh resources...\n');
  const context = await waitContext(deps, client, budgetMs, scope.cleanupSignal);
  const installation = await findInstallation(client, namespace);
  await runSteps(context.progress, removalSteps(installation, namespace, [], context));
  deps.io.err.write('All NGINX Service Mesh resources have been deleted.\n');
}

function failure(error: unknown, cleaned: boolean): MeshctlError {
  if (error instanceof InterruptedError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const hint =
    (error instanceof MeshctlError ? error.hint : undefined) ??
    (cleaned
      ? undefined
      : `Run "${CLI_NAME} remove" to delete any lingering NGINX Service Mesh resources, then deploy again.`);
  return new MeshctlError(`failed to deploy NGINX Service Mesh: ${message}`, {
    cause: error,
    ...(hint === undefined ? {} : { hint }),
  });
}

async function applyPlan(
  plan: readonly InstallStep[],
  client: KubeClient,
  deps: DeployDeps,
  scope: SignalScope,
  budgetMs: number,
): Promise<void> {
  const context = await waitContext(deps, client, budgetMs, scope.signal);
  const started = deps.clock.now().getTime();
  await runSteps(context.progress, planSteps(plan, context));
  const seconds = ((deps.clock.now().getTime() - started) / 1000).toFixed(1);
  context.progress.note(`Control plane ready in ${seconds}s.`);
}

export async function runDeploy(
  options: DeployOptions,
  globals: GlobalOptions,
  deps: DeployDeps,
): Promise<void> {
  const flagged = await meshConfigFromFlags(options.input, globals.namespace, deps);
  const { config } = flagged;
  const secrets = flagged.secrets;
  const plan = buildInstallPlan(
    {
      config,
      version: deps.version,
      secrets,
      upstreamCa: secrets.upstreamAuthority !== undefined,
      gatewayApiCrds: buildGatewayApiCrds(await loadGatewayApiRelease()),
    },
    base64,
  );
  if (options.dryRun) {
    await printPlan(deps.io, plan);
    return;
  }
  const client = await connectClient(deps, globals);
  const problem = existingMeshProblem(
    await findInstallation(client, globals.namespace),
    globals.namespace,
  );
  if (problem !== undefined) throw new MeshctlError(problem);
  deps.io.out.write('Deploying NGINX Service Mesh...\n');
  const scope = signalScope(deps, 'deploying');
  try {
    await applyPlan(plan, client, deps, scope, options.budgetMs);
  } catch (error) {
    let cleaned = false;
    if (options.cleanupOnError && !scope.cleanupSignal.aborted) {
      try {
        await cleanUp(client, globals.namespace, deps, scope, options.budgetMs);
        cleaned = true;
      } catch (cleanupError) {
        deps.io.err.write(
          `Cleanup did not finish: ${cleanupError instanceof Error ? cleanupError.message : String(cleanupError)}\n`,
        );
      }
    }
    throw failure(error, cleaned);
  } finally {
    scope.close();
  }
  deps.io.out.write(
    'All resources created. Testing the connection to the Service Mesh control plane...\n',
  );
  deps.io.out.write('Connected to the NGINX Service Mesh API successfully.\n');
  deps.io.out.write('NGINX Service Mesh is running.\n');
}
