// X.509 certificates and PKCS #10 requests as the registrar needs them: a certificate's
// to-be-signed part built from a template, assembled with a signature made elsewhere, and the
// fields of requests and certificates read back. Pure: keys and signing stay in the runtime.
import {
  DerError,
  TAG,
  bitString,
  booleanTrue,
  children,
  derNull,
  expectTag,
  explicit,
  ia5,
  octetString,
  oid,
  readNode,
  readOid,
  readText,
  readTime,
  readWhole,
  sequence,
  set,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
  utf8String,
} from './der';
import type { DerNode } from './der';

export const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  rsaSha256: '1.2.840.113549.1.1.11',
  rsaSha384: '1.2.840.113549.1.1.12',
} as const;

/** How a certificate or request is signed: the key family and the digest. */
export type SignatureAlgorithm = 'ecdsa-sha256' | 'ecdsa-sha384' | 'rsa-sha256' | 'rsa-sha384';

const SIGNATURE_OIDS: Readonly<Record<SignatureAlgorithm, string>> = {
  'ecdsa-sha256': OID.ecdsaSha256,
  'ecdsa-sha384': OID.ecdsaSha384,
  'rsa-sha256': OID.rsaSha256,
  'rsa-sha384': OID.rsaSha384,
};

/** The digest a signature algorithm uses, as node:crypto names it. */
export function digestOf(algorithm: SignatureAlgorithm): 'sha256' | 'sha384' {
  return algorithm.endsWith('384') ? 'sha384' : 'sha256';
}

export function signatureAlgorithmFromOid(dotted: string): SignatureAlgorithm | undefined {
  const found = Object.entries(SIGNATURE_OIDS).find(([, value]) => value === dotted);
  return found?.[0] as SignatureAlgorithm | undefined;
}

function algorithmIdentifier(algorithm: SignatureAlgorithm): Uint8Array {
  const id = oid(SIGNATURE_OIDS[algorithm]);
  // RSA signature identifiers carry explicit NULL parameters; ECDSA ones carry none (RFC 5758).
  return algorithm.startsWith('rsa') ? sequence(id, derNull()) : sequence(id);
}

export type KeyUsage =
  'digitalSignature' | 'keyEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';

const KEY_USAGE_BITS: Readonly<Record<KeyUsage, number>> = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
};

export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth';

export interface NameAttributes {
  readonly organization?: string;
  readonly commonName?: string;
}

/** A distinguished name with at most an O and a CN, in that order. */
export function buildName(attributes: NameAttributes): Uint8Array {
  const rdns: Uint8Array[] = [];
  const add = (type: string, value: string | undefined): void => {
    if (value !== undefined) rdns.push(set(sequence(oid(type), utf8String(value))));
  };
  add(OID.organization, attributes.organization);
  add(OID.commonName, attributes.commonName);
  return sequence(...rdns);
}

export interface CertificateTemplate {
  /** Positive serial number, big-endian; at most 20 bytes. */
  readonly serial: Uint8Array;
  readonly signatureAlgorithm: SignatureAlgorithm;
  /** DER Names. The issuer's must be its certificate's subject byte for byte. */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key. */
  readonly subjectPublicKeyInfo: Uint8Array;
  /** CA:true with an optional path length, or CA:false. Always critical. */
  readonly basicConstraints: { readonly ca: boolean; readonly pathLength?: number };
  /** Always critical. */
  readonly keyUsages: readonly KeyUsage[];
  readonly extendedKeyUsages: readonly ExtendedKeyUsage[];
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly subjectKeyId?: Uint8Array;
  readonly authorityKeyId?: Uint8Array;
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? sequence(oid(id), booleanTrue(), octetString(value))
    : sequence(oid(id), octetString(value));
}

function keyUsageValue(usages: readonly KeyUsage[]): Uint8Array {
  let bits = 0;
  for (const usage of usages) bits |= 0x80 >> KEY_USAGE_BITS[usage];
  let unused = 0;
  while (unused < 7 && (bits & (1 << unused)) === 0) unused += 1;
  return tlv(TAG.bitString, Uint8Array.of(unused, bits));
}

function generalNames(uris: readonly string[], dnsNames: readonly string[]): Uint8Array {
  return sequence(...dnsNames.map((name) => ia5(0x82, name)), ...uris.map((uri) => ia5(0x86, uri)));
}

function extensions(template: CertificateTemplate): Uint8Array[] {
  const { basicConstraints: bc } = template;
  const list = [
    extension(
      OID.basicConstraints,
      true,
      sequence(
        ...(bc.ca ? [booleanTrue()] : []),
        ...(bc.ca && bc.pathLength !== undefined ? [smallInteger(bc.pathLength)] : []),
      ),
    ),
    extension(OID.keyUsage, true, keyUsageValue(template.keyUsages)),
  ];
  if (template.extendedKeyUsages.length > 0) {
    const ids = template.extendedKeyUsages.map((usage) => oid(OID[usage]));
    list.push(extension(OID.extKeyUsage, false, sequence(...ids)));
  }
  if (template.uris.length + template.dnsNames.length > 0) {
    list.push(extension(OID.subjectAltName, false, generalNames(template.uris, template.dnsNames)));
  }
  if (template.subjectKeyId !== undefined) {
    list.push(extension(OID.subjectKeyIdentifier, false, octetString(template.subjectKeyId)));
  }
  if (template.authorityKeyId !== undefined) {
    list.push(
      extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, template.authorityKeyId))),
    );
  }
  return list;
}

/** The DER TBSCertificate of a version 3 certificate. */
export function buildTbsCertificate(template: CertificateTemplate): Uint8Array {
  return sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(template.serial),
    algorithmIdentifier(template.signatureAlgorithm),
    template.issuer,
    sequence(time(template.notBefore), time(template.notAfter)),
    template.subject,
    template.subjectPublicKeyInfo,
    explicit(3, sequence(...extensions(template))),
  );
}

/** A signed structure: the to-be-signed part, its algorithm and the signature (DER for ECDSA). */
export function assembleSigned(
  toBeSigned: Uint8Array,
  algorithm: SignatureAlgorithm,
  signature: Uint8Array,
): Uint8Array {
  return sequence(toBeSigned, algorithmIdentifier(algorithm), bitString(signature));
}

/** The DER CertificationRequestInfo of a PKCS #10 request, asking for the given SANs. */
export function buildCertificationRequestInfo(
  subject: Uint8Array,
  subjectPublicKeyInfo: Uint8Array,
  uris: readonly string[],
  dnsNames: readonly string[],
): Uint8Array {
  const requested =
    uris.length + dnsNames.length === 0
      ? []
      : [
          sequence(
            oid(OID.extensionRequest),
            set(sequence(extension(OID.subjectAltName, false, generalNames(uris, dnsNames)))),
          ),
        ];
  return sequence(smallInteger(0), subject, subjectPublicKeyInfo, tlv(0xa0, ...requested));
}

// ---- reading ----

/** What the registrar needs from a PKCS #10 request. */
export interface CertificationRequestFields {
  /** The signed part, whose signature proves possession of the key. */
  readonly info: Uint8Array;
  readonly subjectPublicKeyInfo: Uint8Array;
  /** Undefined when the request is signed with an algorithm the registrar does not accept. */
  readonly signatureAlgorithm: SignatureAlgorithm | undefined;
  readonly signatureAlgorithmOid: string;
  readonly signature: Uint8Array;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  /** SANs of other kinds (IP addresses, e-mail addresses, …): never granted. */
  readonly otherNames: number;
}

function readSans(value: Uint8Array): { uris: string[]; dnsNames: string[]; otherNames: number } {
  const names = children(expectTag(readWhole(value, 'subjectAltName'), TAG.sequence, 'SAN'));
  const uris: string[] = [];
  const dnsNames: string[] = [];
  let otherNames = 0;
  for (const name of names) {
    if (name.tag === 0x86) uris.push(readText(name));
    else if (name.tag === 0x82) dnsNames.push(readText(name));
    else otherNames += 1;
  }
  return { uris, dnsNames, otherNames };
}

/** Extensions as (oid, critical, value) from a SEQUENCE OF Extension. */
function readExtensions(node: DerNode): { id: string; critical: boolean; value: Uint8Array }[] {
  return children(expectTag(node, TAG.sequence, 'extensions')).map((item) => {
    const parts = children(expectTag(item, TAG.sequence, 'extension'));
    const critical = parts.length === 3 && parts[1]?.tag === TAG.boolean;
    const value = expectTag(parts[parts.length - 1], TAG.octetString, 'extension value');
    return { id: readOid(parts[0], 'extension id'), critical, value: value.contents };
  });
}

function requestedExtensions(attributes: DerNode | undefined): ReturnType<typeof readExtensions> {
  if (attributes === undefined) return [];
  const found: ReturnType<typeof readExtensions> = [];
  for (const attribute of children(attributes)) {
    const [type, values] = children(expectTag(attribute, TAG.sequence, 'attribute'));
    if (readOid(type, 'attribute type') !== OID.extensionRequest) continue;
    for (const value of children(expectTag(values, TAG.set, 'attribute values'))) {
      found.push(...readExtensions(value));
    }
  }
  return found;
}

function readSignatureParts(
  algorithm: DerNode | undefined,
  signature: DerNode | undefined,
): { id: string; bytes: Uint8Array } {
  const id = readOid(children(expectTag(algorithm, TAG.sequence, 'signature algorithm'))[0], 'oid');
  const bits = expectTag(signature, TAG.bitString, 'signature').contents;
  if (bits[0] !== 0) throw new DerError('signature: unused bits');
  return { id, bytes: bits.subarray(1) };
}

/** Reads a DER PKCS #10 request; throws DerError naming the part that is malformed. */
export function readCertificationRequest(der: Uint8Array): CertificationRequestFields {
  const [info, algorithm, signature] = children(
    expectTag(readWhole(der, 'certificate request'), TAG.sequence, 'certificate request'),
  );
  const infoNode = expectTag(info, TAG.sequence, 'certification request info');
  const [version, , spki, attributes] = children(infoNode);
  if (version?.tag !== TAG.integer || version.contents[0] !== 0 || version.contents.length !== 1) {
    throw new DerError('certificate request: version must be 1');
  }
  const sans = requestedExtensions(attributes?.tag === 0xa0 ? attributes : undefined)
    .filter((item) => item.id === OID.subjectAltName)
    .map((item) => readSans(item.value));
  const parts = readSignatureParts(algorithm, signature);
  return {
    info: infoNode.bytes,
    subjectPublicKeyInfo: expectTag(spki, TAG.sequence, 'subject public key').bytes,
    signatureAlgorithm: signatureAlgorithmFromOid(parts.id),
    signatureAlgorithmOid: parts.id,
    signature: parts.bytes,
    uris: sans.flatMap((san) => san.uris),
    dnsNames: sans.flatMap((san) => san.dnsNames),
    otherNames: sans.reduce((sum, san) => sum + san.otherNames, 0),
  };
}

/** What the registrar needs from a certificate (its own CA's or an upstream one). */
export interface CertificateFields {
  readonly subject: Uint8Array;
  readonly issuer: Uint8Array;
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectKeyId: Uint8Array | undefined;
  readonly ca: boolean;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
}

function readBasicConstraintsCa(value: Uint8Array): boolean {
  const [first] = children(expectTag(readWhole(value, 'basicConstraints'), TAG.sequence, 'bc'));
  return first?.tag === TAG.boolean && first.contents[0] !== 0;
}

/** Reads a DER certificate's names, validity, key and the extensions the registrar uses. */
export function readCertificate(der: Uint8Array): CertificateFields {
  const [tbs] = children(expectTag(readWhole(der, 'certificate'), TAG.sequence, 'certificate'));
  const fields = children(expectTag(tbs, TAG.sequence, 'tbsCertificate'));
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const at = (index: number): DerNode | undefined => fields[offset + index];
  const validity = children(expectTag(at(3), TAG.sequence, 'validity'));
  const extensionsNode = fields.find((field) => field.tag === 0xa3);
  const list =
    extensionsNode === undefined ? [] : readExtensions(readNode(extensionsNode.contents));
  const value = (id: string): Uint8Array | undefined => list.find((item) => item.id === id)?.value;
  const ski = value(OID.subjectKeyIdentifier);
  const bc = value(OID.basicConstraints);
  const san = value(OID.subjectAltName);
  const sans = san === undefined ? { uris: [], dnsNames: [] } : readSans(san);
  return {
    issuer: expectTag(at(2), TAG.sequence, 'issuer').bytes,
    subject: expectTag(at(4), TAG.sequence, 'subject').bytes,
    subjectPublicKeyInfo: expectTag(at(5), TAG.sequence, 'subject public key').bytes,
    notBefore: readTime(validity[0], 'notBefore'),
    notAfter: readTime(validity[1], 'notAfter'),
    subjectKeyId:
      ski === undefined
        ? undefined
        : expectTag(readWhole(ski, 'ski'), TAG.octetString, 'ski').contents,
    ca: bc !== undefined && readBasicConstraintsCa(bc),
    uris: sans.uris,
    dnsNames: sans.dnsNames,
  };
}

/** The BIT STRING contents (without the unused-bits byte) of a SubjectPublicKeyInfo. */
export function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  const [, key] = children(expectTag(readWhole(spki, 'public key'), TAG.sequence, 'public key'));
  return expectTag(key, TAG.bitString, 'public key bits').contents.subarray(1);
}
