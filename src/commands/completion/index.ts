import { CLI_NAME } from '../../manifests/constants';
import type { CompletionShell } from '../../render/completion-scripts';
import { COMPLETION_SHELLS, renderCompletionScript } from '../../render/completion-scripts';
import type { Io } from '../../runtime/io';
import type { CommandSpec } from '../spec';
import { completeWords } from './complete-words';

const loadHelp: Readonly<Record<CompletionShell, string>> = {
  bash: `Generate the autocompletion script for the bash shell.

This script depends on the 'bash-completion' package.
To load completions in your current shell session:

\tsource <(${CLI_NAME} completion bash)

To load completions for every new session, execute once:

\t${CLI_NAME} completion bash > /etc/bash_completion.d/${CLI_NAME}

You will need to start a new shell for this setup to take effect.`,
  zsh: `Generate the autocompletion script for the zsh shell.

If shell completion is not already enabled in your environment you will need
to enable it. You can execute the following once:

\techo "autoload -U compinit; compinit" >> ~/.zshrc

To load completions in your current shell session:

\tsource <(${CLI_NAME} completion zsh)

To load completions for every new session, execute once:

\t${CLI_NAME} completion zsh > "\${fpath[1]}/_${CLI_NAME}"

You will need to start a new shell for this setup to take effect.`,
  fish: `Generate the autocompletion script for the fish shell.

To load completions in your current shell session:

\t${CLI_NAME} completion fish | source

To load completions for every new session, execute once:

\t${CLI_NAME} completion fish > ~/.config/fish/completions/${CLI_NAME}.fish

You will need to start a new shell for this setup to take effect.`,
};

export function completionCommand(io: Io): CommandSpec {
  return {
    name: 'completion',
    short: 'Generate the autocompletion script for the specified shell',
    long: `Generate the autocompletion script for ${CLI_NAME} for the specified shell.
See each sub-command's help for details on how to use the generated script.`,
    subcommands: COMPLETION_SHELLS.map((shell) => ({
      name: shell,
      short: `Generate the autocompletion script for ${shell}`,
      long: loadHelp[shell],
      action: () => {
        io.out.write(renderCompletionScript(shell, CLI_NAME));
        return Promise.resolve();
      },
    })),
  };
}

/** The word that makes the executable print completion candidates instead of running a command. */
export const COMPLETE_REQUEST = '__complete';

/**
 * `__complete <words…>`: the candidates the completion scripts ask for, one per line. It is
 * answered before flag parsing, because the words are a partial command line, flags included.
 */
export function writeCompletions(root: CommandSpec, words: readonly string[], io: Io): void {
  const candidates = completeWords(root, words.length === 0 ? [''] : words);
  io.out.write(candidates.map((candidate) => `${candidate}\n`).join(''));
}
