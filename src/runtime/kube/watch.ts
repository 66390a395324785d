// List-then-watch of one collection, the way an informer keeps a cache current: a list gives the
// complete set and the resourceVersion to watch from, the watch streams changes (with bookmarks
// moving the version along), and the server ends every watch after timeoutSeconds so it is
// renewed. An expired version (410 Gone, as an HTTP status or as an ERROR event) means a fresh
// list; a failed connection or a collection that is not served yet (a CRD not installed) is
// retried with bounded, jittered backoff, so a broken API server never sees a tight loop.
import { jitteredBackoffMs } from '../backoff';
import type { Clock } from '../clock';
import type { Logger } from '../role/log';
import type { KubeConnection, RawResponse } from './access';
import type { KubeObject } from './client';
import { apiError, KubeApiError, KubeClient } from './client';

/** What a watch reports: the whole set after each (re)list, then one change at a time. */
export type WatchUpdate<T> =
  | { readonly type: 'SYNC'; readonly items: readonly T[] }
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly object: T };

export interface WatchOptions<T> {
  /** Collection path, e.g. /api/v1/pods or /apis/split.smi-spec.io/v1alpha3/trafficsplits. */
  readonly path: string;
  /** Only objects matching this field selector, e.g. metadata.name=meshconfig. */
  readonly fieldSelector?: string;
  /** Called for every update, in order; a throwing callback is logged and the watch goes on. */
  readonly onUpdate: (update: WatchUpdate<T>) => void;
  readonly clock: Clock;
  /** A number in [0, 1) for backoff jitter. */
  readonly random: () => number;
  readonly logger: Logger;
  /** How long the server keeps one watch open; the watch is then renewed. Default 300. */
  readonly timeoutSeconds?: number;
  /** First retry delay, doubled after each failure in a row. Default 250. */
  readonly backoffInitialMs?: number;
  /** Upper bound of a retry delay. Default 5000. */
  readonly backoffMaxMs?: number;
}

export interface ResourceWatch {
  /** Whether a complete set has been delivered (a missing collection counts as empty). */
  synced(): boolean;
  /** Why the list or watch has been failing, and since when; undefined while it works. */
  failure(): { readonly error: string; readonly sinceMs: number } | undefined;
  /** Ends the watch; resolves once no request is left running. */
  stop(): Promise<void>;
}

const DEFAULT_TIMEOUT_SECONDS = 300;
const DEFAULT_BACKOFF_INITIAL_MS = 250;
/**
 * Low enough that a cache follows an API server that came back within seconds (the first wait
 * after its return is at most this), high enough that a dozen watches do not flood a broken one.
 */
const DEFAULT_BACKOFF_MAX_MS = 5_000;
/** Silence allowed beyond timeoutSeconds before a watch is taken for dead. */
const IDLE_GRACE_MS = 30_000;
/** A watch the server kept open this long was healthy, whatever it delivered. */
const HEALTHY_WATCH_MS = 1_000;

/**
 * The delay before retry number `failures` (0-based): initialMs doubled per failure, capped at
 * maxMs, of which the upper half is random ("equal jitter"), so many watchers spread out.
 */
export function backoffDelayMs(
  failures: number,
  random: () => number,
  initialMs = DEFAULT_BACKOFF_INITIAL_MS,
  maxMs = DEFAULT_BACKOFF_MAX_MS,
): number {
  return jitteredBackoffMs(failures, random(), initialMs, maxMs);
}

interface WatchEventLine<T> {
  readonly type?: string;
  readonly object?: T & { readonly code?: number; readonly message?: string };
}

type ReadEvent<T> =
  | { readonly kind: 'gone' }
  | { readonly kind: 'error'; readonly error: Error }
  | { readonly kind: 'event'; readonly resourceVersion: string; readonly update?: WatchUpdate<T> };

function errorEvent(status: { code?: number; message?: string } | undefined): ReadEvent<never> {
  if (status?.code === 410) return { kind: 'gone' };
  const detail = `${status?.code ?? '?'}: ${status?.message ?? ''}`;
  return { kind: 'error', error: new Error(`watch error ${detail}`) };
}

/** One line of a watch stream: a change, a bookmark (no update), 410 Gone or another error. */
function readEvent<T extends KubeObject>(line: string): ReadEvent<T> {
  let event: WatchEventLine<T>;
  try {
    event = JSON.parse(line) as WatchEventLine<T>;
  } catch {
    return { kind: 'error', error: new Error(`unreadable watch event: ${line.slice(0, 200)}`) };
  }
  const object = event.object;
  if (event.type === 'ERROR') return errorEvent(object);
  const resourceVersion = object?.metadata?.resourceVersion ?? '';
  const type = event.type;
  if (object !== undefined && (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED')) {
    return { kind: 'event', resourceVersion, update: { type, object } };
  }
  return { kind: 'event', resourceVersion };
}

/** How one watch request ended. */
type WatchEnd =
  | { readonly kind: 'closed'; readonly events: number; readonly openMs: number }
  | { readonly kind: 'gone'; readonly events: number; readonly openMs: number }
  | { readonly kind: 'failed'; readonly events: number; readonly error: Error };

/** The promise's outcome, or the signal's reason as soon as it aborts. */
function abandonedOnAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Starts listing and watching; updates flow to options.onUpdate until stop(). */
export function startWatch<T extends KubeObject>(
  connection: KubeConnection,
  options: WatchOptions<T>,
): ResourceWatch {
  const abort = new AbortController();
  const client = new KubeClient(connection);
  const logger = options.logger.with({ watch: options.path });
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  let synced = false;
  let resourceVersion = '';
  let failures = 0;
  let missing = false;
  /** Why the latest list or watch failed, and since when they have been failing in a row. */
  let failing: Error | undefined;
  let failingSince: number | undefined;
  const recovered = (): void => {
    failing = undefined;
    failingSince = undefined;
  };
  const failedWith = (error: Error): void => {
    failing = error;
    failingSince ??= options.clock.now().getTime();
  };

  const deliver = (update: WatchUpdate<T>): void => {
    try {
      options.onUpdate(update);
    } catch (error) {
      logger.error('watch handler failed', { error });
    }
  };

  const selectors = (): URLSearchParams => {
    const query = new URLSearchParams();
    if (options.fieldSelector !== undefined) query.set('fieldSelector', options.fieldSelector);
    return query;
  };

  const pause = async (): Promise<void> => {
    const delay = backoffDelayMs(
      failures,
      options.random,
      options.backoffInitialMs,
      options.backoffMaxMs,
    );
    failures += 1;
    await options.clock.sleep(delay, abort.signal);
  };

  /** Lists the collection; false when it is not served (yet). */
  const relist = async (): Promise<boolean> => {
    // A list cannot be aborted; stop() does not wait for it to answer.
    const listed = await abandonedOnAbort(
      client.listVersioned<T>(options.path, selectors()),
      abort.signal,
    );
    if (listed === undefined) {
      if (!missing) logger.warn('resource type is not served yet; retrying', {});
      // A kind that is not served has no objects: a deleted CRD took its objects with it.
      if (!missing || !synced) deliver({ type: 'SYNC', items: [] });
      missing = true;
      synced = true;
      // Not a failure of the watch: the cache is complete, the kind is empty.
      recovered();
      return false;
    }
    if (missing) logger.info('resource type is served now', {});
    missing = false;
    recovered();
    resourceVersion = listed.resourceVersion;
    deliver({ type: 'SYNC', items: listed.items });
    synced = true;
    return true;
  };

  const watchOnce = async (): Promise<WatchEnd> => {
    const query = selectors();
    query.set('watch', '1');
    query.set('resourceVersion', resourceVersion);
    query.set('allowWatchBookmarks', 'true');
    query.set('timeoutSeconds', String(timeoutSeconds));
    let events = 0;
    let gone = false;
    let failure: Error | undefined;
    const onLine = (line: string): void => {
      if (gone || failure !== undefined) return;
      const read = readEvent<T>(line);
      if (read.kind === 'gone') gone = true;
      else if (read.kind === 'error') failure = read.error;
      else {
        events += 1;
        if (read.resourceVersion !== '') resourceVersion = read.resourceVersion;
        if (read.update !== undefined) deliver(read.update);
      }
    };
    const openedAt = options.clock.now().getTime();
    let response: RawResponse;
    try {
      response = await connection.stream({
        path: `${options.path}?${query.toString()}`,
        onLine,
        // An accepted watch follows the cluster again: say so now, not when it ends minutes later.
        onOpen: (status) => {
          if (status >= 200 && status <= 299) {
            recovered();
          }
        },
        signal: abort.signal,
        idleTimeoutMs: timeoutSeconds * 1000 + IDLE_GRACE_MS,
      });
    } catch (error) {
      return { kind: 'failed', events, error: error as Error };
    }
    const openMs = options.clock.now().getTime() - openedAt;
    if (response.status === 410) return { kind: 'gone', events, openMs };
    if (response.status < 200 || response.status > 299) {
      return { kind: 'failed', events, error: apiError(response) };
    }
    if (gone) return { kind: 'gone', events, openMs };
    if (failure !== undefined) return { kind: 'failed', events, error: failure };
    return { kind: 'closed', events, openMs };
  };

  /** One round: a list when needed, then one watch; resolves whether to back off first. */
  const round = async (): Promise<boolean> => {
    if (resourceVersion === '') {
      if (!(await relist())) return true;
    }
    const end = await watchOnce();
    if (end.kind === 'gone') {
      logger.info('resource version expired; listing again', {});
      resourceVersion = '';
    }
    if (end.kind === 'failed') {
      if (abort.signal.aborted) return true;
      // The collection is no longer served (its CRD was deleted): list again to learn whether
      // it comes back.
      if (end.error instanceof KubeApiError && end.error.status === 404) resourceVersion = '';
      logger.warn('watch failed; reconnecting', { error: end.error, failures });
      failedWith(end.error);
      return true;
    }
    // A watch the server held open and ended in time was healthy, even on a quiet collection
    // that saw no event: renew it at once. Counting quiet watches as failures made the wait
    // before the next one grow to its cap, and changes reached the cache that much later. One
    // that ended straight away with nothing (410 at once) waits, longer each time in a row.
    recovered();
    if (end.events > 0 || end.openMs >= HEALTHY_WATCH_MS) {
      failures = 0;
      return false;
    }
    return true;
  };

  const run = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      let backOff: boolean;
      try {
        backOff = await round();
      } catch (error) {
        if (abort.signal.aborted) return;
        failedWith(error instanceof Error ? error : new Error(String(error)));
        logger.warn('list failed; retrying', {
          error,
          status: error instanceof KubeApiError ? error.status : undefined,
        });
        backOff = true;
      }
      if (backOff && !abort.signal.aborted) await pause().catch(() => undefined);
    }
  };

  const running = run();
  return {
    synced: () => synced,
    failure: () =>
      failing === undefined || failingSince === undefined
        ? undefined
        : { error: failing.message, sinceMs: failingSince },
    stop: async () => {
      abort.abort(new Error(`watch of ${options.path} stopped`));
      await running;
    },
  };
}
