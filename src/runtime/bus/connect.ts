// The one way mesh processes connect to NATS: TLS with the workload's SVID, the server checked
// by its SPIFFE ID, reconnecting forever with a jittered wait, every status change logged.
//
// The SVID is renewed in place (written beside and renamed over) while the connection lives.
// nats.js reads certFile, keyFile and caFile from disk on every connect and reconnect, so naming
// the files (rather than passing their contents) makes every reconnect present the current SVID
// and trust the current bundle; the established TLS session keeps the one it started with.
import type { PeerCertificate } from 'node:tls';
import type { ConnectionOptions, NatsConnection, TlsOptions } from 'nats';
import { connect, Events } from 'nats';
import type { Logger } from '../role/log';

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
  readonly user?: string;
  readonly pass?: string;
  readonly logger: Logger;
}

/** Wait between reconnect attempts: 1 s plus up to 1 s of jitter, so agents do not stampede. */
const RECONNECT_WAIT_MS = 1_000;
const RECONNECT_JITTER_MS = 1_000;
const CONNECT_TIMEOUT_MS = 5_000;

/** Connects to NATS; rejects when the first connection fails (later losses reconnect forever). */
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
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(options.pass === undefined ? {} : { pass: options.pass }),
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
