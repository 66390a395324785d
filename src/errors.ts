// Typed errors. Every error the CLI can end with is one of these; src/main.ts alone turns them
// into exit codes and text.

export interface MeshctlErrorOptions {
  readonly cause?: unknown;
  /** What the user can do about it, printed on its own line after the message. */
  readonly hint?: string;
}

/** A failure of the requested operation: exit code 1. */
export class MeshctlError extends Error {
  readonly hint: string | undefined;

  constructor(message: string, options: MeshctlErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/**
 * The command line itself is wrong (unknown flag, bad flag value, wrong arguments): exit code 2,
 * followed by a pointer to the command's help.
 */
export class UsageError extends MeshctlError {
  constructor(
    message: string,
    /** The command path whose help the user should read, e.g. "nginx-meshctl version". */
    readonly commandPath: string,
    options: MeshctlErrorOptions = {},
  ) {
    super(message, options);
  }
}

/**
 * An unknown subcommand. NGINX Service Mesh (cobra) exits 1 here, and scripts written against
 * it rely on that, so this is not a UsageError.
 */
export class UnknownCommandError extends MeshctlError {
  constructor(
    message: string,
    readonly commandPath: string,
  ) {
    super(message);
  }
}

/** The user stopped the operation (Ctrl-C, or answered no): exit code 130. */
export class InterruptedError extends MeshctlError {}

/** Exit codes, in one place. */
export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Formats an unknown thrown value as one line, without a stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
