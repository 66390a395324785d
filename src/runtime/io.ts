// Terminal I/O as the CLI sees it. Commands write through this interface, never to the process
// streams, so that the whole CLI runs in-process in tests.
export interface Writer {
  write(text: string): void;
}

/**
 * A byte stream that says when it is full: write returns false once the caller should wait for
 * 'drain' (Node's writable streams are such). For output another process produces faster than a
 * synchronous Writer should take it, such as the sidecar's access log.
 */
export interface ByteSink {
  write(chunk: Uint8Array): boolean;
  once(event: 'drain', listener: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
}

export interface Styles {
  /** Marks an error prefix; identity when colour is off. */
  error(text: string): string;
  /** Marks a warning prefix; identity when colour is off. */
  warning(text: string): string;
}

export interface Io {
  /** Data: what pipes into other tools. */
  readonly out: Writer;
  /** stdout as a ByteSink, opened on first use (in tests: absent). */
  readonly outStream?: () => ByteSink;
  /** Diagnostics, progress and warnings. */
  readonly err: Writer;
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  /** Styles for stderr: colour only on a terminal and only when NO_COLOR is unset. */
  readonly styles: Styles;
}

/** Styles that leave text as it is. */
export const plainStyles: Styles = { error: (text) => text, warning: (text) => text };

/** Colour is used only on a terminal, and never when NO_COLOR is set to anything non-empty. */
export function colorEnabled(
  isTTY: boolean,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  const noColor = env.NO_COLOR;
  return isTTY && (noColor === undefined || noColor === '') && env.TERM !== 'dumb';
}
