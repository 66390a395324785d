// The registrar's CA as tests see it: the authorities in its Secret, which CA signed each
// sidecar's SVID, and a way to bring a CA handover forward. The handover is forced by ageing the
// current authority: its certificate is issued again with the same key, subject and key
// identifier, but a validity that places "now" past its half-life. The registrar then does what
// it does on day 15 of a 30-day CA: it prepares a successor, publishes it beside the current
// root, and hands signing over a sixth of the aged life later. Workloads keep trusting the aged
// root, since their bundles hold the same key and name under the original validity.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  REGISTRAR_CA_SECRET_KEY,
  REGISTRAR_CA_SECRET_NAME,
  SVID_FILE_NAME,
} from '../../../src/manifests/constants';
import { fromPem, toPem } from '../../../src/manifests/registrar/pem';
import {
  assembleSigned,
  buildTbsCertificate,
  readCertificate,
} from '../../../src/manifests/registrar/x509';
import { randomSerial, signatureAlgorithmOf, signDer } from '../../../src/runtime/registrar/keys';
import type { KubeRest } from '../harness/kube-rest';
import { podFiles } from './node-access';

/** An authority as the registrar keeps it in its Secret. */
interface StoredAuthority {
  readonly certificate: string;
  readonly chain: string;
  readonly key: string;
}

interface CaSecret {
  metadata: { resourceVersion: string };
  data?: Record<string, string>;
}

export interface AgedCa {
  /** The subject of the aged authority (also the original's): SVIDs it signed name it. */
  readonly subject: string;
  /** When the aged authority expires. */
  readonly notAfter: Date;
  /** When the successor may sign at the earliest: a sixth of the aged life after now. */
  readonly handoverAfter: Date;
}

function secretPath(meshNamespace: string): string {
  return `/api/v1/namespaces/${meshNamespace}/secrets/${REGISTRAR_CA_SECRET_NAME}`;
}

function decode(secret: CaSecret): StoredAuthority[] {
  const text = secret.data?.[REGISTRAR_CA_SECRET_KEY];
  if (text === undefined)
    throw new Error(`Secret ${REGISTRAR_CA_SECRET_NAME} has no ${REGISTRAR_CA_SECRET_KEY}`);
  return JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as StoredAuthority[];
}

/** The authorities in the registrar's Secret, oldest first, as X.509 certificates. */
export async function registrarAuthorities(
  rest: KubeRest,
  meshNamespace: string,
): Promise<X509Certificate[]> {
  const secret = await rest.request<CaSecret>('GET', secretPath(meshNamespace));
  return decode(secret).map((authority) => new X509Certificate(authority.certificate));
}

/** The self-signed authority issued again with the same key for [notBefore, notAfter]. */
function reissue(authority: StoredAuthority, notBefore: Date, notAfter: Date): StoredAuthority {
  const [der] = fromPem(authority.certificate, 'CERTIFICATE');
  if (der === undefined) throw new Error('the registrar authority has no PEM certificate');
  const fields = readCertificate(der);
  const key = createPrivateKey(authority.key);
  const algorithm = signatureAlgorithmOf(key);
  const tbs = buildTbsCertificate({
    serial: randomSerial(),
    signatureAlgorithm: algorithm,
    issuer: fields.subject,
    subject: fields.subject,
    notBefore,
    notAfter,
    subjectPublicKeyInfo: fields.subjectPublicKeyInfo,
    basicConstraints: { ca: true, pathLength: 0 },
    keyUsages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    extendedKeyUsages: [],
    uris: fields.uris,
    dnsNames: [],
    ...(fields.subjectKeyId === undefined
      ? {}
      : { subjectKeyId: fields.subjectKeyId, authorityKeyId: fields.subjectKeyId }),
  });
  const certificate = toPem(
    'CERTIFICATE',
    assembleSigned(tbs, algorithm, signDer(tbs, algorithm, key)),
  );
  return { ...authority, certificate };
}

/**
 * Ages the registrar's only authority so that it lives lifeMs in all and "now" lies just past
 * its half-life: the registrar prepares its successor at its next look at the Secret (within
 * seconds) and hands over lifeMs / 6 after that. Refuses when a rotation is under way already.
 */
export async function ageRegistrarCa(
  rest: KubeRest,
  meshNamespace: string,
  lifeMs: number,
): Promise<AgedCa> {
  const secret = await rest.request<CaSecret>('GET', secretPath(meshNamespace));
  const authorities = decode(secret);
  const [current] = authorities;
  if (current === undefined || authorities.length !== 1)
    throw new Error(
      `expected one authority in Secret ${REGISTRAR_CA_SECRET_NAME}, found ${authorities.length}`,
    );
  const now = Date.now();
  const notBefore = new Date(now - lifeMs / 2 - 5_000);
  const notAfter = new Date(notBefore.getTime() + lifeMs);
  const aged = reissue(current, notBefore, notAfter);
  await rest.request('PUT', secretPath(meshNamespace), {
    ...secret,
    data: {
      ...secret.data,
      [REGISTRAR_CA_SECRET_KEY]: Buffer.from(JSON.stringify([aged])).toString('base64'),
    },
  });
  return {
    subject: new X509Certificate(aged.certificate).subject,
    notAfter,
    handoverAfter: new Date(now + lifeMs / 6),
  };
}

/** What a sidecar's current SVID says: who signed it and until when it is valid. */
export interface SvidSummary {
  readonly issuer: string;
  readonly notAfter: Date;
}

/** The SVID in the volumes of the pod with this uid; undefined while there is none. */
export function svidOf(uid: string): SvidSummary | undefined {
  const [file] = podFiles(uid, SVID_FILE_NAME);
  if (file === undefined) return undefined;
  try {
    const [leaf] =
      readFileSync(file, 'utf8').match(
        /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g,
      ) ?? [];
    if (leaf === undefined) return undefined;
    const certificate = new X509Certificate(leaf);
    return { issuer: certificate.issuer, notAfter: new Date(certificate.validTo) };
  } catch {
    return undefined;
  }
}
