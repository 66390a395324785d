// The one way mesh processes connect to NATS: TLS with the workload's SVID (whose SPIFFE ID is
// the client's NATS user), the server checked by its SPIFFE ID, reconnecting forever with a jittered wait, every status change logged.
// startBusLink keeps a connection for the life of a role: it dials from the first attempt until
// one succeeds, and dials anew whenever nats.js gives a connection up for good (it does after
// repeated authorization errors), so no fault of NATS leaves a role without a bus.
//
// The SVID is renewed in place (written beside and renamed over) while the connection lives.
// nats.js reads certFile, keyFile and caFile from disk on every connect and reconnect, so naming
// the files (rather than passing their contents) makes every reconnect present the current SVID
// and trust the current bundle; the established TLS session keeps the one it started with.
import type { PeerCertificate } from 'node:tls';
import type { ConnectionOptions, NatsConnection, TlsOptions } from 'nats';
import { connect, Events } from 'nats';
import { describeError } from '../../errors';
import { jitteredBackoffMs } from '../backoff';
import { systemClock } from '../clock';
import type { Logger } from '../role/log';
import type { Readiness } from '../role/role';

/** How a mesh process reaches NATS. */
export interface BusConnectOptions {
  /** host:port of every server to try. */
  readonly servers: readonly string[];
  /** Client name, shown by the server's monitoring (the pod or role). */
  readonly name: string;
  /** The SVID as the SVID client writes it: one PEM with the chain, then the key. */
  readonly svidFile?: string;
  /** The trust bundle (PEM) that verifies the server. */
  readonly bundleFile?: string;
  /** The SPIFFE ID the server must present as a URI SAN, e.g. spiffe://<td>/ns/nginx-mesh/sa/nats. */
  readonly expectedServerId?: string;
  /**
   * Prefix of the inboxes replies come to; an agent's identity may read only its own branch of
   * _INBOX (see nats-config.ts). nats.js's default (_INBOX) when absent.
   */
  readonly inboxPrefix?: string;
  readonly logger: Logger;
}

/** Wait between reconnect attempts: 1 s plus up to 1 s of jitter, so agents do not stampede. */
const RECONNECT_WAIT_MS = 1_000;
const RECONNECT_JITTER_MS = 1_000;
const CONNECT_TIMEOUT_MS = 5_000;

/** Waits between dials of a link whose connection could not be made or was given up. */
const FIRST_DIAL_RETRY_MS = 500;
const LAST_DIAL_RETRY_MS = 15_000;

/** Connects to NATS once; rejects when the first connection fails (later losses reconnect forever). */
export async function connectBus(options: BusConnectOptions): Promise<NatsConnection> {
  const connection: ConnectionOptions = {
    servers: [...options.servers],
    name: options.name,
    timeout: CONNECT_TIMEOUT_MS,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: RECONNECT_WAIT_MS,
    reconnectJitter: RECONNECT_JITTER_MS,
    reconnectJitterTLS: RECONNECT_JITTER_MS,
    ...(options.inboxPrefix === undefined ? {} : { inboxPrefix: options.inboxPrefix }),
    ...tlsOptionsOf(options),
  };
  const nc = await connect(connection);
  options.logger.info('connected to NATS', { server: nc.getServer(), name: options.name });
  void logStatus(nc, options.logger);
  return nc;
}

/** TLS options for nats.js; absent when neither SVID, bundle nor server identity is given. */
function tlsOptionsOf(options: BusConnectOptions): { tls?: TlsOptions } {
  const { svidFile, bundleFile, expectedServerId } = options;
  if (svidFile === undefined && bundleFile === undefined && expectedServerId === undefined) {
    return {};
  }
  // nats.js hands every property to Node's tls.connect, which takes checkServerIdentity too.
  const tls: TlsOptions & {
    checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
  } = {
    ...(svidFile === undefined ? {} : { certFile: svidFile, keyFile: svidFile }),
    ...(bundleFile === undefined ? {} : { caFile: bundleFile }),
    ...(expectedServerId === undefined
      ? {}
      : { checkServerIdentity: (_host, cert) => checkSpiffeId(cert, expectedServerId) }),
  };
  return { tls };
}

/**
 * undefined when the certificate names expected as a URI SAN; otherwise the error that fails the
 * handshake. SVIDs name workloads by SPIFFE ID, not by the address dialled.
 */
export function checkSpiffeId(cert: PeerCertificate, expected: string): Error | undefined {
  const names = cert.subjectaltname?.split(', ') ?? [];
  return names.includes(`URI:${expected}`)
    ? undefined
    : new Error(`NATS server presented ${cert.subjectaltname ?? 'no names'}, not ${expected}`);
}

async function logStatus(nc: NatsConnection, logger: Logger): Promise<void> {
  for await (const status of nc.status()) {
    const fields = { status: status.type, data: status.data };
    switch (status.type) {
      case Events.Disconnect:
      case Events.Error:
      case Events.LDM:
        logger.warn('NATS connection status', fields);
        break;
      case Events.Reconnect:
        logger.info('NATS connection status', fields);
        break;
      default:
        logger.debug('NATS connection status', fields);
    }
  }
}

/** A connection to NATS kept for the life of a role. */
export interface BusLink {
  /**
   * The connection in use, also while it reconnects (publishes wait in its buffer then);
   * undefined while dialling.
   */
  connection(): NatsConnection | undefined;
  /** Connected, or why not: what the role is waiting for. */
  readiness(): Readiness;
  /** Closes the connection and stops dialling. */
  close(): Promise<void>;
}

export interface BusLinkOptions extends BusConnectOptions {
  /**
   * Called with every new connection: the first, and each one dialled after nats.js gave the
   * previous one up. Users subscribe here; a connection's own reconnects keep its subscriptions.
   */
  readonly onConnection: (connection: NatsConnection) => void;
  /** Called when a connection is given up for good, before dialling the next. */
  readonly onLost?: (connection: NatsConnection) => void;
  /** A number in [0, 1), to spread dials. Default Math.random. */
  readonly random?: () => number;
  readonly firstRetryMs?: number;
  readonly lastRetryMs?: number;
  /** Dials once; default connectBus. */
  readonly dial?: (options: BusConnectOptions) => Promise<NatsConnection>;
}

/** Dials NATS in the background until it answers, and again after every connection is lost. */
export function startBusLink(options: BusLinkOptions): BusLink {
  const { logger } = options;
  const random = options.random ?? Math.random;
  const dial = options.dial ?? connectBus;
  const server = options.servers.join(',');
  const abort = new AbortController();
  let current: NatsConnection | undefined;
  let up = false;
  let waiting = `connecting to NATS at ${server}`;

  /** The wait after `failures` failed dials in a row (0: the first dial after a loss). */
  const backoff = (failures: number): number =>
    jitteredBackoffMs(
      failures,
      random(),
      options.firstRetryMs ?? FIRST_DIAL_RETRY_MS,
      options.lastRetryMs ?? LAST_DIAL_RETRY_MS,
    );
  /** close() ends a wait at once. */
  const pause = (ms: number): Promise<void> =>
    systemClock.sleep(ms, abort.signal).catch(() => undefined);

  const watch = async (nc: NatsConnection): Promise<void> => {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) {
        up = false;
        waiting = `reconnecting to NATS at ${server}`;
      } else if (status.type === Events.Reconnect) {
        up = true;
      } else if (status.type === Events.Error) {
        waiting = `reconnecting to NATS at ${server}: ${describeError(status.data)}`;
      }
    }
  };

  const run = async (): Promise<void> => {
    let failures = 0;
    while (!abort.signal.aborted) {
      let nc: NatsConnection;
      try {
        nc = await dial(options);
      } catch (error) {
        waiting = `connecting to NATS at ${server}: ${describeError(error)}`;
        const waitMs = backoff(failures);
        logger.warn('cannot connect to NATS; retrying', {
          server,
          error: describeError(error),
          attempt: failures + 1,
          retryInMs: waitMs,
        });
        failures += 1;
        await pause(waitMs);
        continue;
      }
      if (abort.signal.aborted) {
        await nc.close().catch(() => undefined);
        break;
      }
      failures = 0;
      current = nc;
      up = true;
      void watch(nc);
      try {
        options.onConnection(nc);
      } catch (error) {
        logger.error('cannot use the NATS connection', { error: describeError(error) });
      }
      const closedWith = await nc.closed();
      up = false;
      current = undefined;
      if (abort.signal.aborted) break;
      waiting = `connecting to NATS at ${server}: the last connection was given up${closedWith === undefined ? '' : `: ${describeError(closedWith)}`}`;
      logger.warn('NATS connection given up; dialling anew', {
        server,
        ...(closedWith === undefined ? {} : { error: describeError(closedWith) }),
      });
      options.onLost?.(nc);
      await pause(backoff(0));
    }
  };
  const running = run();

  return {
    connection: () => current,
    readiness: () => (up ? { ready: true } : { ready: false, reason: waiting }),
    async close() {
      abort.abort();
      const nc = current;
      await nc?.close().catch(() => undefined);
      await running;
    },
  };
}
