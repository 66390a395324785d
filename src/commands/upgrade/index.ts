// `upgrade`: re-applies this executable's control plane with the stored configuration; the work
// itself is in run-upgrade.ts, loaded only when an upgrade runs.
import type { GlobalOptionsReader } from '../global-flags';
import { TIMEOUT_NOTE } from '../lifecycle';
import type { CommandSpec } from '../spec';
import type { UpgradeDeps } from './run-upgrade';

export type { UpgradeDeps } from './run-upgrade';

export function upgradeCommand(globals: GlobalOptionsReader, deps: UpgradeDeps): CommandSpec {
  return {
    name: 'upgrade',
    short: 'Upgrade NGINX Service Mesh',
    long: [
      'Upgrade NGINX Service Mesh to the version of this executable, keeping its configuration,',
      'including MeshConfig changes made with kubectl, and every policy.',
      '',
      TIMEOUT_NOTE,
    ].join('\n'),
    flags: [
      { long: 'yes', short: 'y', type: 'bool', usage: 'answer yes for confirmation of upgrade' },
      {
        long: 'registry-server',
        type: 'string',
        usage: 'override the registry server the images are pulled from',
      },
      {
        long: 'image-tag',
        type: 'string',
        usage: `tag of the images to run (default: the version of this executable)`,
      },
      {
        long: 'allow-downgrade',
        type: 'bool',
        usage: 'allow running an older version than the one deployed',
      },
      {
        long: 'dry-run',
        type: 'bool',
        usage: 'print the upgraded manifests and change nothing',
        hidden: true,
      },
    ],
    action: async (context) => {
      const { runUpgrade } = await import('./run-upgrade');
      await runUpgrade(context, globals(context), deps);
    },
  };
}
