// A PKCS #10 request for a fresh key, or for the key a workload already holds (renewals keep it,
// see svid-client.ts). The request names no identity: the registrar decides it from the token,
// and refuses requests that ask for anything else.
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import type { MtlsCaKeyType } from '../../manifests/mesh-config/deploy-flags';
import { toPem } from '../../manifests/registrar/pem';
import {
  assembleSigned,
  buildCertificationRequestInfo,
  buildName,
} from '../../manifests/registrar/x509';
import { generateKey, signatureAlgorithmOf, signDer, spkiOf } from '../registrar/keys';

export interface KeyAndRequest {
  readonly key: KeyObject;
  readonly keyPem: string;
  readonly csrPem: string;
}

export async function createKeyAndRequest(keyType: MtlsCaKeyType): Promise<KeyAndRequest> {
  return createRequest(await generateKey(keyType));
}

/** A request for key, signed with it. */
export function createRequest(key: KeyObject): KeyAndRequest {
  const info = buildCertificationRequestInfo(buildName({}), spkiOf(createPublicKey(key)), [], []);
  const algorithm = signatureAlgorithmOf(key);
  const der = assembleSigned(info, algorithm, signDer(info, algorithm, key));
  return {
    key,
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    csrPem: toPem('CERTIFICATE REQUEST', der),
  };
}
