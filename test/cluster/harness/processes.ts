// Long-lived processes of the test cluster: started detached (their own session and process
// group, output to a log file) so that the command that started them may exit, and recorded in
// <stateDir>/processes.json so that a later run can stop them even after the starter was killed.
// A recorded pid is only ever signalled while /proc shows the recorded binary running with the
// state directory on its command line, so a dead, reused pid is left alone.
import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, open, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshctlError } from '../../../src/errors';

export interface ProcessRecord {
  /** Component name, e.g. "kube-apiserver". */
  readonly name: string;
  /** Absolute path of the executable, as argv[0]. */
  readonly binary: string;
  readonly pid: number;
  readonly ports: Readonly<Record<string, number>>;
  readonly log: string;
  readonly startedAt: string;
}

interface ProcessFile {
  readonly stateDir: string;
  readonly processes: readonly ProcessRecord[];
}

export interface LaunchSpec {
  readonly stateDir: string;
  readonly name: string;
  readonly binary: string;
  readonly args: readonly string[];
  readonly ports: Readonly<Record<string, number>>;
  readonly logPath: string;
  /**
   * A command that execs the binary in another context (`nsenter -t PID -m -n`); it must not
   * fork, so the recorded pid becomes the binary itself.
   */
  readonly wrapper?: readonly string[];
}

/** A process this process started (and so can watch end). */
export interface LaunchedProcess {
  readonly record: ProcessRecord;
  /** "exit code N" or "signal S" once it has ended; undefined while it runs. */
  exitStatus(): string | undefined;
  /** Resolves once the process has ended and been reaped. */
  readonly exited: Promise<void>;
}

export type StopOutcome = 'not-running' | 'terminated' | 'killed';

export class ProcessError extends MeshctlError {}

const PROCESS_FILE = 'processes.json';
const KILL_WAIT_MS = 5_000;
const REAP_WAIT_MS = 2_000;
const POLL_MS = 50;

export function processFileOf(stateDir: string): string {
  return join(stateDir, PROCESS_FILE);
}

/** Records of <stateDir>/processes.json, in start order; none when the file does not exist. */
export async function readProcessRecords(stateDir: string): Promise<readonly ProcessRecord[]> {
  const path = processFileOf(stateDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<ProcessFile>;
    if (!Array.isArray(parsed.processes)) throw new Error('no "processes" list');
    return parsed.processes.filter(isProcessRecord);
  } catch (error) {
    throw new ProcessError(`${path} is not a process record: ${String(error)}`, {
      cause: error,
      hint: `stop the processes by hand (see ${join(stateDir, 'logs')}) and delete the file`,
    });
  }
}

/** Replaces <stateDir>/processes.json atomically (write, then rename). */
export async function writeProcessRecords(
  stateDir: string,
  processes: readonly ProcessRecord[],
): Promise<void> {
  const path = processFileOf(stateDir);
  const temporary = `${path}.${process.pid}.tmp`;
  const content: ProcessFile = { stateDir, processes };
  await writeFile(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o644 });
  await rename(temporary, path);
}

/**
 * Starts spec.binary in its own session, with stdout and stderr written to spec.logPath (which
 * is replaced; its first line names the command) and an environment reduced to PATH, so no
 * proxy settings or kubeconfig of the caller leak into the cluster.
 */
export async function launchDetached(spec: LaunchSpec): Promise<LaunchedProcess> {
  try {
    await access(spec.binary, fsConstants.X_OK);
  } catch (error) {
    throw new ProcessError(`cannot run ${spec.binary}: ${String(error)}`, {
      cause: error,
      hint: 'build the cluster binaries with: bash scripts/build-k8s-binaries.sh',
    });
  }
  const log = await open(spec.logPath, 'w', 0o644);
  let child;
  let status: string | undefined;
  let exited: Promise<void>;
  try {
    await log.write(
      `--- ${new Date().toISOString()} ${spec.binary} ${spec.args.join(' ')}\n`,
      null,
      'utf8',
    );
    const [command = spec.binary, ...prefix] = spec.wrapper ?? [];
    const argv =
      spec.wrapper === undefined ? [...spec.args] : [...prefix, spec.binary, ...spec.args];
    child = spawn(command, argv, {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' },
    });
    // Listen before anything else is awaited: a process that fails at once may exit while the
    // log is being closed, and an exit nobody listened for is never reported.
    const started = child;
    exited = new Promise<void>((resolve) => {
      started.once('exit', (code, signal) => {
        status = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
        resolve();
      });
    });
  } finally {
    await log.close();
  }
  const pid = child.pid;
  if (pid === undefined) {
    const error = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new ProcessError(`cannot start ${spec.binary}: ${error.message}`, { cause: error });
  }
  child.on('error', () => undefined);
  child.unref();
  return {
    record: {
      name: spec.name,
      binary: spec.binary,
      pid,
      ports: spec.ports,
      log: spec.logPath,
      startedAt: new Date().toISOString(),
    },
    exitStatus: () => status,
    exited,
  };
}

/**
 * Whether record.pid is still the recorded process: alive (not a zombie), argv[0] names the
 * recorded binary, and the state directory appears on its command line.
 */
export async function isRecordedProcessRunning(
  record: ProcessRecord,
  stateDir: string,
): Promise<boolean> {
  if (!(await isAlive(record.pid))) return false;
  let cmdline: string;
  try {
    cmdline = await readFile(`/proc/${record.pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  const argv = cmdline.split('\0');
  return (
    basename(argv[0] ?? '') === basename(record.binary) &&
    argv.some((arg) => arg.includes(`${stateDir}/`))
  );
}

/**
 * Stops one recorded process: SIGTERM, up to graceMs for it to end, then SIGKILL. A pid that is
 * no longer the recorded process is not signalled. When `exited` is given (a process this
 * process started), also waits, bounded, until it has been reaped, so its pid is gone on return.
 */
export async function stopRecordedProcess(
  record: ProcessRecord,
  stateDir: string,
  graceMs: number,
  exited?: Promise<void>,
): Promise<StopOutcome> {
  let outcome: StopOutcome = 'not-running';
  if (await isRecordedProcessRunning(record, stateDir)) {
    signal(record.pid, 'SIGTERM');
    outcome = 'terminated';
    if (!(await waitUntilGone(record.pid, graceMs))) {
      signal(record.pid, 'SIGKILL');
      outcome = 'killed';
      if (!(await waitUntilGone(record.pid, KILL_WAIT_MS))) {
        throw new ProcessError(
          `${record.name} (pid ${record.pid}) is still running ${KILL_WAIT_MS} ms after SIGKILL`,
          { hint: `check the process state with: cat /proc/${record.pid}/status` },
        );
      }
    }
  }
  if (exited !== undefined) await settledWithin(exited, REAP_WAIT_MS);
  return outcome;
}

/** Waits for promise, at most timeoutMs, leaving no timer behind. */
async function settledWithin(promise: Promise<void>, timeoutMs: number): Promise<void> {
  const timer = new AbortController();
  try {
    await Promise.race([
      promise,
      sleep(timeoutMs, undefined, { signal: timer.signal }).catch(() => undefined),
    ]);
  } finally {
    timer.abort();
  }
}

/**
 * One TCP port per host that was free a moment ago (the kernel's picks for port 0). All are held
 * until every one is bound, so the ports are distinct from each other.
 */
export async function freePorts(hosts: readonly string[]): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (const host of hosts) {
      const server = createServer();
      servers.push(server);
      ports.push(await listenOnAnyPort(server, host));
    }
    return ports;
  } finally {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }
}

function listenOnAnyPort(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error) =>
      reject(new ProcessError(`cannot bind to ${host}: ${error.message}`, { cause: error })),
    );
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address !== null && typeof address === 'object') resolve(address.port);
      else reject(new ProcessError(`could not allocate a port on ${host}`));
    });
  });
}

/** The last maxLines lines of a log file (reading at most its last 64 KiB); '' if unreadable. */
export async function tailOf(path: string, maxLines: number): Promise<string> {
  const window = 64 * 1024;
  try {
    const file = await open(path, 'r');
    try {
      const { size } = await file.stat();
      const start = Math.max(0, size - window);
      const buffer = Buffer.alloc(size - start);
      await file.read(buffer, 0, buffer.length, start);
      const lines = buffer.toString('utf8').split('\n');
      if (lines.at(-1) === '') lines.pop();
      return lines.slice(-maxLines).join('\n');
    } finally {
      await file.close();
    }
  } catch {
    return '';
  }
}

/** Alive means /proc has the pid and it is not a zombie waiting for its parent. */
async function isAlive(pid: number): Promise<boolean> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // "pid (comm) S …": comm may hold spaces and parentheses, the state follows the last ")".
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if (!isErrno(error, 'ESRCH')) throw error;
  }
}

function isProcessRecord(value: unknown): value is ProcessRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.name === 'string' &&
    typeof record.binary === 'string' &&
    typeof record.pid === 'number' &&
    Number.isInteger(record.pid) &&
    record.pid > 1
  );
}

/** Structural on purpose: errors from Node's fs need not be instances of this realm's Error. */
function isErrno(error: unknown, code: string): boolean {
  return (
    typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === code
  );
}
