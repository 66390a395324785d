// The HTTPS endpoint of the Traffic Metrics API. It asks every client for a certificate and
// verifies it against the API server's requestheader CA; whether an unverified client may do
// anything is the handler's decision (nothing, today).
import type { IncomingMessage } from 'node:http';
import * as https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { buildStatus } from '../../manifests/traffic-metrics/routes';
import { closeServer, listen } from '../listen';
import type { Logger } from '../role/log';
import type { ApiAnswer, ApiRequest } from './traffic-api';

export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** Verifies the front-proxy's client certificate. */
  readonly clientCaPem: string;
  readonly handle: (request: ApiRequest) => Promise<ApiAnswer>;
  /** Told when a client presented a certificate the CA did not verify. */
  readonly onUnverifiedClient?: () => void;
  readonly logger: Logger;
}

/** What the server's TLS layer serves with and verifies clients against. */
export interface MetricsServerTls {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly clientCaPem: string;
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface TlsMetricsServer extends MetricsServer {
  /** New connections are served with this certificate and their clients checked with this CA. */
  setTls(tls: MetricsServerTls): void;
}

function toApiRequest(req: IncomingMessage, onUnverifiedClient?: () => void): ApiRequest {
  const url = new URL(req.url ?? '/', 'https://metrics.invalid');
  const socket = req.socket as TLSSocket;
  const peer = socket.getPeerCertificate();
  const commonName = typeof peer.subject?.CN === 'string' ? peer.subject.CN : undefined;
  // A certificate was presented but not verified: the CA may have changed since it was read.
  if (!socket.authorized && peer.subject !== undefined) onUnverifiedClient?.();
  return {
    method: req.method ?? 'GET',
    path: url.pathname,
    search: url.searchParams,
    headers: req.headersDistinct,
    client: { verified: socket.authorized, commonName },
  };
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<TlsMetricsServer> {
  const { logger } = options;
  const server = https.createServer(
    {
      cert: options.certificatePem,
      key: options.privateKeyPem,
      ca: options.clientCaPem,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      const send = (answer: ApiAnswer): void => {
        const body = `${JSON.stringify(answer.body)}\n`;
        res
          .writeHead(answer.status, {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
          })
          .end(body);
      };
      options.handle(toApiRequest(req, options.onUnverifiedClient)).then(send, (error: unknown) => {
        logger.error('request failed', { path: req.url, error: String(error) });
        send({ status: 500, body: buildStatus(500, 'InternalError', 'internal error') });
      });
    },
  );
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const port = await listen(server, options.port, options.host);
  return {
    port,
    setTls: (tls) =>
      server.setSecureContext({
        cert: tls.certificatePem,
        key: tls.privateKeyPem,
        ca: tls.clientCaPem,
      }),
    close: () => closeServer(server),
  };
}
