// Applies a new nginx configuration to the running proxy without ever leaving it on a bad one.
// The candidate is written beside the live file (nginx.conf.new, flushed to disk), checked with
// `nginx -t`, and only then renamed over the live file and loaded with a graceful reload. A
// configuration nginx rejects, before or during the reload, leaves the last good one in place.
//
// nginx also reads some files the configuration names only when it loads it: the trust bundle
// (ssl_client_certificate, proxy_ssl_trusted_certificate). When such a file changes, reloadFile
// reloads nginx on the unchanged configuration, in turn with applies so that two reloads never
// overlap, and only after `nginx -t` accepts the live file with the file's new content; while
// that fails it retries with backoff and nginx keeps what it loaded last. The SVID itself needs
// no reload: the configuration names it through a variable, which nginx reads at each handshake.
//
// A configuration comes with its members file (the endpoints of its upstreams,
// render/sidecar/upstream-slots.ts), replaced the same way (written beside, flushed, renamed).
// When only the members changed, nginx is told to read the file again (a PUT on its stats socket)
// and not reloaded: endpoints come and go without a reload. After a reload the running workers
// are told too, so that old workers still serving follow. Should nginx not take the PUT, it is
// reloaded instead, which reads the file as well.
import { readFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describeError } from '../../errors';
import { jitteredBackoffMs } from '../backoff';
import type { Logger } from '../role/log';
import type { NginxPaths } from './nginx-process';
import { NginxRejectedError, testNginxConfig } from './nginx-process';
import type { Supervisor } from './supervisor';

/** What became of one configuration. */
export interface ApplyOutcome {
  /** True when the text is the one in use afterwards (also when it already was). */
  readonly applied: boolean;
  /** Only the members changed, and nginx took them without a reload. */
  readonly membersOnly?: boolean;
  /** Why it was not applied, in one line (nginx's own words where it gave any). */
  readonly error?: string;
  /** `nginx -t` read the text and refused it: the text is at fault, not the machine. */
  readonly rejected?: boolean;
}

/** What `nginx -t` says of a text. */
export interface CheckOutcome {
  readonly accepted: boolean;
  /** Why not, in one line (nginx's own words where it gave any). */
  readonly error?: string;
}

/** Applies configurations one at a time; a call made during another waits for it. */
export interface ConfigApplier {
  /**
   * Applies text, with its members file when given; label names it in logs (e.g. the snapshot
   * generation). Never rejects.
   */
  apply(text: string, label: string, members?: string): Promise<ApplyOutcome>;
  /**
   * Runs `nginx -t` on text without applying it, in turn with applies: the live file and nginx
   * stay as they are. Never rejects.
   */
  check(text: string): Promise<CheckOutcome>;
  /** The configuration text in use ('' before the first apply when no file exists). */
  current(): string;
  /**
   * Makes nginx read path again, which changed on disk, when the configuration in use names it:
   * `nginx -t` on the live file, then a reload, in turn with applies. Resolves with the first
   * attempt's outcome; after a failure it retries with backoff until a reload succeeds (one for
   * a later configuration counts). Never rejects.
   */
  reloadFile(path: string): Promise<ApplyOutcome>;
  /** Whether a changed file waits for a reload that has not succeeded yet. */
  filesPending(): boolean;
  /** How often nginx was reloaded, and told of new members without a reload, since creation. */
  counts(): { readonly reloads: number; readonly memberUpdates: number };
  /** Stops retrying; a reloadFile after this does nothing. */
  close(): void;
}

/** What a ConfigApplier needs: where nginx's files are, and who reloads it. */
export interface ConfigApplierOptions {
  readonly paths: NginxPaths;
  readonly supervisor: Pick<Supervisor, 'reload'>;
  readonly logger: Logger;
  /** Backoff between failed reloads for a changed file (default 1 s doubling to 30 s). */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
  /** A number in [0, 1), for the backoff's jitter (default Math.random). */
  readonly random?: () => number;
  /**
   * The members file the configurations name, and how to make the running nginx read it again
   * (rejects when nginx did not take it). Absent: apply's members are ignored.
   */
  readonly members?: { readonly path: string; readonly update: () => Promise<void> };
}

/** Writes text to path and flushes it to disk, so a rename after it never exposes half a file. */
async function writeDurably(path: string, text: string): Promise<void> {
  const file = await open(path, 'w', 0o644);
  try {
    await file.writeFile(text, 'utf8');
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Flushes a directory, so a rename inside it survives a crash. */
async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/** Replaces path with text through candidate: readers see old or new, whole. */
async function replaceFile(path: string, candidate: string, text: string): Promise<void> {
  await writeDurably(candidate, text);
  await rename(candidate, path);
  await syncDirectory(dirname(path));
}

function readLive(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

const DEFAULT_RETRY = { initialMs: 1_000, maxMs: 30_000 };

/** Counter of nginx reloads, for configuration changes and changed files alike. */
export const RELOADS_METRIC = 'nginx_mesh_reloads_total';
/** Counter of member updates nginx took without a reload. */
export const MEMBER_UPDATES_METRIC = 'nginx_mesh_endpoint_updates_total';

/** The applier's counters, in Prometheus's text format. */
export function applierExposition(applier: Pick<ConfigApplier, 'counts'>): string {
  const { reloads, memberUpdates } = applier.counts();
  return [
    `# HELP ${RELOADS_METRIC} Reloads of the sidecar's nginx since the agent started.`,
    `# TYPE ${RELOADS_METRIC} counter`,
    `${RELOADS_METRIC} ${reloads}`,
    `# HELP ${MEMBER_UPDATES_METRIC} Endpoint changes nginx took without a reload since the agent started.`,
    `# TYPE ${MEMBER_UPDATES_METRIC} counter`,
    `${MEMBER_UPDATES_METRIC} ${memberUpdates}`,
    '',
  ].join('\n');
}

export function createConfigApplier(options: ConfigApplierOptions): ConfigApplier {
  const { paths, supervisor, logger } = options;
  const candidate = `${paths.config}.new`;
  let inUse = readLive(paths.config);
  /** The members nginx was last told of (undefined: unknown, so the next ones are written). */
  let membersInUse: string | undefined;
  let reloads = 0;
  let memberUpdates = 0;
  let queue: Promise<unknown> = Promise.resolve();
  /** Counts reloadFile calls; changed maps each file to the count at its last change. */
  let changes = 0;
  const changed = new Map<string, number>();
  /** The count when the last successful reload began: changes up to it are loaded. */
  let loaded = 0;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;

  /** Changed files nginx has not read since, and that the configuration in use names. */
  const pendingFiles = (): string[] =>
    [...changed]
      .filter(([path, change]) => change > loaded && inUse.includes(path))
      .map(([path]) => path);

  const enqueue = <T>(job: () => Promise<T>): Promise<T> => {
    const result = queue.then(job);
    queue = result.catch(() => undefined);
    return result;
  };

  /** Reloads nginx on the live file; every change counted before it started is then loaded. */
  async function reload(): Promise<void> {
    const startedAt = changes;
    await supervisor.reload();
    reloads += 1;
    loaded = Math.max(loaded, startedAt);
    if (pendingFiles().length === 0) {
      failures = 0;
      clearTimeout(retryTimer);
      retryTimer = undefined;
    }
  }

  async function reloadFilesNow(): Promise<ApplyOutcome> {
    const files = pendingFiles();
    if (closed || files.length === 0) return { applied: true };
    const started = performance.now();
    const fields = { files, config: paths.config };
    try {
      await testNginxConfig(paths);
      await reload();
    } catch (error) {
      failures += 1;
      const retryMs = jitteredBackoffMs(
        failures - 1,
        (options.random ?? Math.random)(),
        options.retry?.initialMs ?? DEFAULT_RETRY.initialMs,
        options.retry?.maxMs ?? DEFAULT_RETRY.maxMs,
      );
      const message = describeError(error);
      logger.warn('nginx not reloaded for changed files; keeping what it loaded last', {
        ...fields,
        error: message,
        attempt: failures,
        retryMs,
      });
      scheduleRetry(retryMs);
      return { applied: false, error: message };
    }
    logger.info('nginx reloaded for changed files', {
      ...fields,
      durationMs: Math.round(performance.now() - started),
    });
    return { applied: true };
  }

  function scheduleRetry(ms: number): void {
    if (closed || retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void enqueue(reloadFilesNow);
    }, ms);
    retryTimer.unref();
  }

  /**
   * Makes the running nginx read the members file: a PUT, or when nginx does not take it, a
   * reload. Rejects when neither worked.
   */
  async function updateMembers(members: string): Promise<void> {
    try {
      await options.members?.update();
      memberUpdates += 1;
    } catch (error) {
      logger.warn('nginx did not take the new members; reloading it instead', {
        error: describeError(error),
      });
      await reload();
    }
    membersInUse = members;
  }

  async function applyNow(text: string, members: string | undefined): Promise<ApplyOutcome> {
    const membersChanged =
      options.members !== undefined && members !== undefined && members !== membersInUse;
    if (membersChanged) {
      await replaceFile(options.members.path, `${options.members.path}.new`, members);
      membersInUse = undefined;
    }
    if (text === inUse) {
      if (!membersChanged) return { applied: true };
      try {
        await updateMembers(members);
      } catch (error) {
        return { applied: false, error: describeError(error) };
      }
      return { applied: true, membersOnly: true };
    }
    await writeDurably(candidate, text);
    try {
      await testNginxConfig({ ...paths, config: candidate });
    } catch (error) {
      await rm(candidate, { force: true });
      // The configuration in force still gets the endpoints its upstreams have now.
      if (membersChanged) await updateMembers(members).catch(() => undefined);
      return {
        applied: false,
        error: describeError(error),
        ...(error instanceof NginxRejectedError ? { rejected: true } : {}),
      };
    }
    await rename(candidate, paths.config);
    await syncDirectory(dirname(paths.config));
    try {
      await reload();
    } catch (error) {
      // nginx kept its previous workers; the file goes back to what they run. (After a reload
      // that timed out rather than failed, nginx may still switch late; the next apply of any
      // different text reloads again and settles it.)
      await replaceFile(paths.config, candidate, inUse);
      return { applied: false, error: describeError(error) };
    }
    inUse = text;
    // The new workers read the file as they start; the old ones, still serving, are told.
    if (membersChanged) {
      await options.members?.update().catch(() => undefined);
      membersInUse = members;
    }
    return { applied: true };
  }

  async function checkNow(text: string): Promise<CheckOutcome> {
    if (text === inUse) return { accepted: true };
    try {
      await writeDurably(candidate, text);
      await testNginxConfig({ ...paths, config: candidate });
      return { accepted: true };
    } catch (error) {
      return { accepted: false, error: describeError(error) };
    } finally {
      await rm(candidate, { force: true }).catch(() => undefined);
    }
  }

  async function applyLogged(
    text: string,
    label: string,
    members: string | undefined,
  ): Promise<ApplyOutcome> {
    const started = performance.now();
    const unchanged = text === inUse;
    let outcome: ApplyOutcome;
    try {
      outcome = await applyNow(text, members);
    } catch (error) {
      await rm(candidate, { force: true }).catch(() => undefined);
      outcome = {
        applied: false,
        error: `cannot write ${unchanged ? (options.members?.path ?? paths.config) : paths.config}: ${describeError(error)}`,
      };
    }
    const fields = {
      label,
      applied: outcome.applied,
      unchanged,
      durationMs: Math.round(performance.now() - started),
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
    };
    if (outcome.membersOnly === true)
      logger.info('endpoints updated without a reload', { label, durationMs: fields.durationMs });
    else if (outcome.applied) logger.info('configuration applied', fields);
    else logger.warn('configuration not applied', fields);
    return outcome;
  }

  return {
    apply: (text, label, members) => enqueue(() => applyLogged(text, label, members)),
    check: (text) => enqueue(() => checkNow(text)),
    current: () => inUse,
    reloadFile(path) {
      if (closed) return Promise.resolve({ applied: true });
      changes += 1;
      changed.set(path, changes);
      return enqueue(reloadFilesNow);
    },
    filesPending: () => pendingFiles().length > 0,
    counts: () => ({ reloads, memberUpdates }),
    close() {
      closed = true;
      clearTimeout(retryTimer);
      retryTimer = undefined;
    },
  };
}
