// Issuing an X.509-SVID for one request: the CSR is checked first (cheap, and it spares the API
// server work for garbage), then the token through the TokenReview API, the pod it is bound to,
// the per-identity rate limit and the names asked for; only then is a leaf signed. Every
// refusal is logged with its reason and answered without a certificate. A CA that is not valid
// now (expired, or not valid yet by this process's clock) signs nothing: every request gets 503
// with the CA's validity window until a valid CA is in force.
import { createPublicKey, verify } from 'node:crypto';
import { IDENTITY_TOKEN_AUDIENCE } from '../../manifests/constants';
import { DerError } from '../../manifests/registrar/der';
import { fromPem } from '../../manifests/registrar/pem';
import type { Bucket, RateLimit } from '../../manifests/registrar/rate-limit';
import { isFull, takeToken } from '../../manifests/registrar/rate-limit';
import type {
  PodFacts,
  Refusal,
  TokenReviewFacts,
  WorkloadIdentity,
} from '../../manifests/registrar/svid-policy';
import {
  authorizeWorkload,
  buildSvidTemplate,
  checkRequestedKey,
  checkRequestedNames,
  claimOfReview,
  isRefusal,
} from '../../manifests/registrar/svid-policy';
import type { CertificationRequestFields } from '../../manifests/registrar/x509';
import { digestOf, readCertificationRequest } from '../../manifests/registrar/x509';
import type { Logger } from '../role/log';
import type { Authority } from './authority';
import { AuthorityError, signLeaf } from './authority';
import { caValidityProblem } from './ca-state';
import { describeKey, randomSerial } from './keys';
import { reasonOf } from './reason';

/** The two questions the registrar asks the API server. */
export interface WorkloadDirectory {
  reviewToken(token: string, audience: string): Promise<TokenReviewFacts>;
  /** undefined when the pod does not exist. */
  readPod(namespace: string, name: string): Promise<PodFacts | undefined>;
}

/** What a successful issuance returns to the workload (JSON). */
export interface SvidResponse {
  readonly spiffeId: string;
  /** The leaf first, then the intermediates up to the trust anchor. */
  readonly certificateChain: string;
  readonly trustBundle: string;
  readonly notAfter: string;
}

export type IssueOutcome =
  | { readonly ok: true; readonly response: SvidResponse }
  | { readonly ok: false; readonly refusal: Refusal; readonly retryAfterMs?: number };

export interface IssuerOptions {
  readonly meshNamespace: string;
  readonly trustDomain: string;
  readonly svidTtlMs: number;
  readonly rateLimit: RateLimit;
  /** Buckets kept at most; beyond it, full ones are dropped first, then the oldest. */
  readonly maxBuckets: number;
}

export interface CaView {
  readonly active: Authority;
  readonly bundlePem: string;
}

const MAX_CSR_BYTES = 16 * 1024;
/** Retry-After of a 503: the CA or the API server may be back by then. */
export const UNAVAILABLE_RETRY_AFTER_MS = 5000;

function refused(status: Refusal['status'], reason: string): IssueOutcome {
  return { ok: false, refusal: { refused: true, status, reason } };
}

function unavailable(reason: string): IssueOutcome {
  return {
    ok: false,
    refusal: { refused: true, status: 503, reason },
    retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS,
  };
}

/** Parses and checks a PEM CSR: structure, key strength and the proof of possession. */
export function checkCsr(pem: string): CertificationRequestFields | Refusal {
  const bad = (reason: string): Refusal => ({ refused: true, status: 400, reason });
  if (pem.length > MAX_CSR_BYTES) return bad(`CSR over ${MAX_CSR_BYTES} bytes`);
  const [der, ...more] = fromPem(pem, 'CERTIFICATE REQUEST');
  if (der === undefined || more.length > 0) return bad('csr: expected one PEM CERTIFICATE REQUEST');
  let csr: CertificationRequestFields;
  try {
    csr = readCertificationRequest(der);
  } catch (error) {
    if (error instanceof DerError) return bad(`csr: ${error.message}`);
    throw error;
  }
  let publicKey;
  try {
    publicKey = createPublicKey({
      key: Buffer.from(csr.subjectPublicKeyInfo),
      format: 'der',
      type: 'spki',
    });
  } catch {
    return bad('csr: unreadable public key');
  }
  const weak = checkRequestedKey(describeKey(publicKey));
  if (weak !== undefined) return weak;
  if (csr.signatureAlgorithm === undefined) {
    return bad(`csr: signature algorithm ${csr.signatureAlgorithmOid} is not accepted`);
  }
  const valid = verify(
    digestOf(csr.signatureAlgorithm),
    csr.info,
    { key: publicKey, dsaEncoding: 'der' },
    csr.signature,
  );
  return valid ? csr : bad('csr: signature does not match its key');
}

export interface Issuer {
  issue(token: string, csrPem: string): Promise<IssueOutcome>;
}

export function createIssuer(
  options: IssuerOptions,
  deps: {
    readonly directory: WorkloadDirectory;
    readonly ca: () => CaView | undefined;
    readonly now: () => Date;
    readonly logger: Logger;
  },
): Issuer {
  const buckets = new Map<string, Bucket>();
  const limited = (spiffeId: string, nowMs: number): number | undefined => {
    const result = takeToken(buckets.get(spiffeId), nowMs, options.rateLimit);
    buckets.delete(spiffeId);
    buckets.set(spiffeId, result.bucket);
    if (buckets.size > options.maxBuckets) {
      for (const [key, bucket] of buckets) {
        if (buckets.size <= options.maxBuckets) break;
        if (isFull(bucket, nowMs, options.rateLimit)) buckets.delete(key);
      }
      const oldest = buckets.keys().next();
      if (buckets.size > options.maxBuckets && oldest.done !== true) buckets.delete(oldest.value);
    }
    return result.allowed ? undefined : result.retryAfterMs;
  };

  const authorize = async (token: string): Promise<WorkloadIdentity | Refusal> => {
    const review = await deps.directory.reviewToken(token, IDENTITY_TOKEN_AUDIENCE);
    const claim = claimOfReview(review, IDENTITY_TOKEN_AUDIENCE);
    if (isRefusal(claim)) return claim;
    const pod = await deps.directory.readPod(claim.namespace, claim.podName);
    return authorizeWorkload(claim, pod, options);
  };

  const sign = (
    identity: WorkloadIdentity,
    csr: CertificationRequestFields,
    view: CaView,
    now: Date,
  ): SvidResponse => {
    const { active } = view;
    const key = describeKey(
      createPublicKey({ key: Buffer.from(csr.subjectPublicKeyInfo), format: 'der', type: 'spki' }),
    );
    const template = buildSvidTemplate({
      identity,
      key,
      subjectPublicKeyInfo: csr.subjectPublicKeyInfo,
      issuer: active.fields,
      signatureAlgorithm: active.signatureAlgorithm,
      serial: randomSerial(),
      now,
      ttlMs: options.svidTtlMs,
    });
    return {
      spiffeId: identity.spiffeId,
      certificateChain: signLeaf(active, template),
      trustBundle: view.bundlePem,
      notAfter: template.notAfter.toISOString(),
    };
  };

  return {
    async issue(token, csrPem) {
      const view = deps.ca();
      if (view === undefined) return unavailable('the CA is not loaded yet');
      const invalid = caValidityProblem(view.active.fields, deps.now());
      if (invalid !== undefined) return unavailable(invalid);
      if (token === '') return refused(401, 'no bearer token');
      const csr = checkCsr(csrPem);
      if (isRefusal(csr)) return { ok: false, refusal: csr };
      let identity: WorkloadIdentity | Refusal;
      try {
        identity = await authorize(token);
      } catch (error) {
        return unavailable(`cannot check the token with the Kubernetes API: ${reasonOf(error)}`);
      }
      if (isRefusal(identity)) return { ok: false, refusal: identity };
      const now = deps.now();
      const retryAfterMs = limited(identity.spiffeId, now.getTime());
      if (retryAfterMs !== undefined) {
        return {
          ...(refused(429, `rate limit for ${identity.spiffeId}`) as {
            ok: false;
            refusal: Refusal;
          }),
          retryAfterMs,
        };
      }
      const names = checkRequestedNames(csr, identity);
      if (names !== undefined) return { ok: false, refusal: names };
      // The CA in force is read again at the moment of signing: the token review took time.
      const signing = deps.ca() ?? view;
      const expired = caValidityProblem(signing.active.fields, now);
      if (expired !== undefined) return unavailable(expired);
      try {
        return { ok: true, response: sign(identity, csr, signing, now) };
      } catch (error) {
        if (error instanceof AuthorityError) return unavailable(error.message);
        throw error;
      }
    },
  };
}
