// The init role's access to the pod's network namespace: the iptables tools and the kernel's
// IPv6 switch. Effects, behind one small interface so the role can be driven by a fake. Node's
// process and file modules are loaded on first use: every CLI start builds the role registry.

/** What a command that ran printed, and how it ended. */
export interface CommandResult {
  /** Exit code, or undefined when the command died from a signal or ran out of time. */
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/** A command that could not be started; code is the system's (ENOENT: not installed). */
export class CommandStartError extends Error {
  override readonly name = 'CommandStartError';

  constructor(
    readonly file: string,
    readonly code: string | undefined,
    options: { readonly cause: unknown },
  ) {
    super(`cannot run ${file}: ${code ?? 'unknown error'}`, options);
  }
}

/** Whether the namespace carries IPv6 at all. */
export type Ipv6State = 'enabled' | 'disabled' | 'unsupported';

export interface Netfilter {
  /**
   * Runs a command without a shell, with `input` on stdin. Resolves whatever the exit code;
   * rejects with a CommandStartError only when the command cannot be started.
   */
  run(file: string, args: readonly string[], input?: string): Promise<CommandResult>;
  /** unsupported: the kernel has no IPv6; disabled: net.ipv6.conf.all.disable_ipv6 is 1. */
  ipv6State(): Promise<Ipv6State>;
}

/** iptables-restore of a pod's few rules takes milliseconds; this only bounds a hung tool. */
const COMMAND_TIMEOUT_MS = 30_000;
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
const DISABLE_IPV6_PATH = '/proc/sys/net/ipv6/conf/all/disable_ipv6';

export const systemNetfilter: Netfilter = {
  run: async (file, args, input) => {
    const { execFile } = await import('node:child_process');
    return new Promise((resolve, reject) => {
      const child = execFile(
        file,
        args,
        {
          encoding: 'utf8',
          timeout: COMMAND_TIMEOUT_MS,
          killSignal: 'SIGKILL',
          maxBuffer: MAX_OUTPUT_BYTES,
        },
        (error, stdout, stderr) => {
          if (error === null) {
            resolve({ exitCode: 0, stdout, stderr });
          } else if (typeof error.code === 'number') {
            resolve({ exitCode: error.code, stdout, stderr });
          } else if (error.killed === true || typeof error.signal === 'string') {
            resolve({ exitCode: undefined, stdout, stderr });
          } else {
            const code = typeof error.code === 'string' ? error.code : undefined;
            reject(new CommandStartError(file, code, { cause: error }));
          }
        },
      );
      // A tool that fails before reading its input closes the pipe; its exit status reports it.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input ?? '');
    });
  },
  ipv6State: async () => {
    const { readFile } = await import('node:fs/promises');
    try {
      const text = await readFile(DISABLE_IPV6_PATH, 'utf8');
      return text.trim() === '1' ? 'disabled' : 'enabled';
    } catch {
      return 'unsupported';
    }
  },
};
