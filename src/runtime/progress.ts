// Progress of a long operation on stderr: a spinner naming the current step on a terminal, one
// line per finished step otherwise (logs and CI). The spinner library loads only on a terminal.
import type { Clock } from './clock';
import type { Io } from './io';

export interface Progress {
  /** A step begins; it stays current until succeed or fail. */
  start(title: string): void;
  /** Updates what the current step is waiting for. */
  detail(text: string): void;
  succeed(): void;
  fail(): void;
  /** A line between steps (warnings, notes). */
  note(line: string): void;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** Plain lines: "<title>... done (1.2s)". */
function lineProgress(io: Io, clock: Clock): Progress {
  let title = '';
  let started = 0;
  return {
    start(next) {
      title = next;
      started = clock.now().getTime();
    },
    detail() {
      // Only the outcome of a step is printed without a terminal.
    },
    succeed() {
      io.err.write(`${title}... done (${seconds(clock.now().getTime() - started)})\n`);
    },
    fail() {
      io.err.write(`${title}... failed (${seconds(clock.now().getTime() - started)})\n`);
    },
    note(line) {
      io.err.write(`${line}\n`);
    },
  };
}

interface Spinner {
  text: string;
  start(): Spinner;
  succeed(text: string): Spinner;
  fail(text: string): Spinner;
  stop(): Spinner;
}

async function spinnerProgress(io: Io, clock: Clock): Promise<Progress> {
  const { default: ora } = await import('ora');
  let spinner: Spinner | undefined;
  let title = '';
  let started = 0;
  // The spinner writes through the CLI's stderr: a terminal stream needs only these, in ANSI.
  const stream = {
    isTTY: true,
    columns: 80,
    write: (text: string) => {
      io.err.write(text);
      return true;
    },
    cursorTo: (x: number) => {
      io.err.write(`\x1b[${x + 1}G`);
      return true;
    },
    clearLine: (direction: number) => {
      io.err.write(direction < 0 ? '\x1b[1K' : direction > 0 ? '\x1b[0K' : '\x1b[2K');
      return true;
    },
    moveCursor: (dx: number, dy: number) => {
      if (dy !== 0) io.err.write(dy < 0 ? `\x1b[${-dy}A` : `\x1b[${dy}B`);
      if (dx !== 0) io.err.write(dx < 0 ? `\x1b[${-dx}D` : `\x1b[${dx}C`);
      return true;
    },
    once: () => stream,
    removeListener: () => stream,
  };
  const elapsed = (): string => seconds(clock.now().getTime() - started);
  return {
    start(next) {
      title = next;
      started = clock.now().getTime();
      spinner = (
        ora({
          text: title,
          stream: stream as unknown as NodeJS.WriteStream,
          discardStdin: false,
          // The terminal was already decided by the caller; ora's own guess also turns itself off
          // whenever CI is set in the environment, which would print a bare line per step instead.
          isEnabled: true,
        }) as unknown as Spinner
      ).start();
    },
    detail(text) {
      if (spinner !== undefined) spinner.text = `${title}: ${text}`;
    },
    succeed() {
      spinner?.succeed(`${title} (${elapsed()})`);
      spinner = undefined;
    },
    fail() {
      spinner?.fail(`${title} (${elapsed()})`);
      spinner = undefined;
    },
    note(line) {
      spinner?.stop();
      io.err.write(`${line}\n`);
      spinner?.start();
    },
  };
}

export function createProgress(io: Io, clock: Clock): Promise<Progress> {
  return io.stderrIsTTY ? spinnerProgress(io, clock) : Promise.resolve(lineProgress(io, clock));
}
