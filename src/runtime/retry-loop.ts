// A step run again and again in the background: after a success when the step says, after a
// failure with jittered exponential backoff, until stopped. Serving certificates, the
// front-proxy CA and the webhook's start-up each run in one.
import { jitteredBackoffMs } from './backoff';
import type { Clock } from './clock';

/** What a step returns: milliseconds until it runs again, or 'done' to end the loop. */
export type StepResult = number | 'done';

export interface RetryLoopOptions {
  /** One attempt; a throw is a failure, retried after a backoff. */
  readonly step: () => Promise<StepResult>;
  /** Told of each failure: the error, how many in a row, and the wait before the retry. */
  readonly failed: (error: unknown, failures: number, retryInMs: number) => void;
  readonly clock: Clock;
  /** A number in [0, 1), for the backoff's jitter. */
  readonly random: () => number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

export interface RetryLoop {
  /** Runs the step again within ms (sooner if it was due sooner). */
  runWithin(ms: number): void;
  /** Ends the loop; resolves once no step is running. */
  stop(): Promise<void>;
}

export function startRetryLoop(options: RetryLoopOptions): RetryLoop {
  const { clock } = options;
  let stopped = false;
  let deadline = 0;
  /** The earliest time runWithin asked for since the last step started. */
  let requested = Infinity;
  let sleeper: AbortController | undefined;
  let failures = 0;

  async function attempt(): Promise<StepResult> {
    try {
      const next = await options.step();
      failures = 0;
      return next;
    } catch (error) {
      const retryInMs = jitteredBackoffMs(
        failures,
        options.random(),
        options.initialBackoffMs,
        options.maxBackoffMs,
      );
      failures += 1;
      options.failed(error, failures, retryInMs);
      return retryInMs;
    }
  }

  const remainingMs = (): number => Math.min(deadline, requested) - clock.now().getTime();

  async function sleepUntilDeadline(): Promise<void> {
    for (let wait = remainingMs(); !stopped && wait > 0; wait = remainingMs()) {
      sleeper = new AbortController();
      // An abort (runWithin asked for an earlier run, or stop) ends this sleep early.
      await clock.sleep(wait, sleeper.signal).catch(() => undefined);
    }
  }

  const running = (async () => {
    while (!stopped) {
      requested = Infinity;
      const next = await attempt();
      if (next === 'done') return;
      deadline = clock.now().getTime() + next;
      await sleepUntilDeadline();
    }
  })();

  return {
    runWithin(ms) {
      requested = Math.min(requested, clock.now().getTime() + Math.max(0, ms));
      sleeper?.abort();
    },
    async stop() {
      stopped = true;
      sleeper?.abort();
      await running;
    },
  };
}
