// Issuing an X.509-SVID for one request. What costs nothing comes first: the client address's
// rate limit, then the CSR (garbage spares the API server work); only then, within a cap on
// concurrent reviews, the token through the TokenReview API and the pod it is bound to; then the
// per-identity rate limit and the names asked for; only then is a leaf signed. Every
// refusal is logged with its reason and answered without a certificate. A CA that is not valid
// now (expired, or not valid yet by this process's clock) signs nothing: every request gets 503
// with the CA's validity window until a valid CA is in force.
import { createPublicKey, verify } from 'node:crypto';
import { IDENTITY_TOKEN_AUDIENCE } from '../../manifests/constants';
import { DerError } from '../../manifests/registrar/der';
import { fromPem } from '../../manifests/registrar/pem';
import type { RateLimit } from '../../manifests/registrar/rate-limit';
import type {
  AuthorizationContext,
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
import { createBucketLimiter } from './limiter';
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

export interface IssuerOptions extends AuthorizationContext {
  readonly svidTtlMs: number;
  /** Per identity, after authentication. */
  readonly rateLimit: RateLimit;
  /**
   * Per client address, before anything else: a flood from one address is refused without a
   * single API call. Pods have addresses of their own, so one pod's retries slow only itself.
   */
  readonly clientRateLimit: RateLimit;
  /** TokenReviews (with their pod lookups) in flight at most; beyond it, 429 at once. */
  readonly maxReviewsInFlight: number;
  /** Buckets kept at most, per limit; beyond it, the least recently used one is dropped. */
  readonly maxBuckets: number;
}

export interface CaView {
  readonly active: Authority;
  readonly bundlePem: string;
}

const MAX_CSR_BYTES = 16 * 1024;
/** Retry-After of a 503: the CA or the API server may be back by then. */
export const UNAVAILABLE_RETRY_AFTER_MS = 5000;
/** Retry-After when every review slot is taken: reviews take milliseconds to a second. */
export const BUSY_RETRY_AFTER_MS = 1000;

function refused(status: Refusal['status'], reason: string): IssueOutcome {
  return { ok: false, refusal: { refused: true, status, reason } };
}

function tooMany(reason: string, retryAfterMs: number): IssueOutcome {
  return { ok: false, refusal: { refused: true, status: 429, reason }, retryAfterMs };
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

export interface SvidRequest {
  /** The bearer token ("" when none was sent). */
  readonly token: string;
  readonly csrPem: string;
  /** The address the request came from (the TCP peer). */
  readonly client: string;
}

export interface Issuer {
  issue(request: SvidRequest): Promise<IssueOutcome>;
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
  const perIdentity = createBucketLimiter(options.rateLimit, options.maxBuckets);
  const perClient = createBucketLimiter(options.clientRateLimit, options.maxBuckets);
  let reviewsInFlight = 0;

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
    async issue({ token, csrPem, client }) {
      const clientWait = perClient.take(client, deps.now().getTime());
      if (clientWait !== undefined) return tooMany(`rate limit for client ${client}`, clientWait);
      const view = deps.ca();
      if (view === undefined) return unavailable('the CA is not loaded yet');
      const invalid = caValidityProblem(view.active.fields, deps.now());
      if (invalid !== undefined) return unavailable(invalid);
      if (token === '') return refused(401, 'no bearer token');
      const csr = checkCsr(csrPem);
      if (isRefusal(csr)) return { ok: false, refusal: csr };
      if (reviewsInFlight >= options.maxReviewsInFlight) {
        return tooMany(
          `${options.maxReviewsInFlight} token reviews in flight already`,
          BUSY_RETRY_AFTER_MS,
        );
      }
      let identity: WorkloadIdentity | Refusal;
      reviewsInFlight += 1;
      try {
        identity = await authorize(token);
      } catch (error) {
        return unavailable(`cannot check the token with the Kubernetes API: ${reasonOf(error)}`);
      } finally {
        reviewsInFlight -= 1;
      }
      if (isRefusal(identity)) return { ok: false, refusal: identity };
      const now = deps.now();
      const identityWait = perIdentity.take(identity.spiffeId, now.getTime());
      if (identityWait !== undefined) {
        return tooMany(`rate limit for ${identity.spiffeId}`, identityWait);
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
