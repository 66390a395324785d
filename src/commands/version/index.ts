import type { CommandSpec } from '../spec';
import type { GlobalOptionsReader } from '../global-flags';
import type { VersionDeps } from './run-version';
import { runVersion } from './run-version';

export function versionCommand(globals: GlobalOptionsReader, deps: VersionDeps): CommandSpec {
  return {
    name: 'version',
    short: 'Display NGINX Service Mesh version',
    long: 'Display NGINX Service Mesh version.\nWill contact the mesh for version and timeout if unable to connect.',
    action: async (context) => {
      const { kubeconfig, namespace, timeoutMs } = globals(context);
      await runVersion({ kubeconfig, namespace, timeoutMs }, deps);
    },
  };
}
