// Keeps nats.conf's users equal to the cluster's ServiceAccounts (see nats-config.ts): a watch of
// every ServiceAccount, a render once the list is complete, and after that a render per change,
// written atomically and followed by onWritten (the cert-reloader's SIGHUP to nats-server) when
// the text differs. A burst of changes (a namespace and its accounts) costs one write. Ready once
// the first complete file is on disk: nats-server must not start without it.
import { KUBE_SYSTEM_NAMESPACE } from '../../manifests/constants';
import type { BusIdentity, NatsLayout } from '../../manifests/install/nats-config';
import { buildBusIdentities, renderNatsConfig } from '../../manifests/install/nats-config';
import { describeError } from '../../errors';
import type { KubeObject } from '../kube/client';
import type { ResourceWatch, WatchUpdate } from '../kube/watch';
import type { Logger } from '../role/log';
import type { Readiness } from '../role/role';
import { writeFileAtomic } from '../svid/files';

/** Changes that arrive within this window are written together. */
const WRITE_DELAY_MS = 100;

export interface NatsUsersSettings {
  /** Where nats.conf goes. */
  readonly path: string;
  readonly layout: NatsLayout;
  readonly meshNamespace: string;
  /** The trust domain, known once the cert-reloader has its own SVID. */
  readonly trustDomain: Promise<string>;
  /** Starts the watch of every ServiceAccount. */
  readonly watchAccounts: (onUpdate: (update: WatchUpdate<KubeObject>) => void) => ResourceWatch;
  /** Called after each write but the first (nats-server reads the first when it starts). */
  readonly onWritten: () => void;
  readonly logger: Logger;
}

export interface NatsUsers {
  readiness(): Readiness;
  stop(): Promise<void>;
}

export function startNatsUsers(settings: NatsUsersSettings): NatsUsers {
  const { logger } = settings;
  const accounts = new Map<string, BusIdentity>();
  const excluded = new Set([KUBE_SYSTEM_NAMESPACE, settings.meshNamespace]);
  let synced = false;
  let trustDomain: string | undefined;
  let written: string | undefined;
  let failure: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let writing = Promise.resolve();
  let stopped = false;

  const identityOf = (object: KubeObject): BusIdentity => ({
    namespace: object.metadata?.namespace ?? '',
    serviceAccount: object.metadata?.name ?? '',
  });
  const keyOf = (identity: BusIdentity): string =>
    `${identity.namespace}/${identity.serviceAccount}`;

  const write = async (): Promise<void> => {
    if (stopped || !synced || trustDomain === undefined) return;
    const text = renderNatsConfig(settings.layout, {
      trustDomain,
      meshNamespace: settings.meshNamespace,
      identities: buildBusIdentities([...accounts.values()], excluded),
    });
    if (text === written) return;
    try {
      await writeFileAtomic(settings.path, text, 0o644);
    } catch (error) {
      failure = `cannot write ${settings.path}: ${describeError(error)}`;
      logger.error('cannot write the NATS configuration', { error: failure });
      schedule();
      return;
    }
    const first = written === undefined;
    written = text;
    failure = undefined;
    logger.info('wrote the NATS configuration', { path: settings.path, accounts: accounts.size });
    if (!first) settings.onWritten();
  };

  function schedule(): void {
    if (stopped || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      writing = writing.then(write);
    }, WRITE_DELAY_MS);
  }

  const onUpdate = (update: WatchUpdate<KubeObject>): void => {
    if (update.type === 'SYNC') {
      accounts.clear();
      for (const item of update.items) accounts.set(keyOf(identityOf(item)), identityOf(item));
      synced = true;
    } else if (update.type === 'DELETED') {
      accounts.delete(keyOf(identityOf(update.object)));
    } else {
      accounts.set(keyOf(identityOf(update.object)), identityOf(update.object));
    }
    schedule();
  };

  const watch = settings.watchAccounts(onUpdate);
  settings.trustDomain.then(
    (domain) => {
      trustDomain = domain;
      schedule();
    },
    () => undefined,
  );

  return {
    readiness: () => {
      if (written !== undefined) return { ready: true };
      if (failure !== undefined) return { ready: false, reason: failure };
      const listing = watch.failure();
      if (listing !== undefined) {
        return { ready: false, reason: `cannot list ServiceAccounts: ${listing.error}` };
      }
      return {
        ready: false,
        reason:
          trustDomain === undefined
            ? 'waiting for an SVID to know the trust domain'
            : 'listing ServiceAccounts for the NATS users',
      };
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await watch.stop();
      await writing;
    },
  };
}
