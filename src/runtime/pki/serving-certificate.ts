// A self-managed TLS serving certificate: a small CA and a leaf for the given DNS names, ECDSA
// P-256, made with @peculiar/x509 over Node's WebCrypto. The library is loaded on first use
// only, so commands that never make certificates do not pay for it.
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import type { CertificateFacts } from './renewal-policy';

export interface ServingCertificate {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** The CA that signed the certificate, possibly followed by earlier CAs still trusted. */
  readonly caPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** How far a certificate is dated back for lagging clocks: 5 minutes, less for short lives. */
const MAX_BACKDATE_MS = 5 * 60_000;
const BACKDATE_SHARE = 0.1;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

async function loadX509(): Promise<typeof X509> {
  // The library's dependency injection needs the Reflect metadata polyfill loaded first.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto);
  return x509;
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

function toPem(label: string, der: ArrayBuffer): string {
  const base64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${base64.trimEnd()}\n-----END ${label}-----\n`;
}

/** Creates a CA valid for validityDays (fractions allowed) and a leaf for dnsNames signed by it. */
export async function createServingCertificate(
  commonName: string,
  dnsNames: readonly string[],
  now: Date,
  validityDays: number,
): Promise<ServingCertificate> {
  const x509 = await loadX509();
  const validityMs = validityDays * 86_400_000;
  const notBefore = new Date(
    now.getTime() - Math.min(MAX_BACKDATE_MS, validityMs * BACKDATE_SHARE),
  );
  const notAfter = new Date(now.getTime() + validityMs);
  const caKeys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName} CA`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leafKeys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${commonName}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  const privateKey = await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey);
  return {
    certificatePem: leaf.toString('pem') + '\n',
    privateKeyPem: toPem('PRIVATE KEY', privateKey),
    caPem: ca.toString('pem') + '\n',
    // As encoded: X.509 keeps whole seconds.
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
  };
}

/** Reads the validity and DNS names of a PEM certificate (the first of a bundle); throws when unreadable. */
export function describeCertificate(pem: string): CertificateFacts {
  const certificate = new X509Certificate(pem);
  const dnsNames = (certificate.subjectAltName ?? '')
    .split(', ')
    .filter((name) => name.startsWith('DNS:'))
    .map((name) => name.slice('DNS:'.length));
  return { notBefore: certificate.validFromDate, notAfter: certificate.validToDate, dnsNames };
}

/** Whether the private key is the certificate's (a TLS context cannot be made otherwise). */
export function keyMatchesCertificate(certificatePem: string, privateKeyPem: string): boolean {
  try {
    return new X509Certificate(certificatePem).checkPrivateKey(createPrivateKey(privateKeyPem));
  } catch {
    return false;
  }
}
