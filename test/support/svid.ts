// SVIDs signed by the registrar's own code, for tests that need real certificates without a
// cluster: a new key and CSR from the SVID client's code, checked and signed as the registrar does.
import type { MtlsCaKeyType } from '../../src/manifests/mesh-config/deploy-flags';
import { buildSvidTemplate, identityOf } from '../../src/manifests/registrar/svid-policy';
import type { Authority } from '../../src/runtime/registrar/authority';
import { signLeaf } from '../../src/runtime/registrar/authority';
import { checkCsr } from '../../src/runtime/registrar/issuer';
import { describeKey, randomSerial } from '../../src/runtime/registrar/keys';
import { createKeyAndRequest } from '../../src/runtime/svid/csr';

export interface TestSvid {
  /** Leaf first, then any intermediates. */
  readonly chain: string;
  readonly keyPem: string;
  readonly csrPem: string;
}

/** An SVID for spiffe://example.org/ns/<namespace>/sa/<account>, valid for ttlMs from now. */
export async function issueTestSvid(
  authority: Authority,
  namespace: string,
  account: string,
  keyType: MtlsCaKeyType = 'ec-p256',
  ttlMs = 3_600_000,
): Promise<TestSvid> {
  const request = await createKeyAndRequest(keyType);
  const csr = checkCsr(request.csrPem);
  if ('refused' in csr) throw new Error(csr.reason);
  const template = buildSvidTemplate({
    identity: identityOf('example.org', namespace, account),
    key: describeKey(request.key),
    subjectPublicKeyInfo: csr.subjectPublicKeyInfo,
    issuer: authority.fields,
    signatureAlgorithm: authority.signatureAlgorithm,
    serial: randomSerial(),
    now: new Date(),
    ttlMs,
  });
  return { chain: signLeaf(authority, template), keyPem: request.keyPem, csrPem: request.csrPem };
}
