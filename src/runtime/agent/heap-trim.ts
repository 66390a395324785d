// Hands back to the system the memory the agent's start leaves behind: its own start, and the
// start of the mesh configuration (SVID, NATS, the first render and apply). V8 runs a full
// collection on its own only as the old generation grows; an agent's heap stays small, so that
// garbage, the young generation grown for it and the bytecode of code that never runs again
// (flag parsing, the CLI around the role) would otherwise stay resident for the pod's life. A
// sidecar runs in every meshed pod, where those few MiB add up. A memory-reducing full
// collection frees them: it compacts, shrinks the young generation, drops bytecode not run
// lately and releases the emptied pages. It costs tens of milliseconds, and the next render
// runs cold (recompiled, not yet optimised: 200 services 20 -> 28 ms, 2,000 services 310 ->
// 590 ms), so it is not repeated after every configuration.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../role/log';

/** V8's own --bytecode-old-age. */
const DEFAULT_BYTECODE_OLD_AGE = 6;

/** Quiet time after the last burst before the collection runs. */
export const HEAP_TRIM_DELAY_MS = 1_000;

type Collect = (options: {
  readonly type: 'major';
  readonly execution: 'sync';
  readonly flavor: 'last-resort';
}) => void;

export interface HeapTrimmer {
  /** (Re)starts the quiet-time timer: one collection after the last of close calls. */
  schedule(): void;
  close(): void;
}

/**
 * Node offers V8's collector only through --expose-gc, which the executable cannot be started
 * with per role: the flag is set on first use, and the `gc` function taken from a context made
 * after it (about 160 KiB, kept for the next collections).
 */
let collect: Collect | undefined;

function collector(): Collect {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Collect;
  }
  return collect;
}

export function createHeapTrimmer(logger: Logger, delayMs = HEAP_TRIM_DELAY_MS): HeapTrimmer {
  let timer: NodeJS.Timeout | undefined;
  const trim = (): void => {
    timer = undefined;
    const before = process.memoryUsage.rss();
    const started = performance.now();
    const collect = collector();
    // V8 flushes the bytecode of a function not run for this many full collections, by default
    // 6, more than an agent's heap goes through in hours. What runs again compiles again, lazily.
    setFlagsFromString('--bytecode-old-age=1');
    try {
      collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    } finally {
      setFlagsFromString(`--bytecode-old-age=${DEFAULT_BYTECODE_OLD_AGE}`);
    }
    logger.debug('heap trimmed', {
      durationMs: Math.round(performance.now() - started),
      rssBeforeMib: Math.round(before / 1_048_576),
      rssMib: Math.round(process.memoryUsage.rss() / 1_048_576),
    });
  };
  return {
    schedule: () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(trim, delayMs);
      timer.unref();
    },
    close: () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
