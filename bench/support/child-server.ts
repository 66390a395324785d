// Benchmarks run the server under test in a process of its own, as in a cluster: the bench
// script starts itself with `--serve <kind>`, and the child prints the port it listens on.
import { spawn } from 'node:child_process';

/**
 * Starts this script as a server of the given kind, with env added to this process's
 * environment; resolves to its port, its pid and a way to stop it.
 */
export function startChildServer(
  kind: string,
  timeoutMs: number,
  env: Readonly<Record<string, string>> = {},
): Promise<{ port: number; pid: number; stop: () => void }> {
  const script = process.argv[1] ?? '';
  const child = spawn(process.execPath, [script, '--serve', kind], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start`)), timeoutMs);
    child.stdout.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      resolve({
        port: Number(chunk.toString().trim()),
        pid: child.pid ?? 0,
        stop: () => child.kill('SIGKILL'),
      });
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited ${code}`)));
  });
}
