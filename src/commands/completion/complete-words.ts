// Completion candidates for a partly typed command line. Pure.
import type { CommandSpec, FlagSpec } from '../spec';
import { visibleSubcommands, walkArgv } from '../tree';

/**
 * words are the arguments after the program name; the last one is the word being completed
 * (empty when the cursor follows a space). Returns sorted candidates that start with it.
 */
export function completeWords(root: CommandSpec, words: readonly string[]): string[] {
  const current = words.at(-1) ?? '';
  const { chain, flags, pendingFlag } = walkArgv(root, words.slice(0, -1));
  const command = chain.at(-1) ?? root;
  const candidates = candidatesFor(command, flags, pendingFlag, current);
  return [...new Set(candidates.filter((candidate) => candidate.startsWith(current)))].sort();
}

function candidatesFor(
  command: CommandSpec,
  flags: readonly FlagSpec[],
  pendingFlag: FlagSpec | undefined,
  current: string,
): string[] {
  if (pendingFlag !== undefined) return [...(pendingFlag.choices ?? [])];
  if (current.startsWith('-')) {
    return [
      '--help',
      ...flags.filter((flag) => flag.hidden !== true).map((flag) => `--${flag.long}`),
    ];
  }
  return visibleSubcommands(command).map((sub) => sub.name);
}
