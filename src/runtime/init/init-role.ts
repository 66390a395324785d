// `run --role init`: the init container of every injected pod. It installs the TCP redirect to
// the sidecar (IPv4, then IPv6 where the namespace has it) and ends; the pod's other containers
// start only after it exits 0. It serves no health probes: it is short-lived, and a probe server
// on the frame's default port could collide with the app's.
//
// UDP: NGINX Service Mesh's injector passes --enable-udp when the mesh enables UDP. This build
// does not intercept UDP yet; the flag is accepted (so injected pods still start) and logged as
// a warning, and UDP keeps flowing directly, outside the mesh.
import type { FlagSpec } from '../../commands/spec';
import {
  buildRedirectModel,
  IGNORE_INCOMING_PORTS_FLAG,
  IGNORE_OUTGOING_PORTS_FLAG,
  printRestoreInput,
} from '../../render/iptables-rules';
import type { IpFamily, RedirectModel, RedirectOptions } from '../../render/iptables-rules';
import type { Logger } from '../role/log';
import type { RoleDefinition, RoleOptions, RunningRole } from '../role/role';
import { applyRedirectRules, IptablesUnavailableError } from './apply-redirect';
import type { Netfilter } from './netfilter';

export const INIT_ROLE_NAME = 'init';

const ENABLE_UDP_FLAG = 'enable-udp';
const DRY_RUN_FLAG = 'dry-run';

export const initRoleFlags: readonly FlagSpec[] = [
  {
    long: IGNORE_INCOMING_PORTS_FLAG,
    type: 'ints',
    usage: 'inbound TCP ports that reach the app without the proxy (8887 always)',
  },
  {
    long: IGNORE_OUTGOING_PORTS_FLAG,
    type: 'ints',
    usage: 'outbound TCP ports that bypass the proxy (53 always)',
  },
  {
    long: ENABLE_UDP_FLAG,
    type: 'bool',
    usage: 'accepted for compatibility: UDP is not intercepted yet',
  },
  {
    long: DRY_RUN_FLAG,
    type: 'bool',
    usage: 'print the rules the init role would apply, and apply nothing',
  },
];

export interface InitOptions extends RedirectOptions {
  readonly dryRun: boolean;
}

export function readInitOptions(options: RoleOptions): InitOptions {
  return {
    ignoreIncomingPorts: options.ints(IGNORE_INCOMING_PORTS_FLAG),
    ignoreOutgoingPorts: options.ints(IGNORE_OUTGOING_PORTS_FLAG),
    enableUdp: options.bool(ENABLE_UDP_FLAG),
    dryRun: options.bool(DRY_RUN_FLAG),
  };
}

/** Both families' rules as `--dry-run` prints them: IPv4, then IPv6, each under a header. */
export function formatDryRun(model: RedirectModel): string {
  return [
    '# IPv4: iptables-restore --noflush',
    printRestoreInput(model.ipv4),
    '# IPv6: ip6tables-restore --noflush',
    printRestoreInput(model.ipv6),
  ].join('\n');
}

export function createInitRole(netfilter: Netfilter): RoleDefinition {
  return {
    name: INIT_ROLE_NAME,
    description: "installs the pod's traffic redirect to the sidecar, then exits",
    flags: initRoleFlags,
    probes: false,
    start: async ({ logger, options, out }) => {
      const init = readInitOptions(options);
      const model = buildRedirectModel(init);
      for (const warning of model.warnings) logger.warn(warning);
      if (init.dryRun) {
        out.write(formatDryRun(model));
      } else {
        await installRedirect(model, netfilter, logger);
      }
      return finished();
    },
  };
}

async function installRedirect(
  model: RedirectModel,
  netfilter: Netfilter,
  logger: Logger,
): Promise<void> {
  await applyFamily(model, 'ipv4', netfilter, logger);
  const ipv6 = await netfilter.ipv6State();
  if (ipv6 !== 'enabled') {
    logger.warn('IPv6 redirect skipped', { reason: `IPv6 is ${ipv6} in this network namespace` });
    return;
  }
  try {
    await applyFamily(model, 'ipv6', netfilter, logger);
  } catch (error) {
    if (!(error instanceof IptablesUnavailableError)) throw error;
    logger.warn('IPv6 redirect skipped', { reason: error.message });
  }
}

async function applyFamily(
  model: RedirectModel,
  family: IpFamily,
  netfilter: Netfilter,
  logger: Logger,
): Promise<void> {
  const applied = await applyRedirectRules(model[family], netfilter);
  logger.info('applied redirect rules', { ...applied });
}

/** The role's work is done by the time start resolves. */
function finished(): RunningRole {
  return {
    readiness: () => ({ ready: true }),
    stop: () => Promise.resolve(),
    done: Promise.resolve(),
  };
}
