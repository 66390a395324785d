// How a command-line flag is declared: the shape shared by the command layer (which parses it)
// and by pure builders that declare flags as data (deploy's). Types only.

export type FlagType = 'string' | 'duration' | 'bool' | 'int' | 'ints' | 'stringArray';

export type FlagValue = string | number | boolean | readonly number[] | readonly string[];

export interface FlagSpec {
  readonly long: string;
  readonly short?: string;
  readonly type: FlagType;
  readonly usage: string;
  /** Parsed default; omitted means the type's zero value. */
  readonly defaultValue?: FlagValue;
  /** Allowed values, checked on parse and offered by completion. */
  readonly choices?: readonly string[];
  readonly hidden?: boolean;
}
