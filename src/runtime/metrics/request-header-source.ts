// The API server's requestheader settings, kept current: the ConfigMap
// kube-system/extension-apiserver-authentication is read at start (retried until it answers),
// again every intervalMs, and soon after a client certificate fails verification (the front
// proxy's CA may have been rotated), at most once per minRefreshMs.
import { describeError } from '../../errors';
import type { Clock } from '../clock';
import { startRetryLoop } from '../retry-loop';
import type { Logger } from '../role/log';
import type { Readiness } from '../role/role';
import type { RequestHeaderConfig } from './front-proxy';
import { parseRequestHeaderConfig } from './front-proxy';

export interface RequestHeaderSourceOptions {
  /** Reads the ConfigMap's data. */
  readonly read: () => Promise<Readonly<Record<string, string>>>;
  /** The ConfigMap, for logs and readiness ("ConfigMap kube-system/…"). */
  readonly description: string;
  /** How often the settings are read again (default 60 s). */
  readonly intervalMs?: number;
  /** Reads asked for by refresh() come at most this often (default 10 s). */
  readonly minRefreshMs?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
}

export interface RequestHeaderSource {
  /** The first settings read; rejects only when stopped first. */
  readonly first: Promise<RequestHeaderConfig>;
  /** Called with the settings whenever a read finds them changed. */
  onChange(listener: (config: RequestHeaderConfig) => void): void;
  /** A client certificate failed verification: read the settings again soon. */
  refresh(): void;
  /** False until the settings were read once, with the reason. */
  readiness(): Readiness;
  stop(): Promise<void>;
}

const DEFAULT_INTERVAL_MS = 60_000;
const DEFAULT_MIN_REFRESH_MS = 10_000;
const DEFAULT_INITIAL_BACKOFF_MS = 1_000;
const DEFAULT_MAX_BACKOFF_MS = 60_000;

export function startRequestHeaderSource(options: RequestHeaderSourceOptions): RequestHeaderSource {
  const { clock, logger } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const minRefreshMs = options.minRefreshMs ?? DEFAULT_MIN_REFRESH_MS;
  const listeners: ((config: RequestHeaderConfig) => void)[] = [];
  let current: { config: RequestHeaderConfig; text: string } | undefined;
  let failure: string | undefined;
  let lastReadAt = -Infinity;
  let resolveFirst: (config: RequestHeaderConfig) => void = () => undefined;
  let rejectFirst: (error: Error) => void = () => undefined;
  const first = new Promise<RequestHeaderConfig>((resolve, reject) => {
    resolveFirst = resolve;
    rejectFirst = reject;
  });
  first.catch(() => undefined);

  async function read(): Promise<number> {
    lastReadAt = clock.now().getTime();
    const config = parseRequestHeaderConfig(await options.read());
    const text = JSON.stringify(config);
    failure = undefined;
    if (current === undefined) {
      current = { config, text };
      resolveFirst(config);
    } else if (current.text !== text) {
      current = { config, text };
      logger.info('requestheader settings changed', { source: options.description });
      for (const listener of listeners) listener(config);
    }
    return intervalMs;
  }

  const loop = startRetryLoop({
    step: read,
    failed: (error, failures, retryInMs) => {
      failure = describeError(error);
      logger.warn('cannot read the requestheader settings; retrying', {
        source: options.description,
        error: failure,
        failures,
        retryInMs,
      });
    },
    clock,
    random: options.random,
    initialBackoffMs: options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS,
    maxBackoffMs: options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
  });

  return {
    first,
    onChange: (listener) => void listeners.push(listener),
    refresh() {
      loop.runWithin(lastReadAt + minRefreshMs - clock.now().getTime());
    },
    readiness(): Readiness {
      if (current !== undefined) return { ready: true };
      return {
        ready: false,
        reason:
          failure === undefined
            ? `waiting for ${options.description}`
            : `waiting for the Kubernetes API: ${failure}`,
      };
    },
    async stop() {
      await loop.stop();
      rejectFirst(new Error(`stopped before ${options.description} was read`));
    },
  };
}
