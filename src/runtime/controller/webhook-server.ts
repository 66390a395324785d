// HTTPS endpoint of the injection webhook. A malformed review is answered 400 with the reason;
// nothing a client sends can crash the controller.
import type { ServerResponse } from 'node:http';
import * as https from 'node:https';
import { closeServer, listen } from '../listen';
import type { AdmissionDecision } from '../../manifests/admission';
import type { Logger } from '../role/log';

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

/** AdmissionReviews are small; anything larger is refused before it is read whole. */
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
