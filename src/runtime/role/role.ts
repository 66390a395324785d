// What every in-cluster role (controller, registrar, metrics, agent, init) provides to the frame
// that runs it.
import type { Logger } from './log';

export type Readiness =
  { readonly ready: true } | { readonly ready: false; readonly reason: string };

export interface RoleContext {
  readonly logger: Logger;
  /** Aborted when the process has been asked to stop. */
  readonly signal: AbortSignal;
}

export interface RunningRole {
  /** Whether the role can serve; drives /readyz. */
  readiness(): Readiness;
  /** Stops the role; the frame bounds how long this may take. */
  stop(): Promise<void>;
  /** Settles when the role ends on its own (a fatal error rejects it). */
  readonly done: Promise<void>;
}

export interface RoleDefinition {
  readonly name: string;
  readonly description: string;
  start(context: RoleContext): Promise<RunningRole>;
}

/** The roles compiled into this executable, by name. */
export type RoleRegistry = ReadonlyMap<string, RoleDefinition>;
