// The sidecar's access log on the container's stdout, where `kubectl logs` finds it. nginx cannot
// open the agent's stdout itself when that is a socket (/dev/stdout then fails to open, and the
// configuration with it), so the agent makes a FIFO in its run directory (mode 0600, its own uid)
// before nginx first reads a configuration that names it, and copies everything nginx writes there
// to its stdout. The agent holds the FIFO open for reading, so nginx's open for writing never
// waits, and for writing too, so that its reader sees no end while nginx restarts or reloads.
//
// Lines stay whole: nginx writes each line in one write(), which a pipe never interleaves with
// another writer's (old and new workers during a reload) up to PIPE_BUF (4096) bytes, and the
// relay copies the bytes in order. When stdout takes no more, the relay stops reading until it
// drains; the FIFO then fills and nginx's workers wait to write their next line, as nginx waits
// on a full stdout pipe of its own.
import { execFile } from 'node:child_process';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { MeshctlError, describeError } from '../../errors';
import { SIDECAR_ACCESS_LOG_FIFO } from '../../manifests/constants';
import type { ByteSink } from '../io';
import type { Logger } from '../role/log';

/** How long close waits for nginx's last lines to be copied before it lets them go. */
const CLOSE_GRACE_MS = 2_000;

/** A running relay. */
export interface AccessLogRelay {
  /** The FIFO nginx writes to. */
  readonly path: string;
  /**
   * Copies what nginx has written (once every writer has closed the FIFO, or for at most
   * CLOSE_GRACE_MS), waits for stdout to take it, and closes the FIFO. Stop nginx first. Calls
   * after the first wait for it.
   */
  close(): Promise<void>;
}

/** What a relay needs. */
export interface AccessLogRelayOptions {
  /** Where the FIFO goes; whatever is there is replaced. */
  readonly path: string;
  readonly out: ByteSink;
  readonly logger: Logger;
  /** The program that makes the FIFO (Node has no mkfifo): coreutils', found on PATH. */
  readonly mkfifo?: string;
}

/** Makes a FIFO, mode 0600; rejects with what mkfifo said. */
function makeFifo(program: string, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(program, ['-m', '600', path], { timeout: 10_000 }, (error, _stdout, stderr) => {
      if (error === null) resolve();
      else reject(new Error(stderr.trim().split('\n')[0] || error.message));
    });
  });
}

/** Opens the FIFO's two ends without blocking; the reading end first, so the writing one opens. */
function openFifo(path: string): { readFd: number; keepFd: number } {
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    if (!fstatSync(readFd).isFIFO()) throw new Error('not a FIFO');
    return { readFd, keepFd: openSync(path, constants.O_WRONLY | constants.O_NONBLOCK) };
  } catch (error) {
    closeSync(readFd);
    throw error;
  }
}

/**
 * Makes the FIFO at options.path and copies what is written to it to options.out until closed.
 * Rejects with a one-line MeshctlError naming the path when the FIFO cannot be made or opened.
 */
export async function startAccessLogRelay(options: AccessLogRelayOptions): Promise<AccessLogRelay> {
  const { path, out, logger } = options;
  let fds: { readFd: number; keepFd: number };
  try {
    // A FIFO (or anything else) left by the previous container of this pod.
    await rm(path, { force: true });
    await makeFifo(options.mkfifo ?? 'mkfifo', path);
    fds = openFifo(path);
  } catch (error) {
    throw new MeshctlError(`cannot create the access log FIFO ${path}: ${describeError(error)}`, {
      cause: error,
    });
  }
  const input = new Socket({ fd: fds.readFd, readable: true, writable: false });
  let dropping = false;
  let draining: Promise<void> | undefined;
  input.on('data', (chunk: Buffer) => {
    if (dropping || out.write(chunk)) return;
    input.pause();
    draining = new Promise((resolve) =>
      out.once('drain', () => {
        draining = undefined;
        input.resume();
        resolve();
      }),
    );
  });
  // Lines stdout cannot take are dropped rather than left to stop nginx.
  out.once('error', (error) => {
    dropping = true;
    input.resume();
    logger.error('stdout failed: the access log is dropped from now on', {
      error: describeError(error),
    });
  });
  input.on('error', (error) => {
    logger.error('cannot read the access log FIFO', { path, error: describeError(error) });
  });
  const closed = new Promise<void>((resolve) => input.once('close', () => resolve()));
  const finish = async (): Promise<void> => {
    closeSync(fds.keepFd);
    // With no writer left the reader ends once it has read everything.
    let timer = setTimeout(() => input.destroy(), CLOSE_GRACE_MS);
    await closed;
    clearTimeout(timer);
    if (draining === undefined) return;
    await Promise.race([
      draining,
      new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS))),
    ]);
    clearTimeout(timer);
  };
  let closing: Promise<void> | undefined;
  return {
    path,
    close() {
      closing ??= finish();
      return closing;
    },
  };
}

/**
 * The agent's relay into runDir, or undefined with a warning when there is no stdout to relay to
 * or the FIFO cannot be made: the proxy then runs without an access log rather than not at all.
 */
export async function startAgentAccessLog(
  runDir: string,
  out: (() => ByteSink) | undefined,
  logger: Logger,
): Promise<AccessLogRelay | undefined> {
  if (out === undefined) return undefined;
  try {
    return await startAccessLogRelay({
      path: join(runDir, SIDECAR_ACCESS_LOG_FIFO),
      out: out(),
      logger,
    });
  } catch (error) {
    logger.warn('no access log: the proxy runs without one', { error: describeError(error) });
    return undefined;
  }
}
