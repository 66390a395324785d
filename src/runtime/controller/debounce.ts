// Coalesces bursts of change notifications into few runs of one async job (the snapshot build):
// a run starts once changes have been quiet for quietMs, but never later than maxDelayMs after
// the first change it covers, so a cluster that never stops changing still gets rebuilt. Runs
// never overlap: changes during a run lead to one more run after it.

/** Timers as an injected dependency, so tests can move time by hand. */
export interface Timers {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface DebounceOptions {
  /** Quiet time after the last change before a run. Default 100. */
  readonly quietMs?: number;
  /** Longest time from the first change of a burst to its run. Default 1000. */
  readonly maxDelayMs?: number;
  readonly timers?: Timers;
  /** Gets the error of a failed run; the debouncer goes on with the next change. */
  readonly onError: (error: unknown) => void;
}

export interface Debouncer {
  /** Records a change; a run follows within maxDelayMs (or right after the current run). */
  notify(): void;
  /** Stops scheduling runs; resolves once a run in progress has finished. */
  stop(): Promise<void>;
}

const DEFAULT_QUIET_MS = 100;
const DEFAULT_MAX_DELAY_MS = 1000;

export function createDebouncer(run: () => Promise<void>, options: DebounceOptions): Debouncer {
  const timers = options.timers ?? systemTimers;
  const quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
  const maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  let firstChangeAt: number | undefined;
  let timer: unknown;
  let running: Promise<void> | undefined;
  /** The timer fired during a run: run again as soon as it ends. */
  let due = false;
  let stopped = false;

  const start = (): void => {
    firstChangeAt = undefined;
    due = false;
    running = run()
      .catch(options.onError)
      .finally(() => {
        running = undefined;
        if (due && !stopped) start();
      });
  };

  const fire = (): void => {
    timer = undefined;
    if (stopped) return;
    if (running !== undefined) due = true;
    else start();
  };

  return {
    notify() {
      if (stopped) return;
      const now = timers.now();
      firstChangeAt ??= now;
      if (timer !== undefined) timers.clearTimeout(timer);
      const runAt = Math.min(now + quietMs, firstChangeAt + maxDelayMs);
      timer = timers.setTimeout(fire, Math.max(0, runAt - now));
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
