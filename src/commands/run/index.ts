// Hidden `run --role <role>`: the entry point of every in-cluster process.
import { UsageError } from '../../errors';
import {
  DEFAULT_HEALTH_PROBE_BIND_ADDRESS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
} from '../../manifests/constants';
import type { Clock } from '../../runtime/clock';
import type { Io } from '../../runtime/io';
import { parseBindAddress } from '../../runtime/role/bind-address';
import { LOG_LEVELS, isLogLevel } from '../../runtime/role/log';
import type { RoleDefinition, RoleRegistry } from '../../runtime/role/role';
import type { SignalSource } from '../../runtime/signals';
import type { BuildInfo } from '../../render/versions';
import type { ActionContext, CommandSpec, FlagSpec } from '../spec';

export interface RunDeps {
  readonly io: Io;
  readonly clock: Clock;
  readonly signals: SignalSource;
  readonly roles: RoleRegistry;
  readonly build: BuildInfo;
}

const frameFlags: readonly FlagSpec[] = [
  { long: 'role', type: 'string', usage: 'component to run' },
  {
    long: 'log-level',
    type: 'string',
    usage: 'minimum level of log lines',
    defaultValue: 'info',
    choices: LOG_LEVELS,
  },
  {
    long: 'health-probe-bind-address',
    type: 'string',
    usage: 'address of the /healthz and /readyz endpoints',
    defaultValue: DEFAULT_HEALTH_PROBE_BIND_ADDRESS,
  },
  {
    long: 'shutdown-timeout',
    type: 'duration',
    usage: 'how long to wait for a clean stop after SIGTERM',
    defaultValue: DEFAULT_SHUTDOWN_TIMEOUT_MS,
  },
];

export function runCommand(deps: RunDeps): CommandSpec {
  return {
    name: 'run',
    short: 'Run an NGINX Service Mesh component',
    long: 'Run an NGINX Service Mesh component (controller, registrar, metrics, agent or init) in this process.',
    hidden: true,
    flags: withRoleFlags(frameFlags, [...deps.roles.values()]),
    action: async (context) => {
      const name = context.string('role');
      if (name === '') throw new UsageError('required flag(s) "role" not set', context.path);
      const role = deps.roles.get(name);
      if (role === undefined) {
        const known = [...deps.roles.keys()].sort();
        throw new UsageError(
          known.length === 0
            ? `unknown role "${name}": this executable provides no roles`
            : `unknown role "${name}": expected one of: ${known.join(', ')}`,
          context.path,
        );
      }
      rejectForeignFlags(role, [...deps.roles.values()], context);
      const address = context.string('health-probe-bind-address');
      const bind = parseBindAddress(address);
      if (bind === undefined) {
        throw new UsageError(
          `invalid argument "${address}" for "--health-probe-bind-address" flag: expected host:port or :port`,
          context.path,
        );
      }
      const level = context.string('log-level');
      // The frame pulls in the HTTP server; only role processes load it.
      const runRole =
        role.loadFrame === undefined
          ? (await import('../../runtime/role/frame')).runRole
          : await role.loadFrame();
      return runRole(
        role,
        {
          logLevel: isLogLevel(level) ? level : 'info',
          healthHost: bind.host,
          healthPort: bind.port,
          shutdownTimeoutMs: context.duration('shutdown-timeout'),
          roleOptions: withRoleDefaults(role, context),
        },
        {
          log: deps.io.err,
          out: deps.io.out,
          outStream: deps.io.outStream,
          clock: deps.clock,
          signals: deps.signals,
          version: deps.build.version,
        },
      );
    },
  };
}

/** The frame's flags, then every role's own, each name once (the first declaration wins). */
function withRoleFlags(
  frame: readonly FlagSpec[],
  roles: readonly RoleDefinition[],
): readonly FlagSpec[] {
  const flags = [...frame];
  const names = new Set(frame.map((flag) => flag.long));
  for (const role of [...roles].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    for (const flag of role.flags ?? []) {
      if (names.has(flag.long)) continue;
      names.add(flag.long);
      flags.push(flag);
    }
  }
  return flags;
}

/**
 * The flags as the role sees them. Two roles may declare the same flag with different defaults
 * (--api-bind-address is :8080 for metrics and :8443 for the registrar), while `run` declares
 * each name once: a flag left unset reads as this role's own default.
 */
function withRoleDefaults(role: RoleDefinition, context: ActionContext): ActionContext {
  const defaults = new Map(
    (role.flags ?? [])
      .filter((flag) => flag.defaultValue !== undefined)
      .map((flag) => [flag.long, flag.defaultValue] as const),
  );
  const own = <T>(name: string, read: (name: string) => T): T => {
    const value = defaults.get(name);
    return value === undefined || context.changed(name) ? read(name) : (value as T);
  };
  return {
    ...context,
    string: (name) => own(name, (flag) => context.string(flag)),
    bool: (name) => own(name, (flag) => context.bool(flag)),
    duration: (name) => own(name, (flag) => context.duration(flag)),
    int: (name) => own(name, (flag) => context.int(flag)),
    ints: (name) => own(name, (flag) => context.ints(flag)),
    strings: (name) => own(name, (flag) => context.strings(flag)),
  };
}

/** A flag that only other roles declare is a usage error when it is set for this one. */
function rejectForeignFlags(
  role: RoleDefinition,
  roles: readonly RoleDefinition[],
  context: ActionContext,
): void {
  const own = new Set([...frameFlags, ...(role.flags ?? [])].map((flag) => flag.long));
  for (const other of roles) {
    for (const flag of other.flags ?? []) {
      if (own.has(flag.long) || !context.changed(flag.long)) continue;
      throw new UsageError(
        `flag --${flag.long} is not accepted by role "${role.name}"`,
        context.path,
      );
    }
  }
}
