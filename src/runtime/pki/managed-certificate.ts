// A serving certificate the API server must trust, managed by the role that serves with it (the
// controller's webhook, the metrics API) until the registrar issues one: kept in a Secret (so
// replicas and restarts share it), with its CA written into the object that tells the API server
// whom to trust (a MutatingWebhookConfiguration, an APIService). It is renewed while the role
// runs; replicas coordinate through the Secret's resourceVersion, and the one that loses a race
// serves what the winner wrote.
import { describeError, MeshctlError } from '../../errors';
import { TLS_SECRET_CA_KEY } from '../../manifests/constants';
import type { Clock } from '../clock';
import type { Logger } from '../role/log';
import type { Readiness } from '../role/role';
import type { CertificateFacts, CertificateState } from './renewal-policy';
import {
  assessCertificate,
  buildCaBundle,
  DEFAULT_RENEW_AT_SHARE,
  EXPIRING_SHARE,
  nextCheckDelayMs,
  renewalDueAt,
  servingReadiness,
  splitPemCertificates,
} from './renewal-policy';
import { startRetryLoop } from '../retry-loop';
import type { ServingCertificate } from './serving-certificate';
import {
  createServingCertificate,
  describeCertificate,
  keyMatchesCertificate,
} from './serving-certificate';

/** A Secret as read: its data and the version a write must name. */
export interface StoredSecret {
  readonly data: Readonly<Record<string, string>>;
  readonly resourceVersion: string;
}

/** 'conflict': another writer got there first (the Secret exists, or changed since it was read). */
export type SecretWrite = 'written' | 'conflict';

/** Where the certificate is kept. */
export interface CertificateStore {
  readSecret(namespace: string, name: string): Promise<StoredSecret | undefined>;
  /** Creates the Secret; 'conflict' when it exists already. */
  createSecret(
    namespace: string,
    name: string,
    data: Readonly<Record<string, string>>,
  ): Promise<SecretWrite>;
  /** Writes the Secret only if it is still at resourceVersion; 'conflict' when it is not. */
  updateSecret(
    namespace: string,
    name: string,
    data: Readonly<Record<string, string>>,
    resourceVersion: string,
  ): Promise<SecretWrite>;
}

/** The object whose caBundle makes the API server trust the certificate. */
export interface CaBundleTarget {
  /** e.g. "MutatingWebhookConfiguration sidecar-injector-webhook-cfg…", for logs. */
  readonly description: string;
  /** Sets the CA bundle (base64 PEM); resolves false when the object does not exist (yet). */
  publish(caBundle: string): Promise<boolean>;
}

export interface ManagedCertificateOptions {
  readonly namespace: string;
  readonly secretName: string;
  readonly serviceName: string;
  /** Lifetime of a new certificate (default 365 days). */
  readonly validityMs?: number;
  /** Share of the lifetime after which the certificate is renewed (default 2/3). */
  readonly renewAtShare?: number;
}

export interface CertificateRenewalOptions extends ManagedCertificateOptions {
  /** How often the Secret is read again and the CA bundle written again (default 30 s). */
  readonly checkIntervalMs?: number;
  /**
   * How long a certificate from a new CA waits, after the CA bundle naming that CA was written,
   * before it is served: the API server must have seen the bundle first (default 10 s).
   */
  readonly settleMs?: number;
  /** Backoff after failures, from initialBackoffMs doubling up to maxBackoffMs (1 s, 60 s). */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Checks never come closer together than this (default 1 s). */
  readonly minCheckDelayMs?: number;
}

/** How certificates are made and read; the defaults generate real keys. */
export interface CertificateTools {
  issue(
    commonName: string,
    dnsNames: readonly string[],
    now: Date,
    validityMs: number,
  ): Promise<ServingCertificate>;
  /** Throws when the PEM is not a readable certificate. */
  describe(pem: string): CertificateFacts;
  keyMatches(certificatePem: string, privateKeyPem: string): boolean;
}

export interface ManagedCertificateDeps {
  readonly store: CertificateStore;
  readonly target: CaBundleTarget;
  readonly clock: Clock;
  /** A number in [0, 1), for backoff jitter. */
  readonly random: () => number;
  readonly logger: Logger;
  readonly tools?: CertificateTools;
}

const DAY_MS = 86_400_000;
const DEFAULT_VALIDITY_MS = 365 * DAY_MS;
const DEFAULT_CHECK_INTERVAL_MS = 30_000;
const DEFAULT_SETTLE_MS = 10_000;
const DEFAULT_INITIAL_BACKOFF_MS = 1_000;
const DEFAULT_MAX_BACKOFF_MS = 60_000;
const DEFAULT_MIN_CHECK_DELAY_MS = 1_000;
/** Writes lost to other replicas before one round gives up (and is retried with backoff). */
const MAX_WRITE_ATTEMPTS = 3;
/** CAs the bundle holds at most: the newest and those of certificates still being served. */
const MAX_BUNDLED_CAS = 3;

const CERT_KEY = 'tls.crt';
const KEY_KEY = 'tls.key';

export const defaultCertificateTools: CertificateTools = {
  issue: (commonName, dnsNames, now, validityMs) =>
    createServingCertificate(commonName, dnsNames, now, validityMs / DAY_MS),
  describe: describeCertificate,
  keyMatches: keyMatchesCertificate,
};

/** The names a Service answers to from inside the cluster. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/** The certificate's CA bundle as a caBundle field holds it. */
export function caBundleOf(certificate: Pick<ServingCertificate, 'caPem'>): string {
  return Buffer.from(certificate.caPem).toString('base64');
}

function decoded(data: Readonly<Record<string, string>>, key: string): string | undefined {
  const value = data[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

function encode(certificate: ServingCertificate): Record<string, string> {
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  return {
    [CERT_KEY]: b64(certificate.certificatePem),
    [KEY_KEY]: b64(certificate.privateKeyPem),
    [TLS_SECRET_CA_KEY]: b64(certificate.caPem),
  };
}

/** The Secret's certificate with its facts, or undefined when it is missing or unusable. */
function storedCertificate(
  data: Readonly<Record<string, string>>,
  tools: CertificateTools,
): { certificate: ServingCertificate; facts: CertificateFacts } | undefined {
  const [cert, key, ca] = [CERT_KEY, KEY_KEY, TLS_SECRET_CA_KEY].map((name) => decoded(data, name));
  if (cert === undefined || key === undefined || ca === undefined) return undefined;
  try {
    const facts = tools.describe(cert);
    if (!tools.keyMatches(cert, key)) return undefined;
    const certificate = {
      certificatePem: cert,
      privateKeyPem: key,
      caPem: ca,
      notBefore: facts.notBefore,
      notAfter: facts.notAfter,
    };
    return { certificate, facts };
  } catch {
    return undefined;
  }
}

/** The CAs of a stored bundle with their expiry; unreadable ones are left out. */
function storedCas(
  data: Readonly<Record<string, string>> | undefined,
  tools: CertificateTools,
): { pem: string; notAfter: Date }[] {
  const bundle = data === undefined ? undefined : decoded(data, TLS_SECRET_CA_KEY);
  return splitPemCertificates(bundle ?? '').flatMap((pem) => {
    try {
      return [{ pem, notAfter: tools.describe(pem).notAfter }];
    } catch {
      return [];
    }
  });
}

/** What one round decided: the certificate the Secret now holds, and how it got there. */
export interface ReconciledCertificate {
  readonly certificate: ServingCertificate;
  readonly facts: CertificateFacts;
  /** 'stored': the Secret's, still fresh; 'issued': written now; 'adopted': another writer's. */
  readonly outcome: 'stored' | 'issued' | 'adopted';
}

type Reason = Exclude<CertificateState, 'fresh'> | 'missing' | 'unreadable';

interface Found {
  readonly certificate: ServingCertificate;
  readonly facts: CertificateFacts;
}

function replacementReason(
  stored: StoredSecret | undefined,
  state: CertificateState | undefined,
): Reason {
  if (state !== undefined && state !== 'fresh') return state;
  return stored === undefined ? 'missing' : 'unreadable';
}

/** Writes the certificate over what was read: a create when nothing was, else an update. */
function writeSecret(
  store: CertificateStore,
  options: ManagedCertificateOptions,
  stored: StoredSecret | undefined,
  certificate: ServingCertificate,
): Promise<SecretWrite> {
  const { namespace, secretName } = options;
  return stored === undefined
    ? store.createSecret(namespace, secretName, encode(certificate))
    : store.updateSecret(namespace, secretName, encode(certificate), stored.resourceVersion);
}

/**
 * One round: the Secret's certificate while it is fresh and valid for the service's names,
 * otherwise a new one, written with the resourceVersion that was read. When another writer got
 * there first, its Secret is read again and its certificate adopted if fresh; a round gives up
 * after MAX_WRITE_ATTEMPTS lost writes.
 */
export async function reconcileServingCertificate(
  options: ManagedCertificateOptions,
  deps: Pick<ManagedCertificateDeps, 'store' | 'clock' | 'logger' | 'tools'>,
): Promise<ReconciledCertificate> {
  const { store, logger } = deps;
  const tools = deps.tools ?? defaultCertificateTools;
  const secret = `${options.namespace}/${options.secretName}`;
  const names = serviceDnsNames(options.serviceName, options.namespace);
  const share = options.renewAtShare ?? DEFAULT_RENEW_AT_SHARE;
  for (let lost = 0; lost < MAX_WRITE_ATTEMPTS; lost += 1) {
    const now = deps.clock.now();
    const stored = await store.readSecret(options.namespace, options.secretName);
    const found: Found | undefined =
      stored === undefined ? undefined : storedCertificate(stored.data, tools);
    const state =
      found === undefined ? undefined : assessCertificate(found.facts, names, now, share);
    if (found !== undefined && state === 'fresh') {
      return { ...found, outcome: lost > 0 ? 'adopted' : 'stored' };
    }
    const created = await tools.issue(
      options.serviceName,
      names,
      now,
      options.validityMs ?? DEFAULT_VALIDITY_MS,
    );
    const certificate = {
      ...created,
      caPem: buildCaBundle(created.caPem, storedCas(stored?.data, tools), now, MAX_BUNDLED_CAS),
    };
    if ((await writeSecret(store, options, stored, certificate)) === 'written') {
      logger.info('serving certificate issued', {
        secret,
        reason: replacementReason(stored, state),
        notAfter: certificate.notAfter.toISOString(),
      });
      return { certificate, facts: tools.describe(certificate.certificatePem), outcome: 'issued' };
    }
    logger.info('Secret written by another replica meanwhile; reading it again', { secret });
  }
  throw new MeshctlError(
    `Secret ${secret} changed under each of ${MAX_WRITE_ATTEMPTS} attempts to write the serving certificate`,
  );
}

/** A serving certificate kept current while the role runs. */
export interface ManagedServingCertificate {
  /**
   * Settles with the first certificate to serve with, once the Secret could be read (and
   * written): attempts are retried with backoff until then. Rejects only when stopped first.
   */
  readonly first: Promise<ServingCertificate>;
  /** Called with each later certificate, once its CA bundle has been published and has settled. */
  onRenewal(listener: (certificate: ServingCertificate) => void): void;
  /** False before the first certificate, once it expired, or near its end while renewal fails. */
  readiness(): Readiness;
  stop(): Promise<void>;
}

interface Serving {
  readonly certificate: ServingCertificate;
  readonly facts: CertificateFacts;
}

/**
 * Starts managing the certificate: a background loop reads the Secret every checkIntervalMs
 * and when the certificate falls due, renews it when due (or adopts what another replica wrote),
 * writes the CA bundle to the target, and hands a new certificate to the listeners settleMs after
 * its CA was published. Failures are logged and retried with jittered backoff.
 */
export function startServingCertificate(
  options: CertificateRenewalOptions,
  deps: ManagedCertificateDeps,
): ManagedServingCertificate {
  const { clock, logger, target } = deps;
  const secret = `${options.namespace}/${options.secretName}`;
  const share = options.renewAtShare ?? DEFAULT_RENEW_AT_SHARE;
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
  const listeners: ((certificate: ServingCertificate) => void)[] = [];
  let serving: Serving | undefined;
  let waiting: (Serving & { readonly serveAt: number }) | undefined;
  let failure: string | undefined;
  let targetFound: boolean | undefined;
  let resolveFirst: (certificate: ServingCertificate) => void = () => undefined;
  let rejectFirst: (error: Error) => void = () => undefined;
  const first = new Promise<ServingCertificate>((resolve, reject) => {
    resolveFirst = resolve;
    rejectFirst = reject;
  });
  first.catch(() => undefined);

  async function publish(certificate: ServingCertificate): Promise<void> {
    const found = await target.publish(caBundleOf(certificate));
    if (!found && targetFound !== false) {
      logger.warn('CA bundle target not found; its CA bundle will be set when it exists', {
        target: target.description,
      });
    }
    targetFound = found;
  }

  /** Serves the Secret's certificate: at once the first time, later once its CA has settled. */
  function serve(next: Serving, now: number): void {
    if (serving === undefined) {
      serving = next;
      resolveFirst(next.certificate);
      return;
    }
    if (next.certificate.certificatePem === serving.certificate.certificatePem) {
      waiting = undefined;
      return;
    }
    if (waiting?.certificate.certificatePem !== next.certificate.certificatePem) {
      waiting = { ...next, serveAt: now + settleMs };
    }
    if (now < waiting.serveAt) return;
    for (const listener of listeners) listener(next.certificate);
    serving = next;
    waiting = undefined;
    logger.info('serving a renewed certificate', {
      secret,
      notAfter: next.facts.notAfter.toISOString(),
    });
  }

  async function check(): Promise<number> {
    const next = await reconcileServingCertificate(options, deps);
    const publishError = await publish(next.certificate).then(
      () => undefined,
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    // A certificate from a new CA is served only once the bundle naming that CA is published.
    if (publishError === undefined || serving === undefined) serve(next, clock.now().getTime());
    if (publishError !== undefined) throw publishError;
    failure = undefined;
    return nextCheckDelayMs({
      now: clock.now(),
      dueAt: renewalDueAt(next.facts, share),
      serveAt: waiting?.serveAt,
      intervalMs: options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS,
      minDelayMs: options.minCheckDelayMs ?? DEFAULT_MIN_CHECK_DELAY_MS,
    });
  }

  const loop = startRetryLoop({
    step: check,
    failed: (error, failures, retryInMs) => {
      failure = describeError(error);
      logger.warn('serving certificate check failed; retrying', {
        secret,
        error: failure,
        failures,
        retryInMs,
      });
    },
    clock,
    random: deps.random,
    initialBackoffMs: options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS,
    maxBackoffMs: options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
  });

  return {
    first,
    onRenewal: (listener) => void listeners.push(listener),
    readiness: () =>
      servingReadiness(
        {
          source: `Secret ${secret}`,
          serving: serving?.facts,
          failure,
          expiringShare: EXPIRING_SHARE,
        },
        clock.now(),
      ),
    async stop() {
      await loop.stop();
      rejectFirst(new MeshctlError(`stopped before a serving certificate from Secret ${secret}`));
    },
  };
}
