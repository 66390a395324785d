// Obtains and renews this workload's X.509-SVID from the registrar, for the agent, the
// controller, the metrics role and NATS. It writes the certificate chain and key into one file
// (nginx reads both from it) and the trust bundle beside it, each atomically; renews at half
// the certificate's life; retries forever with jittered, bounded backoff while the registrar is
// unreachable; logs loudly as expiry approaches; and keeps why the last request failed.
//
// The trust bundle comes with every SVID, so it is as fresh as the last renewal: the registrar
// publishes a new root at least one SVID lifetime before it signs with it (ca-plan.ts), and a
// client renews at half-life, so every workload holds the new root before any peer presents a
// certificate from it. Whoever loads the bundle only at start (nginx) learns of a new one through
// onBundleChanged.
//
// Renewals keep the key of the first SVID for the life of the process: nginx loads a connection's
// certificate and its key from the file in two reads, so a renewal with a new key that lands
// between them pairs the old certificate with the new key and the handshake fails (500 for HTTP,
// a reset for TCP). The certificate still changes at every renewal, and a new pod gets a new key.
//
// Bootstrap trust: the registrar's certificate is verified with the trust bundle the registrar
// publishes as ConfigMap nginx-mesh-bundle in every namespace, mounted into the pod by the
// kubelet from the pod's own namespace. That ConfigMap is written only by the registrar (and by
// whoever administers the namespace, who controls its pods anyway), so no certificate is trusted
// on first use. Bundles received with an SVID are trusted too, so a root rotation that the
// mounted file has not caught up with yet does not lock the workload out.
import type { KeyObject } from 'node:crypto';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { checkServerIdentity } from 'node:tls';
import {
  REGISTRAR_SVID_PATH,
  SVID_BUNDLE_FILE_NAME,
  SVID_FILE_NAME,
} from '../../manifests/constants';
import type { MtlsCaKeyType } from '../../manifests/mesh-config/deploy-flags';
import type { Clock } from '../clock';
import type { Logger } from '../role/log';
import { generateKey } from '../registrar/keys';
import { createRequest } from './csr';
import { writeFileAtomic } from './files';
import { expiryConcern, renewalTime, retryWaitMs } from './schedule';

export interface SvidClientOptions {
  /** The projected ServiceAccount token (audience nginx-mesh-registrar); re-read on every request. */
  readonly tokenPath: string;
  /** Base URL of the registrar, e.g. https://nginx-mesh-registrar.nginx-mesh.svc:8443. */
  readonly registrarUrl: string;
  /** TLS name to verify the registrar as, when the URL's host is an address. */
  readonly serverName?: string;
  /** The mounted trust bundle (nginx-mesh-bundle's bundle.crt); re-read on every request. */
  readonly bundlePath: string;
  /** Where svid.pem and bundle.crt are written. */
  readonly outputDir: string;
  readonly keyType?: MtlsCaKeyType;
  readonly requestTimeoutMs?: number;
}

export interface SvidClientDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  /** A number in [0, 1), for jitter. */
  readonly random: () => number;
  /** Called after each SVID is on disk, the first included; errors it throws are logged. */
  readonly onWritten?: (status: SvidStatus) => void;
  /**
   * Called with the bundle file's path after a write changed its content (also the first write,
   * unless the file already held that bundle), once the SVID beside it is written too; errors it
   * throws are logged.
   */
  readonly onBundleChanged?: (bundlePath: string) => void;
}

export interface SvidStatus {
  readonly spiffeId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface SvidClient {
  /** Settles with the first SVID once written; rejects only if stopped before. */
  readonly ready: Promise<SvidStatus>;
  /** The SVID in use (for an expiry metric); undefined before the first. */
  current(): SvidStatus | undefined;
  /**
   * Why the last request failed, in one line ("registrar unreachable: …", "registrar refused
   * (503): …"); undefined once a request succeeded after it.
   */
  lastError(): string | undefined;
  stop(): Promise<void>;
}

/** The registrar refused or failed; status 0 when it could not be reached. */
export class SvidRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

interface Issued {
  readonly spiffeId: string;
  readonly certificateChain: string;
  readonly trustBundle: string;
}

function readJson(res: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(
          new SvidRequestError(
            `registrar answered ${res.statusCode} without JSON: ${String(error)}`,
            res.statusCode ?? 0,
          ),
        );
      }
    });
    res.on('error', reject);
  });
}

/** One POST to the registrar, verifying it with ca. */
export function requestSvid(options: {
  url: string;
  serverName?: string;
  ca: string;
  token: string;
  csrPem: string;
  timeoutMs: number;
}): Promise<Issued> {
  const url = new URL(REGISTRAR_SVID_PATH, options.url);
  const body = JSON.stringify({ csr: options.csrPem });
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: options.ca,
        ...(options.serverName === undefined ? {} : { servername: options.serverName }),
        ...(options.serverName === undefined
          ? {}
          : { checkServerIdentity: checkAs(options.serverName) }),
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Authorization: `Bearer ${options.token}`,
        },
        timeout: options.timeoutMs,
        agent: false,
      },
      (res) => {
        readJson(res).then((json) => {
          const status = res.statusCode ?? 0;
          if (status === 200) return resolve(json as Issued);
          const retry = Number(res.headers['retry-after']);
          const reason = (json as { error?: unknown }).error;
          reject(
            new SvidRequestError(
              `registrar refused (${status}): ${String(reason)}`,
              status,
              Number.isFinite(retry) ? retry * 1000 : undefined,
            ),
          );
        }, reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(
        new SvidRequestError(`registrar unreachable: no answer within ${options.timeoutMs}ms`, 0),
      ),
    );
    req.on('error', (error) =>
      reject(
        error instanceof SvidRequestError
          ? error
          : new SvidRequestError(`registrar unreachable: ${error.message}`, 0),
      ),
    );
    req.end(body);
  });
}

/** Verifies the server certificate against serverName instead of the URL's host. */
function checkAs(serverName: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => checkServerIdentity(serverName, cert);
}

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Checks that the chain's leaf certifies our key and is valid now, and that the trust bundle
 * holds certificates; reads the leaf's validity. Whatever fails here is not written, so the
 * files keep the last good SVID and bundle.
 */
function statusOf(issued: Issued, key: KeyObject, now: Date): SvidStatus {
  const leaf = new X509Certificate(issued.certificateChain);
  const ours = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(ours)) {
    throw new SvidRequestError('registrar returned a certificate for another key', 0);
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (!(notAfter.getTime() > now.getTime())) {
    throw new SvidRequestError(
      `registrar returned an SVID valid from ${notBefore.toISOString()} to ${notAfter.toISOString()}, expired at ${now.toISOString()}`,
      0,
    );
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(issued.trustBundle)) {
    throw new SvidRequestError('registrar returned a trust bundle without a certificate', 0);
  }
  return { spiffeId: issued.spiffeId, notBefore, notAfter };
}

/** An error as one line for logs and readiness; a request error says what it was already. */
function describeFailure(error: unknown): string {
  const text =
    error instanceof SvidRequestError ? error.message : `renewal failed: ${String(error)}`;
  return text.replace(/\s*\n\s*/g, ' ');
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** Starts obtaining and renewing the SVID in the background. */
export function startSvidClient(options: SvidClientOptions, deps: SvidClientDeps): SvidClient {
  const { clock, logger } = deps;
  const stop = new AbortController();
  let current: SvidStatus | undefined;
  let lastError: string | undefined;
  /** The key of every SVID after the first (see the header). */
  let heldKey: KeyObject | undefined;
  /** When current arrived (ms since the epoch): its life counts from then. */
  let receivedAt = 0;
  let received = '';
  let resolveReady: (status: SvidStatus) => void = () => undefined;
  let rejectReady: (error: Error) => void = () => undefined;
  const ready = new Promise<SvidStatus>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined);

  const obtain = async (): Promise<SvidStatus> => {
    const [token, mounted] = await Promise.all([
      readFile(options.tokenPath, 'utf8'),
      readOptional(options.bundlePath),
    ]);
    const ca = mounted + received;
    if (ca.trim() === '') {
      throw new SvidRequestError(
        `no trust bundle to verify the registrar: ${options.bundlePath} is empty`,
        0,
      );
    }
    const keys = createRequest(heldKey ?? (await generateKey(options.keyType ?? 'ec-p256')));
    const issued = await requestSvid({
      url: options.registrarUrl,
      ...(options.serverName === undefined ? {} : { serverName: options.serverName }),
      ca,
      token: token.trim(),
      csrPem: keys.csrPem,
      timeoutMs: options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    const status = statusOf(issued, keys.key, clock.now());
    const bundlePath = join(options.outputDir, SVID_BUNDLE_FILE_NAME);
    const bundleChanged = (await readOptional(bundlePath)) !== issued.trustBundle;
    if (bundleChanged) await writeFileAtomic(bundlePath, issued.trustBundle, 0o644);
    await writeFileAtomic(
      join(options.outputDir, SVID_FILE_NAME),
      issued.certificateChain + keys.keyPem,
      0o600,
    );
    received = issued.trustBundle;
    heldKey = keys.key;
    if (bundleChanged) announceBundle(bundlePath, issued.trustBundle);
    return status;
  };

  const announceBundle = (bundlePath: string, bundle: string): void => {
    logger.info('trust bundle changed', {
      path: bundlePath,
      certificates: bundle.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0,
    });
    try {
      deps.onBundleChanged?.(bundlePath);
    } catch (error) {
      logger.warn('acting on the new trust bundle failed', { error: String(error) });
    }
  };

  const warnExpiry = (): void => {
    if (current === undefined) return;
    const now = clock.now().getTime();
    const concern = expiryConcern(
      current.notBefore.getTime(),
      current.notAfter.getTime(),
      receivedAt,
      now,
    );
    if (concern === 'expired') {
      logger.error('SVID expired: mTLS with this workload fails until the registrar answers', {
        spiffeId: current.spiffeId,
        notAfter: current.notAfter.toISOString(),
      });
    } else if (concern === 'expiring') {
      logger.error('SVID expires soon and could not be renewed', {
        spiffeId: current.spiffeId,
        expiresInMs: current.notAfter.getTime() - now,
      });
    }
  };

  /** Failed requests in a row since the workload has had no valid SVID. */
  let failuresWithoutSvid = 0;
  const nextWait = (attempt: number, error: unknown): number => {
    const hinted = error instanceof SvidRequestError ? (error.retryAfterMs ?? 0) : 0;
    const remaining =
      current === undefined ? undefined : current.notAfter.getTime() - clock.now().getTime();
    // Without a valid SVID the backoff starts afresh: the failures before expiry were spent
    // saving the SVID, and a registrar back a moment after expiry must be found at once.
    if (remaining === undefined || remaining <= 0) failuresWithoutSvid += 1;
    else failuresWithoutSvid = 0;
    return retryWaitMs(
      remaining === undefined || remaining <= 0 ? failuresWithoutSvid : attempt,
      deps.random(),
      remaining,
      hinted,
    );
  };

  const loop = async (): Promise<void> => {
    let attempt = 0;
    while (!stop.signal.aborted) {
      let wait: number;
      try {
        current = await obtain();
        receivedAt = clock.now().getTime();
        if (lastError !== undefined)
          logger.info('registrar answers again', { failedAttempts: attempt });
        attempt = 0;
        failuresWithoutSvid = 0;
        lastError = undefined;
        resolveReady(current);
        try {
          deps.onWritten?.(current);
        } catch (error) {
          logger.warn('acting on the new SVID failed', { error: String(error) });
        }
        logger.info('SVID renewed', {
          spiffeId: current.spiffeId,
          notAfter: current.notAfter.toISOString(),
        });
        const at = renewalTime(
          current.notBefore.getTime(),
          current.notAfter.getTime(),
          receivedAt,
          deps.random(),
        );
        wait = Math.max(0, at - clock.now().getTime());
      } catch (error) {
        attempt += 1;
        lastError = describeFailure(error);
        wait = nextWait(attempt, error);
        logger.warn('SVID request failed', { error: lastError, attempt, retryMs: wait });
        warnExpiry();
      }
      await clock.sleep(wait, stop.signal).catch(() => undefined);
    }
  };
  const running = loop();

  return {
    ready,
    current: () => current,
    lastError: () => lastError,
    stop: async () => {
      stop.abort();
      rejectReady(new Error('SVID client stopped'));
      await running;
    },
  };
}
