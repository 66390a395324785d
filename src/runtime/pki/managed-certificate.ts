// A serving certificate the API server must trust, managed by the role that serves with it (the
// controller's webhook, the metrics API) until the registrar issues one: kept in a Secret (so
// replicas and restarts share it), with its CA written into the object that tells the API server
// whom to trust (a MutatingWebhookConfiguration, an APIService).
import type { Logger } from '../role/log';
import type { ServingCertificate } from './serving-certificate';
import { createServingCertificate, describeCertificate } from './serving-certificate';

/** Where the certificate is kept. */
export interface CertificateStore {
  readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Creates the Secret; resolves false when another replica created it first. */
  createSecret(namespace: string, name: string, data: Record<string, string>): Promise<boolean>;
  replaceSecret(namespace: string, name: string, data: Record<string, string>): Promise<void>;
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
  /** Renew when less than this remains (default 30). */
  readonly renewBeforeDays?: number;
  /** Lifetime of a new certificate (default 365). */
  readonly validityDays?: number;
}

const DEFAULT_RENEW_BEFORE_DAYS = 30;
const DEFAULT_VALIDITY_DAYS = 365;

const CERT_KEY = 'tls.crt';
const KEY_KEY = 'tls.key';
const CA_KEY = 'ca.crt';

/** The names a Service answers to from inside the cluster. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

function decode(data: Record<string, string>): ServingCertificate | undefined {
  const [cert, key, ca] = [data[CERT_KEY], data[KEY_KEY], data[CA_KEY]].map((value) =>
    value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8'),
  );
  if (cert === undefined || key === undefined || ca === undefined) return undefined;
  return { certificatePem: cert, privateKeyPem: key, caPem: ca, notAfter: new Date(0) };
}

function encode(certificate: ServingCertificate): Record<string, string> {
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  return {
    [CERT_KEY]: b64(certificate.certificatePem),
    [KEY_KEY]: b64(certificate.privateKeyPem),
    [CA_KEY]: b64(certificate.caPem),
  };
}

async function usable(
  stored: ServingCertificate | undefined,
  wanted: readonly string[],
  now: Date,
  renewBeforeDays: number,
): Promise<ServingCertificate | undefined> {
  if (stored === undefined) return undefined;
  try {
    const { notAfter, dnsNames } = await describeCertificate(stored.certificatePem);
    const fresh = notAfter.getTime() - now.getTime() > renewBeforeDays * 86_400_000;
    return fresh && wanted.every((name) => dnsNames.includes(name))
      ? { ...stored, notAfter }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns the certificate to serve with: the stored one while it is valid for the service's
 * names and not close to expiry, otherwise a new one (stored before use). Either way the
 * target's CA bundle is brought in line.
 */
export async function ensureServingCertificate(
  options: ManagedCertificateOptions,
  api: { readonly store: CertificateStore; readonly target: CaBundleTarget },
  now: Date,
  logger: Logger,
): Promise<ServingCertificate> {
  const { store, target } = api;
  const names = serviceDnsNames(options.serviceName, options.namespace);
  const existing = await store.readSecret(options.namespace, options.secretName);
  let certificate = await usable(
    existing === undefined ? undefined : decode(existing),
    names,
    now,
    options.renewBeforeDays ?? DEFAULT_RENEW_BEFORE_DAYS,
  );
  if (certificate === undefined) {
    const created = await createServingCertificate(
      options.serviceName,
      names,
      now,
      options.validityDays ?? DEFAULT_VALIDITY_DAYS,
    );
    if (existing === undefined) {
      const won = await store.createSecret(options.namespace, options.secretName, encode(created));
      const shared = won
        ? undefined
        : await store.readSecret(options.namespace, options.secretName);
      certificate = shared === undefined ? created : (decode(shared) ?? created);
    } else {
      await store.replaceSecret(options.namespace, options.secretName, encode(created));
      certificate = created;
    }
    logger.info('serving certificate issued', {
      secret: options.secretName,
      notAfter: created.notAfter.toISOString(),
    });
  }
  const published = await target.publish(caBundleOf(certificate));
  if (!published) {
    logger.warn('CA bundle target not found; its CA bundle will be set when it exists', {
      target: target.description,
    });
  }
  return certificate;
}

/** The certificate's CA as a caBundle field holds it. */
export function caBundleOf(certificate: ServingCertificate): string {
  return Buffer.from(certificate.caPem).toString('base64');
}

/**
 * Writes the CA bundle again every intervalMs (the target may be created or edited later);
 * returns the function that stops it.
 */
export function keepCaBundle(
  target: CaBundleTarget,
  certificate: ServingCertificate,
  intervalMs: number,
  logger: Logger,
): () => void {
  const caBundle = caBundleOf(certificate);
  const timer = setInterval(() => {
    target
      .publish(caBundle)
      .catch((error: unknown) =>
        logger.warn('CA bundle sync failed', { target: target.description, error: String(error) }),
      );
  }, intervalMs);
  return () => clearInterval(timer);
}
