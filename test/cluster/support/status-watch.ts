// What `nginx-meshctl status` said over a stretch of time: it runs again and again, one run at a
// time with a pause between runs, and every answer is kept with its time and exit code, so a
// test can ask whether status reported a fault while it lasted and what it printed.
import { setTimeout as sleep } from 'node:timers/promises';
import { meshctl } from './mesh-apps';

export interface StatusSample {
  /** When the run started (ms since the epoch). */
  readonly at: number;
  readonly exitCode: number;
  /** stdout and stderr together. */
  readonly output: string;
}

export interface StatusWatch {
  /** The answers so far, in the order they started. */
  samples(): readonly StatusSample[];
  /** Runs status once more at once, beside the regular runs; resolves with its answer. */
  runNow(): Promise<StatusSample>;
  /** Stops after the runs in progress; resolves with every answer. */
  stop(): Promise<readonly StatusSample[]>;
}

/** One run of status against the mesh in meshNamespace. */
export async function runStatus(meshNamespace: string): Promise<StatusSample> {
  const at = Date.now();
  const result = await meshctl(meshNamespace, ['status', '-t', '5s']);
  const output = [result.stdout, result.stderr].filter((text) => text !== '').join('\n');
  return { at, exitCode: result.exitCode ?? -1, output };
}

/** Runs status every intervalMs (after the previous run ends) until stopped or maxMs passed. */
export function watchStatus(
  meshNamespace: string,
  intervalMs = 1_000,
  maxMs = 600_000,
): StatusWatch {
  const samples: StatusSample[] = [];
  const extra: Promise<StatusSample>[] = [];
  const stopped = new AbortController();
  const deadline = Date.now() + maxMs;
  const record = (sample: StatusSample): StatusSample => {
    samples.push(sample);
    samples.sort((a, b) => a.at - b.at);
    return sample;
  };
  const loop = (async () => {
    while (!stopped.signal.aborted && Date.now() < deadline) {
      record(await runStatus(meshNamespace));
      await sleep(intervalMs, undefined, { signal: stopped.signal }).catch(() => undefined);
    }
  })();
  return {
    samples: () => samples,
    runNow: () => {
      const run = runStatus(meshNamespace).then(record);
      extra.push(run);
      return run;
    },
    stop: async () => {
      stopped.abort();
      await Promise.all([loop, ...extra]);
      return samples;
    },
  };
}
