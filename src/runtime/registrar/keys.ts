// Keys and signatures for the registrar and its clients, with node:crypto: key generation for
// every --ca-key-type, the signature algorithm that goes with a key, and signing the DER that
// the pure builders produce. Synchronous signing keeps issuance fast (no WebCrypto round trip).
import type { KeyObject } from 'node:crypto';
import { createHash, generateKeyPair, randomBytes, sign } from 'node:crypto';
import type { MtlsCaKeyType } from '../../manifests/mesh-config/deploy-flags';
import type { RequestedKey } from '../../manifests/registrar/svid-policy';
import type { SignatureAlgorithm } from '../../manifests/registrar/x509';
import { digestOf, subjectPublicKeyBits } from '../../manifests/registrar/x509';

export function generateKey(type: MtlsCaKeyType): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, _public: KeyObject, privateKey: KeyObject): void => {
      if (error === null) resolve(privateKey);
      else reject(error);
    };
    switch (type) {
      case 'ec-p256':
        return generateKeyPair('ec', { namedCurve: 'prime256v1' }, done);
      case 'ec-p384':
        return generateKeyPair('ec', { namedCurve: 'secp384r1' }, done);
      case 'rsa-2048':
        return generateKeyPair('rsa', { modulusLength: 2048 }, done);
      case 'rsa-4096':
        return generateKeyPair('rsa', { modulusLength: 4096 }, done);
    }
  });
}

/** The key as the policy sees it: type and strength. */
export function describeKey(key: KeyObject): RequestedKey {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') return { type: 'ec', curve: details.namedCurve ?? '' };
  if (key.asymmetricKeyType === 'rsa')
    return { type: 'rsa', modulusBits: details.modulusLength ?? 0 };
  return { type: 'other', name: key.asymmetricKeyType ?? 'unknown' };
}

/** How a key signs: SHA-384 with P-384, SHA-256 otherwise. */
export function signatureAlgorithmOf(key: KeyObject): SignatureAlgorithm {
  const described = describeKey(key);
  if (described.type === 'rsa') return 'rsa-sha256';
  return described.type === 'ec' && described.curve === 'secp384r1'
    ? 'ecdsa-sha384'
    : 'ecdsa-sha256';
}

export function signDer(
  data: Uint8Array,
  algorithm: SignatureAlgorithm,
  key: KeyObject,
): Uint8Array {
  return new Uint8Array(sign(digestOf(algorithm), data, { key, dsaEncoding: 'der' }));
}

export function spkiOf(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: 'spki', format: 'der' }));
}

/** RFC 5280 key identifier (method 1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifierOf(spki: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(subjectPublicKeyBits(spki)).digest());
}

/** A random positive 128-bit serial number. */
export function randomSerial(): Uint8Array {
  const bytes = new Uint8Array(randomBytes(16));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes;
}
