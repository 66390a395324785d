// The injection webhook's serving certificate until the registrar issues it: the controller
// keeps it in a Secret (so replicas and restarts share it) and writes its CA into the
// MutatingWebhookConfiguration, which the API server needs to trust the webhook.
import type { Logger } from '../role/log';
import type { ServingCertificate } from '../pki/serving-certificate';
import { createServingCertificate, describeCertificate } from '../pki/serving-certificate';

/** The few API calls the certificate manager makes. */
export interface WebhookTlsApi {
  readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Creates the Secret; resolves false when another replica created it first. */
  createSecret(namespace: string, name: string, data: Record<string, string>): Promise<boolean>;
  replaceSecret(namespace: string, name: string, data: Record<string, string>): Promise<void>;
  /** Sets caBundle on every webhook of the configuration; false when it does not exist (yet). */
  setWebhookCaBundle(configurationName: string, caBundle: string): Promise<boolean>;
}

export interface WebhookTlsOptions {
  readonly namespace: string;
  readonly secretName: string;
  readonly serviceName: string;
  readonly configurationName: string;
  /** Renew when less than this remains. */
  readonly renewBeforeDays: number;
  readonly validityDays: number;
}

const CERT_KEY = 'tls.crt';
const KEY_KEY = 'tls.key';
const CA_KEY = 'ca.crt';

export function webhookDnsNames(service: string, namespace: string): string[] {
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
 * webhook configuration's CA bundle is brought in line.
 */
export async function ensureWebhookCertificate(
  options: WebhookTlsOptions,
  api: WebhookTlsApi,
  now: Date,
  logger: Logger,
): Promise<ServingCertificate> {
  const names = webhookDnsNames(options.serviceName, options.namespace);
  const existing = await api.readSecret(options.namespace, options.secretName);
  let certificate = await usable(
    existing === undefined ? undefined : decode(existing),
    names,
    now,
    options.renewBeforeDays,
  );
  if (certificate === undefined) {
    const created = await createServingCertificate(
      options.serviceName,
      names,
      now,
      options.validityDays,
    );
    if (existing === undefined) {
      const won = await api.createSecret(options.namespace, options.secretName, encode(created));
      const shared = won ? undefined : await api.readSecret(options.namespace, options.secretName);
      certificate = shared === undefined ? created : (decode(shared) ?? created);
    } else {
      await api.replaceSecret(options.namespace, options.secretName, encode(created));
      certificate = created;
    }
    logger.info('webhook certificate issued', {
      secret: options.secretName,
      notAfter: created.notAfter.toISOString(),
    });
  }
  const patched = await api.setWebhookCaBundle(
    options.configurationName,
    Buffer.from(certificate.caPem).toString('base64'),
  );
  if (!patched) {
    logger.warn('webhook configuration not found; its CA bundle will be set when it exists', {
      configuration: options.configurationName,
    });
  }
  return certificate;
}
