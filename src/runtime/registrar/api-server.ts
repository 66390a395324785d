// The registrar's HTTPS API: POST /v1/svid with the workload's identity token as a Bearer token
// and {"csr": "<PEM>"} as the body; 200 with the SVID as JSON, or an error status with
// {"error": "<reason>"} and no certificate. Nothing a client sends can crash the registrar.
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as https from 'node:https';
import { REGISTRAR_SVID_PATH } from '../../manifests/constants';
import { closeServer, listen } from '../listen';
import type { Logger } from '../role/log';
import type { Issuer } from './issuer';

export interface ApiServer {
  readonly port: number;
  /** Serves with a new certificate from now on. */
  setCertificate(certificateChainPem: string, privateKeyPem: string): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

function reply(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      ...headers,
    })
    .end(text);
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function csrOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { csr?: unknown };
    return typeof parsed.csr === 'string' ? parsed.csr : undefined;
  } catch {
    return undefined;
  }
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  issuer: Issuer,
  logger: Logger,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== REGISTRAR_SVID_PATH) return reply(res, 404, { error: 'not found' });
  if (req.method !== 'POST') return reply(res, 405, { error: 'only POST' }, { Allow: 'POST' });
  const body = await readBody(req);
  if (body === undefined) return reply(res, 413, { error: `body over ${MAX_BODY_BYTES} bytes` });
  const csr = csrOf(body);
  // An IPv4 client of a dual-stack listener shows as ::ffff:<IPv4>: one client, one name.
  const client = (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
  if (csr === undefined) {
    logger.warn('svid refused', { status: 400, reason: 'body is not {"csr": "<PEM>"}', client });
    return reply(res, 400, { error: 'body must be JSON {"csr": "<PEM>"}' });
  }
  const auth = req.headers.authorization ?? '';
  const token = auth.startsWith('Bearer ') ? auth.slice('Bearer '.length).trim() : '';
  const outcome = await issuer.issue({ token, csrPem: csr, client });
  if (outcome.ok) {
    logger.info('svid issued', {
      spiffeId: outcome.response.spiffeId,
      notAfter: outcome.response.notAfter,
      client,
    });
    return reply(res, 200, outcome.response);
  }
  const { status, reason } = outcome.refusal;
  logger.warn('svid refused', { status, reason, client });
  const retry: Record<string, string> =
    outcome.retryAfterMs === undefined
      ? {}
      : { 'Retry-After': String(Math.ceil(outcome.retryAfterMs / 1000)) };
  return reply(res, status, { error: reason }, retry);
}

export async function startApiServer(options: {
  readonly host: string;
  readonly port: number;
  readonly certificateChainPem: string;
  readonly privateKeyPem: string;
  readonly issuer: Issuer;
  readonly logger: Logger;
}): Promise<ApiServer> {
  const { logger } = options;
  const server = https.createServer(
    { cert: options.certificateChainPem, key: options.privateKeyPem },
    (req, res) => {
      handle(req, res, options.issuer, logger).catch((error: unknown) => {
        logger.error('svid request failed', { error: String(error) });
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    },
  );
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  const port = await listen(server, options.port, options.host);
  return {
    port,
    setCertificate: (cert, key) => server.setSecureContext({ cert, key }),
    close: () => closeServer(server),
  };
}
