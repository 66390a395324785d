// Help and usage text in the layout NGINX Service Mesh users know (cobra's template with NSM's
// footer, pflag's flag table). Pure: the caller describes the command, this prints it.

export interface FlagHelp {
  readonly short?: string | undefined;
  readonly long: string;
  /** pflag's value name: "string", "duration", "ints", … or "" for booleans. */
  readonly typeName: string;
  readonly usage: string;
  /** Already formatted default ("\"nginx-mesh\"", "5s"), or undefined when it is the zero value. */
  readonly defaultText?: string | undefined;
}

export interface SubcommandHelp {
  readonly name: string;
  readonly short: string;
}

export interface CommandHelp {
  /** Full command path, e.g. "nginx-meshctl completion bash". */
  readonly path: string;
  /** The first usage line, e.g. "nginx-meshctl version [flags]"; undefined when not runnable. */
  readonly useLine?: string | undefined;
  readonly short: string;
  readonly long?: string | undefined;
  readonly aliases: readonly string[];
  readonly example?: string | undefined;
  /** Visible subcommands (plus "help"), in display order. */
  readonly subcommands: readonly SubcommandHelp[];
  readonly localFlags: readonly FlagHelp[];
  readonly globalFlags: readonly FlagHelp[];
}

/** cobra pads subcommand names to at least this width. */
const MIN_NAME_PADDING = 11;

/** The full help: description, then usage. */
export function renderHelp(command: CommandHelp): string {
  const description = (command.long ?? command.short).trimEnd();
  return `${description === '' ? '' : `${description}\n\n`}${renderUsage(command)}`;
}

/** The usage block printed by help and after "Unknown help topic". */
export function renderUsage(command: CommandHelp): string {
  const sections: string[] = [];
  const usageLines = ['Usage:'];
  if (command.useLine !== undefined) usageLines.push(`  ${command.useLine}`);
  if (command.subcommands.length > 0) usageLines.push(`  ${command.path} [command]`);
  sections.push(usageLines.join('\n'));
  if (command.aliases.length > 0) {
    const name = command.path.split(' ').at(-1) ?? '';
    sections.push(`Aliases:\n  ${[name, ...command.aliases].join(', ')}`);
  }
  if (command.example !== undefined) sections.push(`Examples:\n${command.example}`);
  if (command.subcommands.length > 0) {
    const width = Math.max(MIN_NAME_PADDING, ...command.subcommands.map((s) => s.name.length));
    const rows = command.subcommands.map((s) => `  ${s.name.padEnd(width)} ${s.short}`);
    sections.push(`Available Commands:\n${rows.join('\n')}`);
  }
  if (command.localFlags.length > 0) sections.push(`Flags:\n${renderFlags(command.localFlags)}`);
  if (command.globalFlags.length > 0) {
    sections.push(`Global Flags:\n${renderFlags(command.globalFlags)}`);
  }
  if (command.subcommands.length > 0) {
    const [rootName, ...rest] = command.path.split(' ');
    const topic = rest.map((word) => `${word} `).join('');
    sections.push(
      `Use "${command.path} [command] --help"  or "${rootName ?? ''} help ${topic}[command]" for more information about a command.`,
    );
  }
  return `${sections.join('\n\n')}\n`;
}

/** pflag's FlagUsages: flags sorted by name, usage column aligned three spaces after the widest. */
export function renderFlags(flags: readonly FlagHelp[]): string {
  const sorted = [...flags].sort((a, b) => (a.long < b.long ? -1 : a.long > b.long ? 1 : 0));
  const lefts = sorted.map((flag) => {
    const names =
      flag.short === undefined ? `      --${flag.long}` : `  -${flag.short}, --${flag.long}`;
    return flag.typeName === '' ? names : `${names} ${flag.typeName}`;
  });
  const width = Math.max(...lefts.map((left) => left.length));
  return sorted
    .map((flag, index) => {
      const left = (lefts[index] ?? '').padEnd(width);
      const usage =
        flag.defaultText === undefined ? flag.usage : `${flag.usage} (default ${flag.defaultText})`;
      return `${left}   ${usage.replaceAll('\n', `\n${' '.repeat(width + 3)}`)}`.trimEnd();
    })
    .join('\n');
}

/** Go's %q for the plain strings flags hold. */
export function quoteGo(text: string): string {
  return JSON.stringify(text);
}
