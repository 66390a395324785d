// `deploy`: the control plane onto a cluster. NGINX Service Mesh's flags, public and hidden.
import { GATEWAY_API_VERSION } from '../../manifests/constants';
import { buildDeployFlags } from '../../manifests/mesh-config/deploy-flags';
import { deployInputFromFlags } from '../../manifests/mesh-config/deploy-input';
import type { GlobalOptionsReader } from '../global-flags';
import { budgetOf, TIMEOUT_NOTE } from '../lifecycle';
import type { CommandSpec } from '../spec';
import type { DeployDeps } from './run-deploy';

export function deployCommand(globals: GlobalOptionsReader, deps: DeployDeps): CommandSpec {
  return {
    name: 'deploy',
    short: 'Deploys NGINX Service Mesh into your Kubernetes cluster',
    long: [
      'Deploys NGINX Service Mesh into your Kubernetes cluster.',
      'This command installs the following resources into your Kubernetes cluster by default:',
      '- NGINX Mesh Controller: The Control Plane of the Service Mesh.',
      '- NGINX Metrics API: Serves SMI-formatted metrics.',
      '- Registrar: Issues certificates to enable mTLS.',
      '- NATS: Connects the Control Plane to the sidecar proxies.',
      `- The Gateway API ${GATEWAY_API_VERSION} CRDs (standard channel), for HTTPRoutes on Services, each only`,
      '  where the cluster lacks it; remove deletes only those. --dry-run prints them all, after a',
      '  comment: leave out any the cluster has before piping to kubectl apply.',
      '',
      TIMEOUT_NOTE,
    ].join('\n'),
    flags: buildDeployFlags(deps.version),
    action: async (context) => {
      const options = globals(context);
      // The install manifests and the configuration model load when a deploy runs.
      const { runDeploy } = await import('./run-deploy');
      await runDeploy(
        {
          input: deployInputFromFlags(context),
          dryRun: context.bool('dry-run'),
          cleanupOnError: context.bool('cleanup-on-error'),
          budgetMs: budgetOf(context, options),
        },
        options,
        deps,
      );
    },
  };
}
