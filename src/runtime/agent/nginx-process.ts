// One nginx master process: checked configuration, started in the foreground, stopped
// gracefully (SIGQUIT lets open connections finish), and watched so the agent can restart it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { MeshctlError } from '../../errors';
import type { Logger } from '../role/log';

export interface NginxPaths {
  readonly nginx: string;
  /** The prefix (-p): relative paths in the configuration resolve against it. */
  readonly prefix: string;
  readonly config: string;
}

function collect(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) =>
      resolve({ code, output: Buffer.concat(chunks).toString('utf8') }),
    );
  });
}

/** Runs `nginx -t`; a rejected configuration throws with nginx's own words. */
export async function testNginxConfig(paths: NginxPaths): Promise<void> {
  // -e stderr: nginx would otherwise open its compiled-in log file before reading the
  // configuration, which a non-root proxy cannot.
  const child = spawn(
    paths.nginx,
    ['-t', '-q', '-e', 'stderr', '-p', paths.prefix, '-c', paths.config],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const { code, output } = await collect(child).catch((error: unknown) => {
    throw new MeshctlError(`cannot run ${paths.nginx}: ${String(error)}`, { cause: error });
  });
  if (code !== 0) {
    throw new MeshctlError(
      `nginx rejected ${paths.config}: ${output.trim().split('\n').slice(-3).join(' | ')}`,
    );
  }
}

export interface RunningNginx {
  readonly pid: number;
  /** Resolves with the exit code (or signal) when the master exits. */
  readonly exited: Promise<string>;
  /** Graceful stop, SIGKILL after graceMs. */
  stop(graceMs: number): Promise<void>;
}

/** Starts nginx in the foreground; its log lines go to the logger. */
export function startNginx(paths: NginxPaths, logger: Logger): RunningNginx {
  const child = spawn(
    paths.nginx,
    ['-e', 'stderr', '-p', paths.prefix, '-c', paths.config, '-g', 'daemon off;'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let buffered = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') logger.info('nginx', { line });
  });
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? `exit code ${code ?? '?'}`));
    child.once('error', (error) => resolve(error.message));
  });
  return {
    pid: child.pid ?? 0,
    exited,
    async stop(graceMs) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
