// Shell completion scripts. Each asks the executable itself (`__complete`) for candidates, so
// completion always matches the installed version's commands and flags.

export const COMPLETION_SHELLS = ['bash', 'fish', 'zsh'] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

export function renderCompletionScript(shell: CompletionShell, cliName: string): string {
  const fn = `_${cliName.replace(/[^A-Za-z0-9]/g, '_')}`;
  switch (shell) {
    case 'bash':
      return [
        `# bash completion for ${cliName}`,
        `# Load it with: source <(${cliName} completion bash)`,
        `${fn}_complete() {`,
        '    local cur="${COMP_WORDS[COMP_CWORD]}"',
        "    local IFS=$'\\n'",
        '    local candidates',
        '    candidates=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return 0',
        '    COMPREPLY=($(compgen -W "${candidates}" -- "${cur}"))',
        '}',
        `complete -o default -F ${fn}_complete ${cliName}`,
        '',
      ].join('\n');
    case 'zsh':
      return [
        `#compdef ${cliName}`,
        `# zsh completion for ${cliName}`,
        `# Load it with: source <(${cliName} completion zsh)`,
        `${fn}() {`,
        '  local -a candidates',
        '  candidates=("${(@f)$(${words[1]} __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")',
        '  candidates=(${candidates:#})',
        '  compadd -- "${candidates[@]}"',
        '}',
        `if [ "$funcstack[1]" = "${fn}" ]; then`,
        `  ${fn} "$@"`,
        'else',
        `  compdef ${fn} ${cliName}`,
        'fi',
        '',
      ].join('\n');
    case 'fish':
      return [
        `# fish completion for ${cliName}`,
        `# Load it with: ${cliName} completion fish | source`,
        `function __${fn}_complete`,
        '    set -l tokens (commandline -opc)',
        '    set -l current (commandline -ct)',
        '    $tokens[1] __complete $tokens[2..-1] $current 2>/dev/null',
        'end',
        `complete -c ${cliName} -f -a '(__${fn}_complete)'`,
        '',
      ].join('\n');
  }
}
