// The token GET /sidecars asks for, kept in the Secret CONTROLLER_REPORT_SECRET_NAME of the mesh
// namespace. Every replica serves the same one: the first to find no Secret creates it, and the
// others read what it wrote. remove and supportpkg read the Secret with the user's credentials.
import { randomBytes } from 'node:crypto';
import type * as K8s from '@kubernetes/client-node';
import { MeshctlError, describeError } from '../../errors';
import {
  CONTROLLER_REPORT_SECRET_NAME,
  CONTROLLER_REPORT_TOKEN_KEY,
} from '../../manifests/constants';
import type { Clock } from '../clock';
import type { OwnerSource } from '../kube/owner';
import { ownedMetadata } from '../kube/owner';
import type { RetryLoop } from '../retry-loop';
import { startRetryLoop } from '../retry-loop';
import type { Logger } from '../role/log';

export interface ReportTokenStore {
  /** The stored token, or undefined when the Secret does not exist or holds none. */
  read(): Promise<string | undefined>;
  /** Creates the Secret with token; 'conflict' when it exists already (another replica). */
  create(token: string): Promise<'written' | 'conflict'>;
}

/** 32 random bytes, as URL-safe base64: a header value that cannot be guessed. */
export function newReportToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The token in force: the stored one, else a new one this call stores. */
export async function loadReportToken(
  store: ReportTokenStore,
  newToken: () => string,
): Promise<string> {
  const stored = await store.read();
  if (stored !== undefined) return stored;
  const token = newToken();
  if ((await store.create(token)) === 'written') return token;
  const winner = await store.read();
  if (winner === undefined) {
    throw new MeshctlError(
      `Secret ${CONTROLLER_REPORT_SECRET_NAME} exists but has no ${CONTROLLER_REPORT_TOKEN_KEY}`,
    );
  }
  return winner;
}

const statusOf = (error: unknown): unknown => (error as { code?: unknown }).code;

/** The Secret through the API server, created owned by owner (the controller's ClusterRole). */
export function kubeReportTokenStore(
  k8s: typeof K8s,
  config: K8s.KubeConfig,
  namespace: string,
  owner: OwnerSource,
): ReportTokenStore {
  const core = config.makeApiClient(k8s.CoreV1Api);
  const name = CONTROLLER_REPORT_SECRET_NAME;
  return {
    async read() {
      try {
        const secret = await core.readNamespacedSecret({ name, namespace });
        const data = secret.data?.[CONTROLLER_REPORT_TOKEN_KEY];
        const token = data === undefined ? '' : Buffer.from(data, 'base64').toString('utf8');
        return token === '' ? undefined : token;
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw new MeshctlError(`reading Secret ${namespace}/${name}: ${describeError(error)}`, {
          cause: error,
        });
      }
    },
    async create(token) {
      const metadata = await ownedMetadata(name, namespace, owner);
      try {
        await core.createNamespacedSecret({
          namespace,
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            type: 'Opaque',
            metadata,
            data: { [CONTROLLER_REPORT_TOKEN_KEY]: Buffer.from(token).toString('base64') },
          },
        });
        return 'written';
      } catch (error) {
        if (statusOf(error) === 409) return 'conflict';
        throw new MeshctlError(`creating Secret ${namespace}/${name}: ${describeError(error)}`, {
          cause: error,
        });
      }
    },
  };
}

/** Loads the token in the background, retrying with backoff; current() is undefined until then. */
export function startReportToken(options: {
  readonly store: ReportTokenStore;
  readonly clock: Clock;
  readonly random: () => number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly logger: Logger;
}): { current(): string | undefined; readonly loop: RetryLoop } {
  let token: string | undefined;
  const loop = startRetryLoop({
    step: async () => {
      token = await loadReportToken(options.store, newReportToken);
      return 'done';
    },
    failed: (error, failures, retryInMs) =>
      options.logger.warn('waiting for the sidecar report token', {
        error: describeError(error),
        failures,
        retryInMs,
      }),
    clock: options.clock,
    random: options.random,
    initialBackoffMs: options.initialBackoffMs,
    maxBackoffMs: options.maxBackoffMs,
  });
  return { current: () => token, loop };
}
