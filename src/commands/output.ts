// kubectl-style -o/--output: a table for people, JSON or YAML for programs.
import type { Io } from '../runtime/io';
import type { FlagSpec } from './spec';

/** -o/--output with the given formats; the first is the default. */
export function outputFlag(formats: readonly [string, ...string[]]): FlagSpec {
  return {
    long: 'output',
    short: 'o',
    type: 'string',
    usage: `output format: ${formats.slice(0, -1).join(', ')}${formats.length > 1 ? ' or ' : ''}${formats.at(-1) ?? ''}`,
    defaultValue: formats[0],
    choices: formats,
  };
}

/** Prints a document as indented JSON, or as YAML (the library loads only then). */
export async function printDocument(io: Io, format: string, value: unknown): Promise<void> {
  if (format === 'yaml') {
    const { stringify } = await import('yaml');
    io.out.write(stringify(value, { lineWidth: 0 }));
    return;
  }
  io.out.write(`${JSON.stringify(value, null, 2)}\n`);
}
