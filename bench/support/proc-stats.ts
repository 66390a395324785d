// Memory and CPU of running processes from /proc, for benchmarks that measure what a sidecar
// costs: a process and its children (an nginx master and its workers), RSS and PSS from
// smaps_rollup, CPU time from stat.
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second for the utime/stime fields of /proc/<pid>/stat. */
const CLOCK_TICKS = 100;

/** The fields of /proc/<pid>/stat after the command name, or undefined when the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** pid and its direct children (an nginx master's workers and cache processes). */
export function processTree(pid: number): number[] {
  const children = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((candidate) => statFields(candidate)?.[1] === String(pid));
  return [pid, ...children];
}

/** roots and every process descending from them, from one pass over /proc. */
export function descendantsOf(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = Number(statFields(Number(entry))?.[1]);
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [...roots];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    found.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

/** User plus system CPU seconds of the processes alive now. */
export function cpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => {
    const fields = statFields(pid);
    if (fields === undefined) return sum;
    return sum + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }, 0);
}

/**
 * CPU seconds of a process (user + system) and of the children it has waited for (cutime +
 * cstime: an nginx master's replaced workers, a parent's finished `nginx -t` runs); zero for
 * both when it is gone.
 */
export function cpuTimesOf(pid: number): { readonly own: number; readonly reaped: number } {
  const fields = statFields(pid);
  const seconds = (index: number): number => Number(fields?.[index] ?? 0) / CLOCK_TICKS;
  return { own: seconds(11) + seconds(12), reaped: seconds(13) + seconds(14) };
}

/** RSS and PSS of a set of processes, in MiB, from /proc/<pid>/smaps_rollup. */
export interface Memory {
  readonly rssMib: number;
  readonly pssMib: number;
}

export function memoryOf(pids: readonly number[]): Memory {
  let rssKib = 0;
  let pssKib = 0;
  for (const pid of pids) {
    let rollup: string;
    try {
      rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    } catch {
      continue;
    }
    rssKib += Number(/^Rss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
    pssKib += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
  }
  return { rssMib: rssKib / 1024, pssMib: pssKib / 1024 };
}
