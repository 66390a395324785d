// The registrar's signing authorities: created (self-signed, or as an intermediate of an
// upstream CA from disk), serialised for the shared Secret, and loaded back with what signing
// needs. A loaded authority keeps its parsed fields, so issuing a leaf parses nothing again.
import type { KeyObject } from 'node:crypto';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshctlError } from '../../errors';
import {
  UPSTREAM_CA_BUNDLE_KEY,
  UPSTREAM_CA_CERT_KEY,
  UPSTREAM_CA_KEY_KEY,
} from '../../manifests/constants';
import type { MtlsCaKeyType } from '../../manifests/mesh-config/deploy-flags';
import { fromPem, toPem } from '../../manifests/registrar/pem';
import type {
  CertificateFields,
  CertificateTemplate,
  SignatureAlgorithm,
} from '../../manifests/registrar/x509';
import {
  assembleSigned,
  buildName,
  buildTbsCertificate,
  readCertificate,
} from '../../manifests/registrar/x509';
import {
  generateKey,
  keyIdentifierOf,
  randomSerial,
  signatureAlgorithmOf,
  signDer,
  spkiOf,
} from './keys';

/** How an authority is kept in the Secret: PEM texts only. */
export interface StoredAuthority {
  /** This authority's certificate. */
  readonly certificate: string;
  /** Certificates between it and the trust anchor ("" when it is a root itself). */
  readonly chain: string;
  /** PKCS #8 private key. */
  readonly key: string;
}

export interface Authority {
  readonly stored: StoredAuthority;
  readonly fields: CertificateFields;
  readonly key: KeyObject;
  readonly signatureAlgorithm: SignatureAlgorithm;
}

/** An upstream CA read from --upstream-ca-dir. */
export interface UpstreamCa {
  readonly certificatePem: string;
  readonly fields: CertificateFields;
  readonly key: KeyObject;
  /** The roots workloads trust: upstreamBundle.crt, else the upstream certificate itself. */
  readonly bundlePem: string;
  /** What goes between our intermediate and the bundle's roots. */
  readonly chainPem: string;
}

export class AuthorityError extends MeshctlError {}

export const UPSTREAM_FILES = {
  certificate: UPSTREAM_CA_CERT_KEY,
  key: UPSTREAM_CA_KEY_KEY,
  bundle: UPSTREAM_CA_BUNDLE_KEY,
} as const;

function firstCertificateDer(pem: string, what: string): Uint8Array {
  const [der] = fromPem(pem, 'CERTIFICATE');
  if (der === undefined) throw new AuthorityError(`${what}: no PEM CERTIFICATE block`);
  return der;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/** Loads a stored authority; throws AuthorityError naming what is wrong with it. */
export function loadAuthority(stored: StoredAuthority, what: string): Authority {
  try {
    const fields = readCertificate(firstCertificateDer(stored.certificate, what));
    const key = createPrivateKey(stored.key);
    if (!sameBytes(spkiOf(createPublicKey(key)), fields.subjectPublicKeyInfo)) {
      throw new AuthorityError(`${what}: the key does not belong to the certificate`);
    }
    if (!fields.ca) throw new AuthorityError(`${what}: the certificate is not a CA`);
    return { stored, fields, key, signatureAlgorithm: signatureAlgorithmOf(key) };
  } catch (error) {
    if (error instanceof AuthorityError) throw error;
    throw new AuthorityError(`${what}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/** Whether the authority was signed by the upstream CA (or, without one, by itself). */
export function issuedBy(authority: Authority, upstream: UpstreamCa | undefined): boolean {
  const certificate = new X509Certificate(authority.stored.certificate);
  const issuerKey = upstream === undefined ? authority.key : upstream.key;
  return certificate.verify(createPublicKey(issuerKey));
}

export interface AuthorityOptions {
  readonly keyType: MtlsCaKeyType;
  readonly trustDomain: string;
  readonly ttlMs: number;
  readonly upstream: UpstreamCa | undefined;
}

/**
 * A new authority valid from now for ttlMs (never beyond the upstream CA); throws
 * AuthorityError, before generating a key, when the upstream CA is not valid now.
 */
export async function createAuthority(options: AuthorityOptions, now: Date): Promise<Authority> {
  const { upstream } = options;
  if (upstream !== undefined) {
    const { notBefore, notAfter: upstreamNotAfter } = upstream.fields;
    if (now.getTime() < notBefore.getTime() || now.getTime() >= upstreamNotAfter.getTime()) {
      throw new AuthorityError(
        `the upstream CA cannot sign a new CA: it is valid from ${notBefore.toISOString()} until ${upstreamNotAfter.toISOString()}, now ${now.toISOString()}`,
      );
    }
  }
  const notAfter = Math.min(
    now.getTime() + options.ttlMs,
    upstream?.fields.notAfter.getTime() ?? Number.POSITIVE_INFINITY,
  );
  const key = await generateKey(options.keyType);
  const spki = spkiOf(createPublicKey(key));
  const keyId = keyIdentifierOf(spki);
  const subject = buildName({
    organization: 'nginx-service-mesh',
    commonName: `nginx-mesh-registrar CA ${Buffer.from(keyId).toString('hex').slice(0, 16)}`,
  });
  const signer = upstream?.key ?? key;
  const algorithm = signatureAlgorithmOf(signer);
  const tbs = buildTbsCertificate({
    serial: randomSerial(),
    signatureAlgorithm: algorithm,
    issuer: upstream?.fields.subject ?? subject,
    subject,
    // Not backdated: the rotation plan measures publication from notBefore.
    notBefore: now,
    notAfter: new Date(notAfter),
    subjectPublicKeyInfo: spki,
    basicConstraints: { ca: true, pathLength: 0 },
    keyUsages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    extendedKeyUsages: [],
    uris: [`spiffe://${options.trustDomain}`],
    dnsNames: [],
    subjectKeyId: keyId,
    authorityKeyId: upstream === undefined ? keyId : upstream.fields.subjectKeyId,
  });
  const der = assembleSigned(tbs, algorithm, signDer(tbs, algorithm, signer));
  const stored: StoredAuthority = {
    certificate: toPem('CERTIFICATE', der),
    chain: upstream?.chainPem ?? '',
    key: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
  return { stored, fields: readCertificate(der), key, signatureAlgorithm: algorithm };
}

async function readUpstreamFile(dir: string, name: string, optional: boolean): Promise<string> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new AuthorityError(`--upstream-ca-dir: cannot read ${join(dir, name)}: ${String(error)}`);
  }
}

/** Reads and checks upstreamCA.crt, upstreamCA.key and the optional upstreamBundle.crt. */
export async function loadUpstreamCa(dir: string): Promise<UpstreamCa> {
  const certificatePem = await readUpstreamFile(dir, UPSTREAM_FILES.certificate, false);
  const keyPem = await readUpstreamFile(dir, UPSTREAM_FILES.key, false);
  const bundle = await readUpstreamFile(dir, UPSTREAM_FILES.bundle, true);
  const what = `--upstream-ca-dir ${join(dir, UPSTREAM_FILES.certificate)}`;
  const loaded = loadAuthority({ certificate: certificatePem, chain: '', key: keyPem }, what);
  if (bundle !== '' && fromPem(bundle, 'CERTIFICATE').length === 0) {
    throw new AuthorityError(
      `--upstream-ca-dir ${join(dir, UPSTREAM_FILES.bundle)}: no PEM CERTIFICATE block`,
    );
  }
  const certificateOnly = toPem('CERTIFICATE', firstCertificateDer(certificatePem, what));
  return {
    certificatePem: certificateOnly,
    fields: loaded.fields,
    key: loaded.key,
    bundlePem: bundle === '' ? certificateOnly : bundle,
    chainPem: bundle === '' ? '' : certificateOnly,
  };
}

/**
 * Signs a leaf; returns the chain to serve: the leaf, this authority and what is above it.
 * Throws AuthorityError, signing nothing, unless the leaf's validity is a non-empty window
 * inside the authority's own.
 */
export function signLeaf(authority: Authority, template: CertificateTemplate): string {
  const { notBefore, notAfter } = authority.fields;
  if (
    template.notAfter.getTime() <= template.notBefore.getTime() ||
    template.notBefore.getTime() < notBefore.getTime() ||
    template.notAfter.getTime() > notAfter.getTime()
  ) {
    throw new AuthorityError(
      `refusing to sign a leaf valid from ${template.notBefore.toISOString()} until ${template.notAfter.toISOString()} with a CA valid from ${notBefore.toISOString()} until ${notAfter.toISOString()}`,
    );
  }
  const tbs = buildTbsCertificate(template);
  const algorithm = template.signatureAlgorithm;
  const der = assembleSigned(tbs, algorithm, signDer(tbs, algorithm, authority.key));
  return toPem('CERTIFICATE', der) + authority.stored.certificate + authority.stored.chain;
}
