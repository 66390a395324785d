// The whole CLI as a function: argv and dependencies in, exit code out. Errors become exit
// codes here and nowhere else.
import {
  ExitCode,
  InterruptedError,
  MeshctlError,
  UnknownCommandError,
  UsageError,
} from './errors';
import { writeCompletions, COMPLETE_REQUEST } from './commands/completion';
import { executeCommand } from './commands/execute';
import type { CliDeps } from './commands/root';
import { buildRootCommand } from './commands/root';
import type { Io } from './runtime/io';

export type MainDeps = CliDeps;

export async function main(argv: readonly string[], deps: MainDeps): Promise<number> {
  const root = buildRootCommand(deps);
  try {
    if (argv[0] === COMPLETE_REQUEST) {
      writeCompletions(root, argv.slice(1), deps.io);
      return ExitCode.ok;
    }
    return await executeCommand(root, argv, deps.io);
  } catch (error) {
    return reportError(error, deps.io);
  }
}

function reportError(error: unknown, io: Io): number {
  const prefix = io.styles.error('Error:');
  if (error instanceof UnknownCommandError) {
    io.err.write(`${prefix} ${error.message}\nRun '${error.commandPath} --help' for usage.\n`);
    return ExitCode.error;
  }
  if (error instanceof UsageError) {
    io.err.write(`${prefix} ${error.message}\nRun '${error.commandPath} --help' for usage.\n`);
    return ExitCode.usage;
  }
  if (error instanceof MeshctlError) {
    io.err.write(
      `${prefix} ${error.message}\n${error.hint === undefined ? '' : `${error.hint}\n`}`,
    );
    return error instanceof InterruptedError ? ExitCode.interrupted : ExitCode.error;
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.err.write(`${prefix} internal error: ${detail}\n`);
  return ExitCode.error;
}
