// One container as a process: inside the pod's network namespace, in a private mount namespace
// with the pod's volumes bound at their mount paths, as the container's user.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

export interface MountSpec {
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

export interface ContainerLaunch {
  readonly netns: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly mounts: readonly MountSpec[];
  readonly user?: { readonly uid: number; readonly gid: number } | undefined;
  readonly workingDir?: string | undefined;
  readonly logFile: string;
}

export interface ExitInfo {
  readonly code: number;
  readonly signal: string | undefined;
}

function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The shell script that prepares the mount namespace and then becomes the container. */
export function buildLaunchScript(
  mounts: readonly MountSpec[],
  workingDir: string | undefined,
): string {
  const steps = mounts.map((mount) => {
    const source = quote(mount.source);
    const target = quote(mount.target);
    const prepare = `if [ -d ${source} ]; then mkdir -p ${target}; else mkdir -p "$(dirname ${target})" && touch ${target}; fi`;
    const bind = `mount --bind ${source} ${target}`;
    const readOnly = mount.readOnly ? ` && mount -o remount,bind,ro ${target}` : '';
    return `${prepare} && ${bind}${readOnly}`;
  });
  if (workingDir !== undefined && workingDir !== '')
    steps.push(`mkdir -p ${quote(workingDir)} && cd ${quote(workingDir)}`);
  steps.push('exec "$@"');
  return steps.join(' && ');
}

export class ContainerProcess {
  private readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;

  constructor(launch: ContainerLaunch) {
    const user =
      launch.user === undefined
        ? []
        : [
            'setpriv',
            `--reuid=${launch.user.uid}`,
            `--regid=${launch.user.gid}`,
            '--clear-groups',
            '--',
          ];
    const args = [
      'netns',
      'exec',
      launch.netns,
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      buildLaunchScript(launch.mounts, launch.workingDir),
      'container',
      ...user,
      ...launch.argv,
    ];
    const log = openSync(launch.logFile, 'a');
    try {
      this.child = spawn('ip', args, {
        env: { ...launch.env },
        stdio: ['ignore', log, log],
        detached: true,
        cwd: '/',
      });
    } finally {
      closeSync(log);
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) =>
        resolve({ code: code ?? 128, signal: signal ?? undefined }),
      );
      this.child.once('error', () => resolve({ code: 128, signal: undefined }));
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Signals the container's whole process group. */
  kill(signal: NodeJS.Signals): void {
    if (
      this.child.pid === undefined ||
      this.child.exitCode !== null ||
      this.child.signalCode !== null
    )
      return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process has exited. */
  async stop(graceMs: number): Promise<ExitInfo> {
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), Math.max(0, graceMs));
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
