// One nginx master process: checked configuration, started in the foreground in its own process
// group, stopped gracefully (SIGQUIT lets open connections finish), and watched so the agent can
// restart it. Workers outlive a master killed outright and keep its listening sockets, so once the
// master is gone its whole group is killed: a restarted master could not bind otherwise.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { MeshctlError } from '../../errors';
import type { Logger } from '../role/log';
import { parseParentPid, summarizeNginxOutput } from './supervisor-policy';

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

/** nginx read a configuration and refused it (as opposed to not running at all). */
export class NginxRejectedError extends MeshctlError {}

/** Runs `nginx -t`; a rejected configuration throws NginxRejectedError with nginx's own words. */
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
    throw new NginxRejectedError(`nginx rejected ${paths.config}: ${summarizeNginxOutput(output)}`);
  }
}

export interface RunningNginx {
  readonly pid: number;
  /** Resolves with the exit code (or signal) when the master exits. */
  readonly exited: Promise<string>;
  /** Calls listener with each line nginx logs from now on; the returned function unsubscribes. */
  onLine(listener: (line: string) => void): () => void;
  /** Sends a signal to the master; false when it has already exited. */
  signal(signal: NodeJS.Signals): boolean;
  /** Graceful stop, SIGKILL after graceMs. */
  stop(graceMs: number): Promise<void>;
}

/** Kills whatever is left of a process group; a group already gone is not an error. */
function killGroup(pid: number): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: every member has exited.
  }
}

/**
 * What nginx runs with on top of the agent's environment. MALLOC_MMAP_THRESHOLD_ fixes at 128 KiB
 * the size from which glibc gives an allocation a mapping of its own, unmapped when freed. Left to
 * itself, glibc raises that threshold to the largest mapped block freed so far, and reading a
 * configuration frees many large temporary blocks (each `map` block's key tables are about 1 MiB):
 * once the threshold has risen, such blocks come from the heap instead, and freed there they stay
 * resident in the master and, shared, in every worker. That was about 1.9 MiB per pod with one
 * Service, paid again by the old workers' heap after every reload.
 */
export const NGINX_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072' };

/** Starts nginx in the foreground; its log lines go to the logger and to line listeners. */
export function startNginx(paths: NginxPaths, logger: Logger): RunningNginx {
  const child = spawn(
    paths.nginx,
    ['-e', 'stderr', '-p', paths.prefix, '-c', paths.config, '-g', 'daemon off;'],
    // detached: a process group of its own, so orphaned workers can be found and killed.
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, ...NGINX_ENV } },
  );
  const pid = child.pid ?? 0;
  const listeners = new Set<(line: string) => void>();
  let buffered = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      logger.info('nginx', { line });
      for (const listener of listeners) listener(line);
    }
  });
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      killGroup(pid);
      resolve(signal ?? `exit code ${code ?? '?'}`);
    });
    child.once('error', (error) => resolve(error.message));
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    pid,
    exited,
    onLine(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    signal(signal) {
      return running() && child.kill(signal);
    },
    async stop(graceMs) {
      if (!running()) return;
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A child of the nginx master, as /proc shows it. */
export interface NginxChild {
  readonly pid: number;
  /** The process title nginx sets, e.g. "nginx: worker process is shutting down". */
  readonly title: string;
}

function readProc(pid: string, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined; // exited while we looked
  }
}

/** The children of `pid`, from /proc (the kernel may not offer a children list). */
export function listNginxChildren(pid: number): NginxChild[] {
  const children: NginxChild[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProc(entry, 'stat');
    if (stat === undefined || parseParentPid(stat) !== pid) continue;
    const title = readProc(entry, 'cmdline');
    if (title !== undefined)
      children.push({ pid: Number(entry), title: title.replaceAll('\0', ' ').trim() });
  }
  return children;
}
