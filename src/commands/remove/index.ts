// `remove`: the mesh off the cluster, sidecars turned transparent first. Idempotent: it finishes
// an interrupted deploy or remove, and says so when there is nothing to remove. It claims only
// what the sidecars confirmed: one that did not stops the removal unless --force is given.
import { formatDuration } from '../../manifests/duration';
import type { ProxiedWorkload, TransparencyOutcome } from '../../runtime/install/remove';
import {
  TRANSPARENT_WAIT_MS,
  findProxiedWorkloads,
  removalSteps,
} from '../../runtime/install/remove';
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

/** What the sidecars confirmed, as the sentence under the table of proxied workloads. */
export function transparencySentence(outcome: TransparencyOutcome | undefined): string {
  const unconfirmed = outcome?.unconfirmed.length ?? 0;
  const running = outcome?.pods.length ?? 0;
  if (outcome === undefined || running === 0) return 'None of their pods runs a sidecar now.';
  if (unconfirmed === 0)
    return 'Their sidecars confirmed that they pass traffic through untouched.';
  const some = `The sidecars of ${unconfirmed} ${unconfirmed === 1 ? 'pod' : 'pods'} did not confirm pass-through (see the warning above) and keep the configuration they last applied`;
  return unconfirmed === running
    ? `${some}.`
    : `${some}; the other ${running - unconfirmed} confirmed that they pass traffic through untouched.`;
}

/** The note after a removal: workloads that still carry the sidecar, and what they do now. */
export function proxiedNote(
  proxied: readonly ProxiedWorkload[],
  outcome: TransparencyOutcome | undefined,
): string {
  if (proxied.length === 0) return '';
  const rows = proxied.map((each) => `\t${each.namespace}\t${each.resource}`).join('\n');
  return [
    'NOTE: The following resources still contain the sidecar proxy:',
    '',
    '\tNAMESPACE\tRESOURCE',
    rows,
    '',
    `${transparencySentence(outcome)} To remove them, re-roll the resources with 'kubectl rollout restart <resource>/<name>', or delete and re-create the pods.`,
    '',
  ].join('\n');
}

export function removeCommand(globals: GlobalOptionsReader, deps: LifecycleDeps): CommandSpec {
  return {
    name: 'remove',
    short: 'Remove NGINX Service Mesh from your Kubernetes cluster',
    long: [
      'Remove NGINX Service Mesh from your Kubernetes cluster.',
      '- Removes the NGINX Service Mesh control plane, its CRDs and its namespace, and the Gateway',
      '  API CRDs deploy installed (with every route made since); ones that were there before stay.',
      '- Sidecar proxies are made transparent first; re-roll the workloads to remove them.',
      `- Each running sidecar must confirm pass-through to the controller within ${formatDuration(TRANSPARENT_WAIT_MS)}; if one does`,
      '  not, remove names its pod, keeps the control plane and fails, unless --force is given.',
      '- With --force, such a sidecar keeps the mesh configuration it last applied (mTLS and access',
      '  control included) and cannot renew its certificate: mTLS with its pod fails once that',
      '  expires (--mtls-svid-ttl, 1h by default). One that never got a configuration stays',
      '  transparent, or closed under strict mTLS. Re-create those pods.',
      '',
      TIMEOUT_NOTE,
    ].join('\n'),
    flags: [
      { long: 'yes', short: 'y', type: 'bool', usage: 'answer yes for confirmation of removal' },
      {
        long: 'force',
        type: 'bool',
        usage: 'remove even when sidecars did not confirm pass-through',
      },
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
      let transparency: TransparencyOutcome | undefined;
      try {
        const wait = await waitContext(deps, client, budgetOf(context, options), scope.signal);
        const started = deps.clock.now().getTime();
        const steps = removalSteps(installation, namespace, proxied, wait, {
          force: context.bool('force'),
          onTransparency: (outcome) => {
            transparency = outcome;
          },
        });
        await runSteps(wait.progress, steps);
        const seconds = ((deps.clock.now().getTime() - started) / 1000).toFixed(1);
        wait.progress.note(`Removed in ${seconds}s.`);
      } finally {
        scope.close();
      }
      deps.io.out.write(
        `NGINX Service Mesh removed successfully.\n${proxiedNote(proxied, transparency)}`,
      );
    },
  };
}
