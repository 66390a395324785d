// The command tree. A command appears here only once it works.
import { CLI_NAME } from '../manifests/constants';
import type { BuildInfo } from '../render/versions';
import type { Clock } from '../runtime/clock';
import type { Io } from '../runtime/io';
import type { KubeAccess } from '../runtime/kube/access';
import type { Prompter } from '../runtime/prompt';
import type { RoleRegistry } from '../runtime/role/role';
import type { SignalSource } from '../runtime/signals';
import { completionCommand } from './completion';
import { deployCommand } from './deploy';
import { configCommand } from './config';
import { defaultKubeconfig, globalFlags, readGlobalOptions } from './global-flags';
import { helpCommand } from './help';
import { injectCommand } from './inject';
import type { InputReader } from './inject/run-inject';
import { runCommand } from './run';
import { removeCommand } from './remove';
import { servicesCommand } from './services';
import { statusCommand } from './status';
import { supportpkgCommand } from './supportpkg';
import { topCommand } from './top';
import type { CommandSpec } from './spec';
import { toCommandHelp } from './tree';
import { renderHelp } from '../render/help';
import { upgradeCommand } from './upgrade';
import { versionCommand } from './version';

export interface CliDeps {
  readonly io: Io;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly homeDir: string;
  readonly build: BuildInfo;
  readonly kube: KubeAccess;
  readonly roles: RoleRegistry;
  readonly signals: SignalSource;
  readonly clock: Clock;
  /** Confirmation questions (remove, upgrade). */
  readonly prompt: Prompter;
  /** Reads files (inject's manifests, deploy's key and CA files), stdin and inject's URLs. */
  readonly input: InputReader;
}

export function buildRootCommand(deps: CliDeps): CommandSpec {
  const root: CommandSpec = {
    name: CLI_NAME,
    short: 'nginx-meshctl is the CLI utility for the NGINX Service Mesh control plane',
    long: 'nginx-meshctl is the CLI utility for the NGINX Service Mesh control plane.\nRequires a connection to a Kubernetes cluster via a kubeconfig.',
    flags: globalFlags(defaultKubeconfig(deps.env, deps.homeDir)),
    subcommands: [
      completionCommand(deps.io),
      configCommand(readGlobalOptions, deps),
      deployCommand(readGlobalOptions, { ...deps, version: deps.build.version }),
      helpCommand(() => root, deps.io),
      injectCommand(readGlobalOptions, {
        io: deps.io,
        input: deps.input,
        clientVersion: deps.build.version,
        kube: deps.kube,
      }),
      removeCommand(readGlobalOptions, deps),
      runCommand(deps),
      servicesCommand(readGlobalOptions, deps),
      statusCommand(readGlobalOptions, deps),
      supportpkgCommand(readGlobalOptions, { ...deps, cwd: () => process.cwd() }),
      topCommand(readGlobalOptions, deps),
      upgradeCommand(readGlobalOptions, { ...deps, version: deps.build.version }),
      versionCommand(readGlobalOptions, deps),
    ],
    action: () => {
      deps.io.out.write(renderHelp(toCommandHelp([root])));
      return Promise.resolve();
    },
  };
  return root;
}
