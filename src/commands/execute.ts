// Parses argv against the declared command tree with commander and runs the chosen action.
// commander's own help and error texts are replaced by NGINX Service Mesh's (cobra's) wording.
import { Command, CommanderError, Option } from 'commander';
import { UnknownCommandError, UsageError } from '../errors';
import { renderHelp } from '../render/help';
import type { Io } from '../runtime/io';
import type { ActionContext, CommandSpec, FlagSpec, FlagValue } from './spec';
import { flagValueProblem, parseFlagValue } from './spec';
import { commandPath, suggestCommands, toCommandHelp, walkArgv } from './tree';

interface State {
  exitCode: number;
}

/** Runs argv (without the program name) and resolves to the action's exit code. */
export async function executeCommand(
  root: CommandSpec,
  argv: readonly string[],
  io: Io,
): Promise<number> {
  const state: State = { exitCode: 0 };
  // Flags of any command may fail to parse before commander reaches that command, so error
  // hints name the command the whole command line is aimed at.
  const targetPath = (): string => commandPath(walkArgv(root, argv).chain);
  const program = buildCommand(root, [root], { io, state, targetPath });
  try {
    await program.parseAsync(boolAssignments(root, argv, targetPath), { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
    throw translateCommanderError(error, targetPath());
  }
  return state.exitCode;
}

interface BuildContext {
  readonly io: Io;
  readonly state: State;
  readonly targetPath: () => string;
}

/**
 * The command of spec, ready to parse: its flags, its action, and its subcommands by name only.
 * A subcommand is built when commander dispatches to it (preSubcommand, before it parses), so a
 * command line pays for the commands it names and not for every flag of the tree.
 */
function buildCommand(
  spec: CommandSpec,
  chain: readonly CommandSpec[],
  build: BuildContext,
  command = new Command(spec.name),
): Command {
  const { io, state } = build;
  command
    .exitOverride()
    .helpCommand(false)
    .helpOption('-h, --help')
    .allowExcessArguments(true)
    .configureOutput({
      writeOut: (text) => io.out.write(text),
      writeErr: (text) => io.err.write(text),
      outputError: () => undefined,
      // Our help has its own layout; asking commander's defaults would touch the process streams.
      getOutHelpWidth: () => 80,
      getErrHelpWidth: () => 80,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .configureHelp({ formatHelp: () => renderHelp(toCommandHelp(chain)) })
    .argument('[args...]');
  const path = commandPath(chain);
  const options = new Map<string, Option>();
  for (const flag of spec.flags ?? []) {
    const option = toOption(flag, build.targetPath);
    options.set(flag.long, option);
    command.addOption(option);
    // A bool that defaults to true can only be turned off as --flag=false (rewritten to --no-flag).
    if (flag.type === 'bool' && flag.defaultValue === true) {
      command.addOption(new Option(`--no-${flag.long}`).hideHelp());
    }
  }
  const unbuilt = new Map<Command, CommandSpec>();
  for (const sub of spec.subcommands ?? []) {
    const child = new Command(sub.name);
    for (const alias of sub.aliases ?? []) child.alias(alias);
    unbuilt.set(child, sub);
    command.addCommand(child, { hidden: sub.hidden === true });
  }
  command.hook('preSubcommand', (_self, child) => {
    const sub = unbuilt.get(child);
    if (sub === undefined) return;
    unbuilt.delete(child);
    buildCommand(sub, [...chain, sub], build, child);
  });
  command.action(async (args: string[], _opts: unknown, self: Command) => {
    const context = toActionContext(chain, args, self);
    const isGroup = (spec.subcommands ?? []).length > 0;
    if (isGroup && args.length > 0) throw unknownCommand(spec, path, args[0] ?? '');
    if (spec.action === undefined) {
      io.out.write(renderHelp(toCommandHelp(chain)));
      return;
    }
    checkArgs(spec, path, args);
    const result = await spec.action(context);
    state.exitCode = typeof result === 'number' ? result : 0;
  });
  return command;
}

/** Every bool flag of the tree by long name, and whether it defaults to true. */
function boolFlags(spec: CommandSpec, into = new Map<string, boolean>()): Map<string, boolean> {
  for (const flag of spec.flags ?? []) {
    if (flag.type === 'bool') into.set(flag.long, flag.defaultValue === true);
  }
  for (const sub of spec.subcommands ?? []) boolFlags(sub, into);
  return into;
}

/**
 * pflag accepts --flag=true and --flag=false for bools; commander does not. They become --flag
 * and --no-flag (or nothing, when false is the default anyway) before parsing. Arguments after
 * "--" are left alone.
 */
function boolAssignments(root: CommandSpec, argv: readonly string[], path: () => string): string[] {
  const bools = boolFlags(root);
  const end = argv.indexOf('--');
  return argv.flatMap((arg, index) => {
    const match = /^--([\w-]+)=(.*)$/.exec(arg);
    const name = match?.[1] ?? '';
    if ((end !== -1 && index > end) || match === null || !bools.has(name)) return [arg];
    const value = match[2] ?? '';
    if (value === 'true') return [`--${name}`];
    if (value === 'false') return bools.get(name) === true ? [`--no-${name}`] : [];
    throw new UsageError(
      `invalid argument ${JSON.stringify(value)} for "--${name}" flag: strconv.ParseBool: parsing ${JSON.stringify(value)}: invalid syntax`,
      path(),
    );
  });
}

function checkArgs(spec: CommandSpec, path: string, args: readonly string[]): void {
  const max = spec.args?.max ?? 0;
  if (args.length <= max) return;
  if (max === 0) {
    throw new UsageError(`"${path}" takes no arguments, got ${JSON.stringify(args[0])}`, path);
  }
  throw new UsageError(`accepts at most ${max} arg(s), received ${args.length}`, path);
}

function unknownCommand(spec: CommandSpec, path: string, word: string): UnknownCommandError {
  const suggestions = suggestCommands(spec, word);
  const suffix =
    suggestions.length === 0 ? '' : `\n\nDid you mean this?\n\t${suggestions.join('\n\t')}\n`;
  return new UnknownCommandError(`unknown command "${word}" for "${path}"${suffix}`, path);
}

function flagLabel(flag: FlagSpec): string {
  return flag.short === undefined ? `--${flag.long}` : `-${flag.short}, --${flag.long}`;
}

function toOption(flag: FlagSpec, currentPath: () => string): Option {
  const names = flag.short === undefined ? `--${flag.long}` : `-${flag.short}, --${flag.long}`;
  const option = new Option(flag.type === 'bool' ? names : `${names} <value>`, flag.usage);
  if (flag.hidden === true) option.hideHelp();
  if (flag.defaultValue !== undefined) option.default(flag.defaultValue);
  if (flag.type !== 'bool') {
    option.argParser((text: string, previous: FlagValue) => {
      const problem = flagValueProblem(flag, text);
      if (problem !== undefined) {
        throw new UsageError(
          `invalid argument ${JSON.stringify(text)} for "${flagLabel(flag)}" flag: ${problem}`,
          currentPath(),
        );
      }
      return parseFlagValue(flag, text, previous);
    });
  }
  return option;
}

function attributeName(long: string): string {
  return long.replace(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

function toActionContext(
  chain: readonly CommandSpec[],
  args: readonly string[],
  self: Command,
): ActionContext {
  const values = self.optsWithGlobals<Record<string, unknown>>();
  const value = (name: string): unknown => values[attributeName(name)];
  const known = new Set(chain.flatMap((spec) => (spec.flags ?? []).map((flag) => flag.long)));
  const read = (name: string): unknown => {
    if (!known.has(name))
      throw new Error(`flag --${name} is not declared for ${commandPath(chain)}`);
    return value(name);
  };
  return {
    path: commandPath(chain),
    args,
    string: (name) => {
      const text = read(name);
      return typeof text === 'string' ? text : '';
    },
    bool: (name) => read(name) === true,
    duration: (name) => Number(read(name) ?? 0),
    int: (name) => Number(read(name) ?? 0),
    ints: (name) => (read(name) as readonly number[] | undefined) ?? [],
    strings: (name) => (read(name) as readonly string[] | undefined) ?? [],
    changed: (name) => {
      read(name);
      return self.getOptionValueSourceWithGlobals(attributeName(name)) === 'cli';
    },
  };
}

/** commander's errors in cobra's words; all of them are usage errors. */
export function translateCommanderError(error: CommanderError, path: string): UsageError {
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? '';
  switch (error.code) {
    case 'commander.unknownOption':
      return new UsageError(
        quoted.startsWith('--')
          ? `unknown flag: ${quoted}`
          : `unknown shorthand flag: '${quoted.slice(1, 2)}' in ${quoted}`,
        path,
      );
    case 'commander.optionMissingArgument': {
      const long = /--[\w-]+/.exec(quoted)?.[0] ?? quoted;
      return new UsageError(`flag needs an argument: ${long}`, path);
    }
    default:
      return new UsageError(error.message.replace(/^error: /, ''), path);
  }
}
