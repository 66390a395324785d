// The decisions the nginx supervisor makes, kept free of processes and timers so they can be
// tested on their own: how long to wait before a restart, what a /proc stat line says about a
// process's parent, whether a reload has replaced the workers, and whether a log line means
// nginx refused a reload.

/** How the delay between restarts grows. */
export interface RestartBackoff {
  /** The delay before the first restart after a healthy run. */
  readonly initialMs: number;
  /** The delay never grows beyond this. */
  readonly maxMs: number;
}

/** The delay before restart number `failures` (1 = the first after a healthy run): doubling, capped. */
export function restartDelayMs(failures: number, backoff: RestartBackoff): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30));
  return Math.min(backoff.initialMs * 2 ** exponent, backoff.maxMs);
}

/**
 * The parent pid in the text of /proc/<pid>/stat, or undefined when the text is not one. The
 * command name in parentheses may itself hold spaces and parentheses, so fields are counted
 * from the last ")".
 */
export function parseParentPid(stat: string): number | undefined {
  const end = stat.lastIndexOf(')');
  if (end < 0) return undefined;
  const fields = stat
    .slice(end + 1)
    .trim()
    .split(/\s+/);
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) && ppid >= 0 ? ppid : undefined;
}

/** A child process of the master: its pid and the title nginx gave it. */
export interface MasterChild {
  readonly pid: number;
  readonly title: string;
}

/**
 * True once nginx has switched to the configuration it was told to reload: a child runs that
 * was not there before the signal (nginx starts the new workers first), and every child that
 * was there has exited or is shutting down (it has then closed its listening sockets, so new
 * connections reach only the new workers; the ones it still serves may finish).
 */
export function reloadComplete(
  before: ReadonlySet<number>,
  children: readonly MasterChild[],
): boolean {
  const started = children.some((child) => !before.has(child.pid));
  const oldStillAccepting = children.some(
    (child) => before.has(child.pid) && !child.title.includes('shutting down'),
  );
  return started && !oldStillAccepting;
}

/**
 * nginx's reason for refusing a reload, when the log line is one. A master that cannot apply a
 * new configuration (syntax, a port in use, a missing file) logs it at the emerg level and keeps
 * the old workers running.
 */
export function reloadRefusal(line: string): string | undefined {
  const match = /\[emerg\]\s+\d+#\d+:\s*(.*)$/.exec(line);
  return match === null ? undefined : (match[1] ?? '').trim();
}

/** nginx's output as one line: its last few non-empty lines joined with " | ". */
export function summarizeNginxOutput(output: string, lines = 3): string {
  return output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .slice(-lines)
    .join(' | ');
}
