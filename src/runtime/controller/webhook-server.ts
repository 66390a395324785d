// HTTPS endpoint of the injection webhook. A malformed review is answered 400 with the reason;
// nothing a client sends can crash the controller. startManagedWebhook serves it once what it
// needs from the cluster can be had, and keeps its certificate current.
import type { ServerResponse } from 'node:http';
import * as https from 'node:https';
import { describeError } from '../../errors';
import type { Clock } from '../clock';
import { closeServer, listen } from '../listen';
import type { AdmissionDecision } from '../../manifests/admission';
import { MAX_DOCUMENT_DEPTH } from '../../manifests/constants';
import { nestsDeeperThan } from '../../manifests/document-depth';
import type { ManagedServingCertificate } from '../pki/managed-certificate';
import { startRetryLoop } from '../retry-loop';
import type { Logger } from '../role/log';
import type { Readiness } from '../role/role';

export interface WebhookServer {
  readonly port: number;
  /** Serves with a new certificate from now on (rotation without a restart). */
  setCertificate(certificatePem: string, privateKeyPem: string): void;
  close(): Promise<void>;
}

export interface WebhookServerOptions {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly decide: (body: unknown) => AdmissionDecision;
  readonly logger: Logger;
}

/**
 * AdmissionReviews are small (the API server stores objects of at most about 1.5 MiB); anything
 * larger is refused before it is read whole.
 */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

function reply(res: ServerResponse, status: number, body: string, type: string): void {
  res
    .writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) })
    .end(body);
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { logger } = options;
  const server = https.createServer(
    { cert: options.certificatePem, key: options.privateKeyPem },
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== options.path) return reply(res, 404, 'not found\n', 'text/plain');
      if (req.method !== 'POST') return reply(res, 405, 'only POST\n', 'text/plain');
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          reply(res, 413, `request body over ${MAX_BODY_BYTES} bytes\n`, 'text/plain');
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (res.headersSent) return;
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (error) {
          logger.warn('malformed admission review', { error: String(error) });
          return reply(res, 400, `malformed AdmissionReview: ${String(error)}\n`, 'text/plain');
        }
        // Deciding walks the pod recursively: a body nested deeper is refused before it is.
        if (nestsDeeperThan(body, MAX_DOCUMENT_DEPTH)) {
          const reason = `AdmissionReview nested deeper than ${MAX_DOCUMENT_DEPTH} levels`;
          logger.warn('bad admission review', { reason });
          return reply(res, 400, `${reason}\n`, 'text/plain');
        }
        try {
          const decision = options.decide(body);
          if (decision.kind === 'bad-request') {
            logger.warn('bad admission review', { reason: decision.reason });
            return reply(res, 400, `${decision.reason}\n`, 'text/plain');
          }
          logger.info(decision.summary);
          return reply(res, 200, JSON.stringify(decision.review), 'application/json');
        } catch (error) {
          logger.error('admission review failed', { error: String(error) });
          return reply(res, 500, 'internal error\n', 'text/plain');
        }
      });
    },
  );
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  const port = await listen(server, options.port, options.host);
  return {
    port,
    setCertificate: (cert, key) => server.setSecureContext({ cert, key }),
    close: () => closeServer(server),
  };
}

export interface ManagedWebhookOptions {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** What deciding needs from the cluster; retried with backoff until it resolves. */
  readonly prepare: () => Promise<(body: unknown) => AdmissionDecision>;
  /** Its first certificate starts the server; later ones are swapped in. */
  readonly certificate: ManagedServingCertificate;
  readonly clock: Clock;
  readonly random: () => number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly logger: Logger;
}

export interface ManagedWebhook {
  /** False until the server listens, then as its certificate's readiness says. */
  readiness(): Readiness;
  /** Rejects when the server cannot listen; never resolves. */
  readonly failed: Promise<never>;
  /** Stops the server and the certificate's renewal. */
  stop(): Promise<void>;
}

/**
 * Serves the webhook as soon as prepare() has answered and the first certificate is had, each
 * retried in the background; renewed certificates reach new connections without a restart.
 */
export function startManagedWebhook(options: ManagedWebhookOptions): ManagedWebhook {
  const { certificate, logger } = options;
  let waitingFor: string | undefined;
  let server: WebhookServer | undefined;
  let stopping = false;
  let resolvePrepared: (decide: (body: unknown) => AdmissionDecision) => void = () => undefined;
  let rejectPrepared: (error: Error) => void = () => undefined;
  const prepared = new Promise<(body: unknown) => AdmissionDecision>((resolve, reject) => {
    resolvePrepared = resolve;
    rejectPrepared = reject;
  });
  const preparation = startRetryLoop({
    step: async () => {
      resolvePrepared(await options.prepare());
      waitingFor = undefined;
      return 'done';
    },
    failed: (error, failures, retryInMs) => {
      waitingFor = describeError(error);
      logger.warn('waiting for the Kubernetes API', { error: waitingFor, failures, retryInMs });
    },
    clock: options.clock,
    random: options.random,
    initialBackoffMs: options.initialBackoffMs,
    maxBackoffMs: options.maxBackoffMs,
  });
  const serving = (async () => {
    const [decision, first] = await Promise.all([prepared, certificate.first]);
    if (stopping) return;
    const started = await startWebhookServer({
      host: options.host,
      port: options.port,
      path: options.path,
      certificatePem: first.certificatePem,
      privateKeyPem: first.privateKeyPem,
      decide: decision,
      logger,
    });
    server = started;
    certificate.onRenewal((next) =>
      started.setCertificate(next.certificatePem, next.privateKeyPem),
    );
    logger.info('injection webhook listening', { port: started.port, path: options.path });
  })();
  const never = new Promise<never>(() => undefined);
  return {
    readiness(): Readiness {
      if (server !== undefined) return certificate.readiness();
      if (waitingFor !== undefined) {
        return { ready: false, reason: `waiting for the Kubernetes API: ${waitingFor}` };
      }
      const served = certificate.readiness();
      if (!served.ready) return served;
      return { ready: false, reason: 'starting the injection webhook' };
    },
    failed: serving.then(
      () => never,
      (error: unknown) => {
        if (stopping) return never;
        throw error;
      },
    ),
    async stop() {
      stopping = true;
      await Promise.all([preparation.stop(), certificate.stop()]);
      rejectPrepared(new Error('stopped before the webhook could start'));
      await serving.catch(() => undefined);
      await server?.close();
    },
  };
}
