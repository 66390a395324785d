// Commands are declared as data. One declaration drives the parser (commander), the help text,
// shell completion and the golden tests, so they cannot drift apart.
import { formatDuration, parseDuration } from '../manifests/duration';
import { quoteGo } from '../render/help';

import type { FlagSpec, FlagType, FlagValue } from '../manifests/flag-spec';

export type { FlagSpec, FlagType, FlagValue } from '../manifests/flag-spec';

export interface ActionContext {
  /** Full command path, e.g. "nginx-meshctl version". */
  readonly path: string;
  readonly args: readonly string[];
  string(name: string): string;
  bool(name: string): boolean;
  /** A duration flag's value in milliseconds. */
  duration(name: string): number;
  int(name: string): number;
  ints(name: string): readonly number[];
  strings(name: string): readonly string[];
  /** Whether the user set the flag on the command line. */
  changed(name: string): boolean;
}

export interface ArgsSpec {
  /** As shown in the usage line, e.g. "[resource-type/resource]". */
  readonly usage: string;
  readonly max: number;
}

export interface CommandSpec {
  readonly name: string;
  readonly short: string;
  readonly long?: string;
  readonly example?: string;
  readonly aliases?: readonly string[];
  readonly hidden?: boolean;
  readonly args?: ArgsSpec;
  /** Omit "[flags]" from the usage line (cobra's DisableFlagsInUseLine). */
  readonly noFlagsInUseLine?: boolean;
  readonly flags?: readonly FlagSpec[];
  readonly subcommands?: readonly CommandSpec[];
  /**
   * Absent for pure command groups such as "completion". Resolves to an exit code when the
   * command must end non-zero without an error message (a role that failed has logged why).
   */
  readonly action?: (context: ActionContext) => Promise<number | void>;
}

/** pflag's name for a flag type in help. */
export function typeName(type: FlagType): string {
  switch (type) {
    case 'bool':
      return '';
    case 'ints':
      return 'ints';
    default:
      return type;
  }
}

/** The default as pflag prints it, or undefined when it is the zero value (then pflag omits it). */
export function defaultText(flag: FlagSpec): string | undefined {
  const value = flag.defaultValue;
  if (value === undefined || value === '' || value === false) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : `[${value.join(',')}]`;
  if (flag.type === 'duration' && typeof value === 'number') {
    return value === 0 ? undefined : formatDuration(value);
  }
  if (flag.type === 'string' && typeof value === 'string') return quoteGo(value);
  return String(value);
}

/** Why a flag value is invalid, or undefined when it is valid. */
export function flagValueProblem(flag: FlagSpec, text: string): string | undefined {
  switch (flag.type) {
    case 'duration':
      return parseDuration(text) === undefined
        ? `time: invalid duration ${quoteGo(text)}`
        : undefined;
    case 'int':
      return /^-?\d+$/.test(text)
        ? undefined
        : `strconv.ParseInt: parsing ${quoteGo(text)}: invalid syntax`;
    case 'ints':
      return text.split(',').every((part) => /^-?\d+$/.test(part.trim()))
        ? undefined
        : `strconv.Atoi: parsing ${quoteGo(text)}: invalid syntax`;
    case 'bool':
    case 'stringArray':
      return undefined;
    case 'string':
      if (flag.choices !== undefined && !flag.choices.includes(text)) {
        return `must be one of: ${flag.choices.join(', ')}`;
      }
      return undefined;
  }
}

/** Converts a valid flag value text into its typed value (previous: the repeated flag's value). */
export function parseFlagValue(flag: FlagSpec, text: string, previous: FlagValue): FlagValue {
  switch (flag.type) {
    case 'duration':
      return parseDuration(text) ?? 0;
    case 'int':
      return Number(text);
    case 'ints': {
      const before = Array.isArray(previous) && previous !== flag.defaultValue ? previous : [];
      return [
        ...(before as readonly number[]),
        ...text.split(',').map((part) => Number(part.trim())),
      ];
    }
    case 'stringArray': {
      const before = Array.isArray(previous) && previous !== flag.defaultValue ? previous : [];
      return [...(before as readonly string[]), text];
    }
    case 'bool':
      return text !== 'false';
    case 'string':
      return text;
  }
}
