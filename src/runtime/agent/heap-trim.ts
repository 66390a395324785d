// Hands back to the system the memory a burst of the agent's work leaves behind: its start, and
// each configuration it applies. V8 runs a full collection on its own only as the old generation
// grows; an agent's heap stays small, so the garbage of its start and the young generation it
// grew for it would otherwise stay resident for as long as the pod lives. A sidecar runs in every
// meshed pod, where those few MiB add up. A memory-reducing full collection frees them: it
// compacts, shrinks the young generation and releases the emptied pages.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../role/log';

/** Quiet time after the last burst before the collection runs. */
export const HEAP_TRIM_DELAY_MS = 1_000;

type Collect = (options: {
  readonly type: 'major';
  readonly execution: 'sync';
  readonly flavor: 'last-resort';
}) => void;

export interface HeapTrimmer {
  /** (Re)starts the quiet-time timer: one collection after the last of several calls. */
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
    collector()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
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
