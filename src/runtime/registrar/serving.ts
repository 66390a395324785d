// The registrar's own serving certificate, issued from its CA like any SVID (identity
// nginx-mesh-registrar in the mesh namespace) with the Service's DNS names, so that workloads
// verify the API with the trust bundle alone.
import { createPublicKey } from 'node:crypto';
import { REGISTRAR_NAME } from '../../manifests/constants';
import { buildSvidTemplate, identityOf } from '../../manifests/registrar/svid-policy';
import { signLeaf } from './authority';
import type { CaView } from './issuer';
import { describeKey, generateKey, randomSerial, spkiOf } from './keys';

export interface ServingCertificate {
  readonly chainPem: string;
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** When it was issued: notBefore is dated back, so its renewal counts from here. */
  readonly issuedAt: Date;
}

/** DNS names of the registrar's Service in a namespace. */
export function registrarDnsNames(namespace: string): string[] {
  return [`${REGISTRAR_NAME}.${namespace}.svc`, `${REGISTRAR_NAME}.${namespace}.svc.cluster.local`];
}

export async function issueServingCertificate(
  view: CaView,
  options: { readonly namespace: string; readonly trustDomain: string; readonly ttlMs: number },
  now: Date,
): Promise<ServingCertificate> {
  const key = await generateKey('ec-p256');
  const spki = spkiOf(createPublicKey(key));
  const identity = identityOf(options.trustDomain, options.namespace, REGISTRAR_NAME);
  const template = buildSvidTemplate({
    identity,
    key: describeKey(key),
    subjectPublicKeyInfo: spki,
    issuer: view.active.fields,
    signatureAlgorithm: view.active.signatureAlgorithm,
    serial: randomSerial(),
    now,
    ttlMs: options.ttlMs,
    extraDnsNames: registrarDnsNames(options.namespace).filter((name) => name !== identity.dnsName),
  });
  return {
    chainPem: signLeaf(view.active, template),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    notBefore: template.notBefore,
    notAfter: template.notAfter,
    issuedAt: now,
  };
}
