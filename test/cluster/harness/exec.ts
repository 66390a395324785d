// Runs the system tools the test cluster is built with (ip, iptables, sysctl). Effects.
//
// Contract: a command never goes through a shell (arguments are passed as they are), never runs
// longer than its timeout (it is killed, and the call fails), and a failure always says which
// command failed, how, and what it printed on stderr, because the harness's errors surface in
// test reports where that is the only clue.
import { execFile } from 'node:child_process';
import type { ExecFileException } from 'node:child_process';

/** Long enough for iptables-restore of a few hundred services; short enough to fail a test run. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 15_000;

/** Bounds what a command may print; iptables-save of a test cluster is far below this. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export interface CommandOptions {
  /** Written to the command's stdin, which is then closed; without it stdin is empty. */
  readonly input?: string;
  readonly timeoutMs?: number;
}

/** A command that could not start, exited non-zero, died from a signal, or ran out of time. */
export class CommandError extends Error {
  override readonly name = 'CommandError';

  constructor(
    readonly commandLine: string,
    /** Exit code; undefined when the command did not exit by itself (signal, timeout, no start). */
    readonly exitCode: number | undefined,
    readonly stderr: string,
    options: { readonly cause: unknown; readonly reason: string },
  ) {
    const detail = stderr.trim() === '' ? '' : `: ${stderr.trim()}`;
    super(`command failed (${options.reason}): ${commandLine}${detail}`, { cause: options.cause });
  }
}

/** Resolves to the command's stdout when it exits 0; rejects with a CommandError otherwise. */
export function runCommand(
  file: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const commandLine = [file, ...args].map(quoteForDisplay).join(' ');
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve(stdout);
          return;
        }
        const exitCode = typeof error.code === 'number' ? error.code : undefined;
        reject(
          new CommandError(commandLine, exitCode, stderr, {
            cause: error,
            reason: describeFailure(error, exitCode, timeoutMs),
          }),
        );
      },
    );
    // A command that exits before reading its input closes the pipe; its exit status is what
    // reports the failure, not the write error.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}

/** runCommand inside a named network namespace (`ip netns exec`). */
export function runInNetns(
  netns: string,
  file: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  return runCommand('ip', ['netns', 'exec', netns, file, ...args], options);
}

function describeFailure(
  error: ExecFileException,
  exitCode: number | undefined,
  timeoutMs: number,
): string {
  if (exitCode !== undefined) return `exit code ${exitCode}`;
  if (error.killed === true) return `timed out after ${timeoutMs} ms`;
  if (typeof error.signal === 'string') return `killed by ${error.signal}`;
  return typeof error.code === 'string' ? error.code : error.message;
}

/** Quotes an argument only when a reader could not tell where it ends. */
function quoteForDisplay(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}
