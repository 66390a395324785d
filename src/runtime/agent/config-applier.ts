// Applies a new nginx configuration to the running proxy without ever leaving it on a bad one.
// The candidate is written beside the live file (nginx.conf.new, flushed to disk), checked with
// `nginx -t`, and only then renamed over the live file and loaded with a graceful reload. A
// configuration nginx rejects, before or during the reload, leaves the last good one in place.
import { readFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describeError } from '../../errors';
import type { Logger } from '../role/log';
import type { NginxPaths } from './nginx-process';
import { testNginxConfig } from './nginx-process';
import type { Supervisor } from './supervisor';

/** What became of one configuration. */
export interface ApplyOutcome {
  /** True when the text is the one in use afterwards (also when it already was). */
  readonly applied: boolean;
  /** Why it was not applied, in one line (nginx's own words where it gave any). */
  readonly error?: string;
}

/** Applies configurations one at a time; a call made during another waits for it. */
export interface ConfigApplier {
  /** Applies text; label names it in logs (e.g. the snapshot generation). Never rejects. */
  apply(text: string, label: string): Promise<ApplyOutcome>;
  /** The configuration text in use ('' before the first apply when no file exists). */
  current(): string;
}

/** What a ConfigApplier needs: where nginx's files are, and who reloads it. */
export interface ConfigApplierOptions {
  readonly paths: NginxPaths;
  readonly supervisor: Pick<Supervisor, 'reload'>;
  readonly logger: Logger;
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

/** Replaces the live file with text through the candidate path: readers see old or new, whole. */
async function replaceLive(paths: NginxPaths, candidate: string, text: string): Promise<void> {
  await writeDurably(candidate, text);
  await rename(candidate, paths.config);
  await syncDirectory(dirname(paths.config));
}

function readLive(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function createConfigApplier(options: ConfigApplierOptions): ConfigApplier {
  const { paths, supervisor, logger } = options;
  const candidate = `${paths.config}.new`;
  let inUse = readLive(paths.config);
  let queue: Promise<unknown> = Promise.resolve();

  async function applyNow(text: string): Promise<ApplyOutcome> {
    if (text === inUse) return { applied: true };
    await writeDurably(candidate, text);
    try {
      await testNginxConfig({ ...paths, config: candidate });
    } catch (error) {
      await rm(candidate, { force: true });
      return { applied: false, error: describeError(error) };
    }
    await rename(candidate, paths.config);
    await syncDirectory(dirname(paths.config));
    try {
      await supervisor.reload();
    } catch (error) {
      // nginx kept its previous workers; the file goes back to what they run. (After a reload
      // that timed out rather than failed, nginx may still switch late; the next apply of any
      // different text reloads again and settles it.)
      await replaceLive(paths, candidate, inUse);
      return { applied: false, error: describeError(error) };
    }
    inUse = text;
    return { applied: true };
  }

  async function applyLogged(text: string, label: string): Promise<ApplyOutcome> {
    const started = performance.now();
    const unchanged = text === inUse;
    let outcome: ApplyOutcome;
    try {
      outcome = await applyNow(text);
    } catch (error) {
      await rm(candidate, { force: true }).catch(() => undefined);
      outcome = { applied: false, error: `cannot write ${paths.config}: ${describeError(error)}` };
    }
    const fields = {
      label,
      applied: outcome.applied,
      unchanged,
      durationMs: Math.round(performance.now() - started),
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
    };
    if (outcome.applied) logger.info('configuration applied', fields);
    else logger.warn('configuration not applied', fields);
    return outcome;
  }

  return {
    apply(text, label) {
      const result = queue.then(() => applyLogged(text, label));
      queue = result;
      return result;
    },
    current: () => inUse,
  };
}
