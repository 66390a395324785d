import type { Timers } from '../../src/runtime/controller/debounce';
import { createDebouncer } from '../../src/runtime/controller/debounce';

/** Timers that move only when the test advances them. */
function manualTimers(): Timers & { advance(ms: number): Promise<void> } {
  let now = 0;
  let nextId = 0;
  const pending = new Map<number, { at: number; callback: () => void }>();
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 10; i += 1) await Promise.resolve();
  };
  return {
    now: () => now,
    setTimeout(callback, ms) {
      nextId += 1;
      pending.set(nextId, { at: now + ms, callback });
      return nextId;
    },
    clearTimeout: (handle) => void pending.delete(handle as number),
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...pending.entries()]
          .filter(([, timer]) => timer.at <= end)
          .sort((a, b) => a[1].at - b[1].at)[0];
        if (due === undefined) break;
        pending.delete(due[0]);
        now = due[1].at;
        due[1].callback();
        await settle();
      }
      now = end;
      await settle();
    },
  };
}

/** A job whose runs are recorded with their start time and finished by the test. */
function controlledJob(timers: Timers) {
  const starts: number[] = [];
  const finishers: (() => void)[] = [];
  let active = 0;
  let maxActive = 0;
  const run = (): Promise<void> => {
    starts.push(timers.now());
    active += 1;
    maxActive = Math.max(maxActive, active);
    return new Promise<void>((resolve) =>
      finishers.push(() => {
        active -= 1;
        resolve();
      }),
    );
  };
  return { run, starts, finish: () => finishers.shift()?.(), maxActive: () => maxActive };
}

describe('createDebouncer', () => {
  it('runs once, 100 ms after the last of a burst of changes', async () => {
    const timers = manualTimers();
    const job = controlledJob(timers);
    const debouncer = createDebouncer(job.run, { timers, onError: () => undefined });
    debouncer.notify();
    await timers.advance(50);
    debouncer.notify();
    await timers.advance(50);
    debouncer.notify();
    await timers.advance(99);
    expect(job.starts).toEqual([]);
    await timers.advance(1);
    expect(job.starts).toEqual([200]);
    job.finish();
    await timers.advance(5000);
    expect(job.starts).toEqual([200]);
  });

  it('runs no later than 1 s after the first change when changes never pause', async () => {
    const timers = manualTimers();
    const job = controlledJob(timers);
    const debouncer = createDebouncer(job.run, { timers, onError: () => undefined });
    for (let t = 0; t < 1500; t += 50) {
      debouncer.notify();
      await timers.advance(50);
      if (job.starts.length > 0) job.finish();
    }
    expect(job.starts[0]).toBe(1000);
    expect(job.starts).toHaveLength(1);
  });

  it('never runs twice at once: changes during a run give one run right after it', async () => {
    const timers = manualTimers();
    const job = controlledJob(timers);
    const debouncer = createDebouncer(job.run, { timers, onError: () => undefined });
    debouncer.notify();
    await timers.advance(100);
    expect(job.starts).toEqual([100]);
    for (let i = 0; i < 5; i += 1) {
      debouncer.notify();
      await timers.advance(300);
    }
    expect(job.starts).toEqual([100]);
    await timers.advance(1000);
    job.finish();
    await timers.advance(0);
    expect(job.starts).toEqual([100, 2600]);
    expect(job.maxActive()).toBe(1);
    job.finish();
    await debouncer.stop();
  });

  it('reports a failed run and still runs for the next change', async () => {
    const timers = manualTimers();
    const errors: unknown[] = [];
    let runs = 0;
    const debouncer = createDebouncer(
      () => {
        runs += 1;
        return runs === 1 ? Promise.reject(new Error('build failed')) : Promise.resolve();
      },
      { timers, onError: (error) => errors.push(error) },
    );
    debouncer.notify();
    await timers.advance(100);
    debouncer.notify();
    await timers.advance(100);
    expect(runs).toBe(2);
    expect(errors).toEqual([new Error('build failed')]);
  });

  it('runs nothing after stop, and stop waits for the run in progress', async () => {
    const timers = manualTimers();
    const job = controlledJob(timers);
    const debouncer = createDebouncer(job.run, { timers, onError: () => undefined });
    debouncer.notify();
    await timers.advance(100);
    debouncer.notify();
    let stopped = false;
    const stopping = debouncer.stop().then(() => (stopped = true));
    await timers.advance(0);
    expect(stopped).toBe(false);
    job.finish();
    await stopping;
    debouncer.notify();
    await timers.advance(5000);
    expect(job.starts).toEqual([100]);
  });
});
