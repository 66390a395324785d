// `remove`: the mesh off the cluster, sidecars turned transparent first. Idempotent: it finishes
// an interrupted deploy or remove, and says so when there is nothing to remove.
import type { ProxiedWorkload } from '../../runtime/install/remove';
import { findProxiedWorkloads, removalSteps } from '../../runtime/install/remove';
import type { GlobalOptionsReader } from '../global-flags';
import type { LifecycleDeps } from '../lifecycle';
import {
  TIMEOUT_NOTE,
  budgetOf,
  confirm,
  connectClient,
  requireInstallation,
  runSteps,
  signalScope,
  waitContext,
} from '../lifecycle';
import type { CommandSpec } from '../spec';
import { ENVIRONMENTS } from '../../manifests/mesh-config/deploy-flags';

function proxiedNote(proxied: readonly ProxiedWorkload[]): string {
  if (proxied.length === 0) return '';
  const rows = proxied.map((each) => `\t${each.namespace}\t${each.resource}`).join('\n');
  return [
    'NOTE: The following resources still contain the sidecar proxy:',
    '',
    '\tNAMESPACE\tRESOURCE',
    rows,
    '',
    "Their sidecars now pass traffic through untouched. To remove them, re-roll the resources with 'kubectl rollout restart <resource>/<name>', or delete and re-create the pods.",
    '',
  ].join('\n');
}

export function removeCommand(globals: GlobalOptionsReader, deps: LifecycleDeps): CommandSpec {
  return {
    name: 'remove',
    short: 'Remove NGINX Service Mesh from your Kubernetes cluster',
    long: [
      'Remove NGINX Service Mesh from your Kubernetes cluster.',
      '- Removes the NGINX Service Mesh control plane, its CRDs and its namespace.',
      '- Sidecar proxies are made transparent first; re-roll the workloads to remove them.',
      '',
      TIMEOUT_NOTE,
    ].join('\n'),
    flags: [
      { long: 'yes', short: 'y', type: 'bool', usage: 'answer yes for confirmation of removal' },
      {
        long: 'environment',
        type: 'string',
        usage: 'environment the mesh was deployed into (deprecated and ignored)',
        choices: ['', ...ENVIRONMENTS],
        hidden: true,
      },
    ],
    action: async (context) => {
      const options = globals(context);
      const { namespace } = options;
      const client = await connectClient(deps, options);
      const installation = await requireInstallation(client, namespace);
      await confirm(
        deps,
        context.bool('yes'),
        `Preparing to remove NGINX Service Mesh from namespace "${namespace}". This will make all sidecar proxies transparent.`,
      );
      const proxied = await findProxiedWorkloads(client);
      deps.io.out.write(`Removing NGINX Service Mesh from namespace "${namespace}"...\n`);
      const scope = signalScope(deps, 'removing');
      try {
        const wait = await waitContext(deps, client, budgetOf(context, options), scope.signal);
        const started = deps.clock.now().getTime();
        await runSteps(wait.progress, removalSteps(installation, namespace, proxied, wait));
        const seconds = ((deps.clock.now().getTime() - started) / 1000).toFixed(1);
        wait.progress.note(`Removed in ${seconds}s.`);
      } finally {
        scope.close();
      }
      deps.io.out.write(`NGINX Service Mesh removed successfully.\n${proxiedNote(proxied)}`);
    },
  };
}
