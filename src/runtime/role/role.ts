// What every in-cluster role (controller, registrar, metrics, agent, init) provides to the frame
// that runs it.
import type { ActionContext } from '../../commands/spec';
import type { FlagSpec } from '../../manifests/flag-spec';
import type { ByteSink, Writer } from '../io';
import type { Logger } from './log';
import type { runRole } from './frame';

export type Readiness =
  { readonly ready: true } | { readonly ready: false; readonly reason: string };

/** Typed values of the `run` flags; reading a flag `run` does not declare throws. */
export type RoleOptions = Pick<
  ActionContext,
  'string' | 'bool' | 'duration' | 'int' | 'ints' | 'strings' | 'changed'
>;

export interface RoleContext {
  readonly logger: Logger;
  /** Aborted when the process has been asked to stop. */
  readonly signal: AbortSignal;
  /** The parsed flags, the role's own (RoleDefinition.flags) and the frame's. */
  readonly options: RoleOptions;
  /** stdout: data only (a dry run's output); logs go through the logger. */
  readonly out: Writer;
  /**
   * The same stdout as a stream that says when it is full, for data relayed from another
   * process (the sidecar's access log); absent where the caller gives none.
   */
  readonly outStream?: () => ByteSink;
  /** Version of this executable (without a leading "v"). */
  readonly version: string;
}

export interface RunningRole {
  /** Whether the role is doing its job, or what it waits for; drives /readyz. */
  readiness(): Readiness;
  /**
   * Whether the role is alive, or why it is wedged; drives /healthz, whose failures make the
   * kubelet restart the container. Absent: alive while the process answers.
   */
  liveness?(): Readiness;
  /**
   * Whether requests through the role's Service can be served, when that is less than its whole
   * job (the controller's webhook serves while NATS is away); drives /readyz/serving, the
   * readiness probe of such a role, while /readyz keeps telling the whole truth. Absent: /readyz.
   */
  serving?(): Readiness;
  /** Stops the role; the frame bounds how long this may take. */
  stop(): Promise<void>;
  /** Settles when the role ends on its own (a fatal error rejects it). */
  readonly done: Promise<void>;
}

/**
 * A role that serves until it is stopped: `done` settles once `stop`'s cleanup has run. Roles
 * with dependencies pass the readiness that says whether they work (ready by default).
 */
export function runningUntilStopped(
  cleanup: () => Promise<void>,
  readiness: () => Readiness = () => ({ ready: true }),
  liveness?: () => Readiness,
  serving?: () => Readiness,
): RunningRole {
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    readiness,
    ...(liveness === undefined ? {} : { liveness }),
    ...(serving === undefined ? {} : { serving }),
    done,
    stop: async () => {
      await cleanup();
      finish();
    },
  };
}

export interface RoleDefinition {
  readonly name: string;
  readonly description: string;
  /** Flags only this role accepts; `run` declares them, and rejects them for other roles. */
  readonly flags?: readonly FlagSpec[];
  /**
   * false for short-lived roles (init): the frame serves no /healthz and /readyz, so nothing
   * binds --health-probe-bind-address in a pod whose app may use that port. Default true.
   */
  readonly probes?: boolean;
  /**
   * Loads the frame this role runs in; by default the control plane's. A role whose code the
   * executable carries apart (the agent) loads the frame from there, so that the frame's classes
   * exist once in its process.
   */
  readonly loadFrame?: () => Promise<RunRole>;
  start(context: RoleContext): Promise<RunningRole>;
}

/** The frame's entry point (./frame). */
export type RunRole = typeof runRole;

/** The roles compiled into this executable, by name. */
export type RoleRegistry = ReadonlyMap<string, RoleDefinition>;
