// The process's stdout and stderr for the CLI, written with synchronous fd writes: setting up
// Node's stream objects (and the tty and net modules behind them) costs milliseconds at every
// start, which `--help` and `version` would otherwise spend before printing a few lines. When a
// write would block (a full non-blocking pipe), output continues through Node's own stream.
import { writeSync } from 'node:fs';
import type * as Tty from 'node:tty';
import type { Io, Styles } from '../src/runtime/io';
import { colorEnabled, plainStyles } from '../src/runtime/io';
import type * as ColorStyles from '../src/runtime/styles';
import type { Prompter } from '../src/runtime/prompt';

/** isatty, loading the tty module (and net behind it) only when asked. */
function isatty(fd: number): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deferred for start-up time
  return (require('node:tty') as typeof Tty).isatty(fd);
}

function fdWriter(fd: 1 | 2, stream: () => NodeJS.WriteStream): Io['out'] {
  let fallback = false;
  return {
    write(text) {
      if (fallback) {
        stream().write(text);
        return;
      }
      const bytes = Buffer.from(text, 'utf8');
      let offset = 0;
      try {
        while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        fallback = true;
        stream().write(bytes.subarray(offset));
      }
    },
  };
}

/** Colour decided on first use, so that a run that prints no error never asks the terminal. */
function lazyStyles(env: Readonly<Record<string, string | undefined>>): Styles {
  let styles: Styles | undefined;
  const current = (): Styles => {
    if (styles === undefined) {
      styles = colorEnabled(isatty(2), env)
        ? // eslint-disable-next-line @typescript-eslint/no-require-imports -- chalk only on a colour terminal
          (require('../src/runtime/styles') as typeof ColorStyles).createColorStyles()
        : plainStyles;
    }
    return styles;
  };
  return { error: (text) => current().error(text), warning: (text) => current().warning(text) };
}

export function processIo(env: Readonly<Record<string, string | undefined>>): Io {
  return {
    out: fdWriter(1, () => process.stdout),
    outStream: () => process.stdout,
    err: fdWriter(2, () => process.stderr),
    get stdoutIsTTY() {
      return isatty(1);
    },
    get stderrIsTTY() {
      return isatty(2);
    },
    styles: lazyStyles(env),
  };
}

/** Questions on the terminal: asked on stderr, answered on stdin. */
export function processPrompter(): Prompter {
  return {
    get interactive() {
      return isatty(0);
    },
    async ask(question) {
      const { createInterface } = await import('node:readline/promises');
      const lines = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await lines.question(question);
      } finally {
        lines.close();
      }
    },
  };
}
