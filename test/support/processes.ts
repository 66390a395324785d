// Helpers for tests that start their own servers as child processes.
import type { ChildProcess } from 'node:child_process';

/**
 * Resolves once the child prints marker on stdout or stderr; rejects, with everything it printed,
 * when it exits first or stays silent for timeoutMs.
 */
export function waitForOutput(
  child: ChildProcess,
  marker: string,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready: ${output}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (!output.includes(marker)) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? '?'}): ${output}`));
    });
  });
}

/** Sends SIGTERM to a child that still runs and resolves once it exited; at once otherwise. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
