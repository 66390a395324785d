// Pure queries over the declared command tree: lookup, help models and suggestions.
import type { CommandHelp, FlagHelp } from '../render/help';
import type { CommandSpec, FlagSpec } from './spec';

export interface ArgvWalk {
  /** Commands named by the words, from the root. */
  readonly chain: CommandSpec[];
  /** Flags known at the end of the walk: the root's and those of every command in the chain. */
  readonly flags: FlagSpec[];
  /** A value-taking flag that the last word left waiting for its value. */
  readonly pendingFlag: FlagSpec | undefined;
}

/**
 * Follows a command line as the parser will: flags (and the values of flags that take one) are
 * skipped, known subcommand names descend. Used to point errors and completion at the right
 * command before or without a full parse.
 */
export function walkArgv(root: CommandSpec, words: readonly string[]): ArgvWalk {
  const chain = [root];
  const flags: FlagSpec[] = [...(root.flags ?? [])];
  let pendingFlag: FlagSpec | undefined;
  for (const word of words) {
    if (pendingFlag !== undefined) {
      pendingFlag = undefined;
      continue;
    }
    if (word.startsWith('-')) {
      const flag = findFlag(flags, word);
      if (flag !== undefined && flag.type !== 'bool' && !word.includes('=')) pendingFlag = flag;
      continue;
    }
    const next = findSubcommand(chain.at(-1) ?? root, word);
    if (next === undefined) continue;
    chain.push(next);
    flags.push(...(next.flags ?? []));
  }
  return { chain, flags, pendingFlag };
}

function findFlag(flags: readonly FlagSpec[], word: string): FlagSpec | undefined {
  const name = word.replace(/=.*$/, '');
  if (name.startsWith('--')) return flags.find((flag) => `--${flag.long}` === name);
  return flags.find((flag) => flag.short !== undefined && `-${flag.short}` === name);
}
import { defaultText, typeName } from './spec';

/** The chain of commands from the root that the words name, stopping at the first non-command. */
export function resolveChain(root: CommandSpec, words: readonly string[]): CommandSpec[] {
  const chain = [root];
  let current = root;
  for (const word of words) {
    const next = findSubcommand(current, word);
    if (next === undefined) break;
    chain.push(next);
    current = next;
  }
  return chain;
}

export function findSubcommand(command: CommandSpec, word: string): CommandSpec | undefined {
  return command.subcommands?.find(
    (sub) => sub.name === word || sub.aliases?.includes(word) === true,
  );
}

export function commandPath(chain: readonly CommandSpec[]): string {
  return chain.map((command) => command.name).join(' ');
}

/** Subcommands a user can see: not hidden, sorted by name as cobra sorts them. */
export function visibleSubcommands(command: CommandSpec): CommandSpec[] {
  return (command.subcommands ?? [])
    .filter((sub) => sub.hidden !== true)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function toFlagHelp(flag: FlagSpec): FlagHelp {
  return {
    short: flag.short,
    long: flag.long,
    typeName: typeName(flag.type),
    usage: flag.usage,
    defaultText: defaultText(flag),
  };
}

function visibleFlags(command: CommandSpec): FlagHelp[] {
  return (command.flags ?? []).filter((flag) => flag.hidden !== true).map(toFlagHelp);
}

/** The help model of the last command in the chain. */
export function toCommandHelp(chain: readonly CommandSpec[]): CommandHelp {
  const root = chain[0];
  const command = chain.at(-1);
  if (root === undefined || command === undefined) throw new Error('empty command chain');
  const path = commandPath(chain);
  const helpFlag: FlagHelp = {
    short: 'h',
    long: 'help',
    typeName: '',
    usage: `help for ${command.name}`,
  };
  const args = command.args === undefined ? '' : ` ${command.args.usage}`;
  return {
    path,
    useLine:
      command.action === undefined
        ? undefined
        : `${path}${args}${command.noFlagsInUseLine === true ? '' : ' [flags]'}`,
    short: command.short,
    long: command.long,
    aliases: command.aliases ?? [],
    example: command.example,
    subcommands: visibleSubcommands(command).map((sub) => ({ name: sub.name, short: sub.short })),
    localFlags: [helpFlag, ...visibleFlags(command)],
    globalFlags: command === root ? [] : visibleFlags(root),
  };
}

/** cobra's "Did you mean this?" candidates: Levenshtein distance ≤ 2, or a prefix match. */
export function suggestCommands(command: CommandSpec, typed: string): string[] {
  const lower = typed.toLowerCase();
  return visibleSubcommands(command)
    .map((sub) => sub.name)
    .filter((name) => levenshtein(lower, name.toLowerCase()) <= 2 || name.startsWith(lower));
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(
        Math.min((row[j - 1] ?? 0) + 1, (previous[j] ?? 0) + 1, (previous[j - 1] ?? 0) + cost),
      );
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}
