// The gateway's listener certificates as the pod sees them: "<listener>.crt" and "<listener>.key"
// in the certificate directory (a Secret volume the kubelet refreshes). A listener is served over
// TLS only when its chain parses, its key parses and the key is the certificate's: nginx would
// refuse the whole configuration for one bad pair, so a bad pair leaves out only its listener.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The listeners whose certificate and key are usable, and a fingerprint of what was read. */
export interface CertificateScan {
  readonly usable: ReadonlySet<string>;
  /** Why each unusable pair is refused, by listener. */
  readonly refused: ReadonlyMap<string, string>;
  /** Changes whenever any file's content changes. */
  readonly fingerprint: string;
}

function refusal(certificatePem: string, keyPem: string): string | undefined {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificatePem);
  } catch {
    return 'the certificate is not a PEM X.509 certificate';
  }
  try {
    const key = createPrivateKey(keyPem);
    if (!certificate.checkPrivateKey(key)) return 'the key is not the certificate’s';
  } catch {
    return 'the key is not a PEM private key';
  }
  return undefined;
}

/** Reads the directory; a missing directory has no certificates. */
export function scanCertificates(dir: string): CertificateScan {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.crt') && !name.startsWith('.'));
  } catch {
    return { usable: new Set(), refused: new Map(), fingerprint: '' };
  }
  const hash = createHash('sha256');
  const usable = new Set<string>();
  const refused = new Map<string, string>();
  for (const name of names.sort()) {
    const listener = name.slice(0, -'.crt'.length);
    let certificatePem: string;
    let keyPem: string;
    try {
      certificatePem = readFileSync(join(dir, name), 'utf8');
      keyPem = readFileSync(join(dir, `${listener}.key`), 'utf8');
    } catch {
      refused.set(listener, 'the certificate or its key cannot be read');
      continue;
    }
    hash.update(`${listener}\n${certificatePem}\n${keyPem}\n`);
    const reason = refusal(certificatePem, keyPem);
    if (reason === undefined) usable.add(listener);
    else refused.set(listener, reason);
  }
  return { usable, refused, fingerprint: hash.digest('hex') };
}
