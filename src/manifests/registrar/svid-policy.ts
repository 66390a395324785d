// Who may have which SVID, decided from facts the registrar gathered: a TokenReview result, the
// pod the token is bound to, and the request's key and names. Pure: every refusal is data with
// the HTTP status to answer and a reason to log, and nothing here signs or fetches.
import { TOKEN_POD_NAME_EXTRA, TOKEN_POD_UID_EXTRA } from '../constants';
import type { MeshImages } from './mesh-member';
import {
  CONTROL_PLANE_SVID_HOLDERS,
  controlPlaneMembershipProblem,
  sidecarMembershipProblem,
} from './mesh-member';
import type { PodFacts } from './pod-facts';
import type { CertificateFields, CertificateTemplate, KeyUsage, SignatureAlgorithm } from './x509';
import { buildName } from './x509';

/** A request the registrar refuses: the status it answers and why (logged, and sent back). */
export interface Refusal {
  readonly refused: true;
  readonly status: 400 | 401 | 403 | 429 | 503;
  readonly reason: string;
}

const refuse = (status: Refusal['status'], reason: string): Refusal => ({
  refused: true,
  status,
  reason,
});

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === 'object' && value !== null && (value as Refusal).refused === true;
}

/** The status of a TokenReview, as the API server answered it. */
export interface TokenReviewFacts {
  readonly authenticated: boolean;
  readonly username: string;
  readonly extra: Readonly<Record<string, readonly string[]>>;
  readonly audiences: readonly string[];
  readonly error: string;
}

/** The ServiceAccount and pod a valid token speaks for. */
export interface TokenClaim {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
  readonly podUid: string;
}

export type { PodFacts } from './pod-facts';

export interface WorkloadIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly spiffeId: string;
  /** The DNS SAN that encodes the identity, which nginx can check on the client side. */
  readonly dnsName: string;
}

const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([a-z0-9.-]+):([a-z0-9.-]+)$/;

/** The trust domain of a SPIFFE ID (spiffe://<trust domain>/…), or "" when it is none. */
export function trustDomainOf(spiffeId: string): string {
  return /^spiffe:\/\/([^/]+)\//.exec(spiffeId)?.[1] ?? '';
}

export function spiffeIdOf(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export function svidDnsNameOf(namespace: string, serviceAccount: string): string {
  return `${serviceAccount}.${namespace}.svc`;
}

export function identityOf(
  trustDomain: string,
  namespace: string,
  serviceAccount: string,
): WorkloadIdentity {
  return {
    namespace,
    serviceAccount,
    spiffeId: spiffeIdOf(trustDomain, namespace, serviceAccount),
    dnsName: svidDnsNameOf(namespace, serviceAccount),
  };
}

/**
 * What a reviewed token claims: a ServiceAccount bound to a pod. Only pod-bound tokens issued
 * for the registrar's audience are accepted, so a token leaked from elsewhere is useless here.
 */
export function claimOfReview(review: TokenReviewFacts, audience: string): TokenClaim | Refusal {
  if (!review.authenticated) {
    return refuse(401, `token rejected by the API server: ${review.error || 'not authenticated'}`);
  }
  if (!review.audiences.includes(audience)) {
    return refuse(401, `token is not for audience "${audience}"`);
  }
  const match = SERVICE_ACCOUNT_USER.exec(review.username);
  if (match === null) return refuse(401, `"${review.username}" is not a ServiceAccount`);
  const podName = review.extra[TOKEN_POD_NAME_EXTRA]?.[0] ?? '';
  const podUid = review.extra[TOKEN_POD_UID_EXTRA]?.[0] ?? '';
  if (podName === '' || podUid === '') {
    return refuse(401, `token of ${review.username} is not bound to a pod`);
  }
  return { namespace: match[1] ?? '', serviceAccount: match[2] ?? '', podName, podUid };
}

/** What the registrar knows of the mesh when it decides who is a member. */
export interface AuthorizationContext extends MeshImages {
  readonly meshNamespace: string;
  readonly trustDomain: string;
}

/**
 * The identity of the pod a claim is bound to, when that pod still exists as the same object,
 * runs as the claimed ServiceAccount, is not being deleted and belongs to the mesh by its spec:
 * a control-plane component's pod in the mesh namespace, or a pod that runs the mesh's sidecar
 * (see mesh-member.ts). Annotations and labels play no part: any pod author can write them.
 */
export function authorizeWorkload(
  claim: TokenClaim,
  pod: PodFacts | undefined,
  context: AuthorizationContext,
): WorkloadIdentity | Refusal {
  const where = `pod ${claim.namespace}/${claim.podName}`;
  if (pod === undefined) return refuse(403, `${where} does not exist`);
  if (pod.uid !== claim.podUid) {
    return refuse(403, `${where} has uid ${pod.uid}, the token is bound to ${claim.podUid}`);
  }
  if (pod.namespace !== claim.namespace || pod.name !== claim.podName) {
    return refuse(403, `${where} does not match the token's pod`);
  }
  if (pod.serviceAccountName !== claim.serviceAccount) {
    return refuse(
      403,
      `${where} runs as ServiceAccount "${pod.serviceAccountName}", the token is for "${claim.serviceAccount}"`,
    );
  }
  if (pod.deleting) return refuse(403, `${where} is being deleted`);
  const controlPlane =
    pod.namespace === context.meshNamespace &&
    CONTROL_PLANE_SVID_HOLDERS.has(pod.serviceAccountName);
  const problem = controlPlane
    ? controlPlaneMembershipProblem(pod, context)
    : sidecarMembershipProblem(pod, context);
  if (problem !== undefined) return refuse(403, `${where} is not in the mesh: ${problem}`);
  return identityOf(context.trustDomain, claim.namespace, claim.serviceAccount);
}

/** The key a request certifies, as node:crypto describes it. */
export type RequestedKey =
  | { readonly type: 'ec'; readonly curve: string }
  | { readonly type: 'rsa'; readonly modulusBits: number }
  | { readonly type: 'other'; readonly name: string };

const ACCEPTED_CURVES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  'P-256': 'P-256',
  secp384r1: 'P-384',
  'P-384': 'P-384',
};
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

/** undefined when the key is strong enough and of a kind nginx and every peer can use. */
export function checkRequestedKey(key: RequestedKey): Refusal | undefined {
  switch (key.type) {
    case 'ec':
      return ACCEPTED_CURVES[key.curve] === undefined
        ? refuse(400, `EC curve ${key.curve} is not accepted: use P-256 or P-384`)
        : undefined;
    case 'rsa':
      return key.modulusBits < MIN_RSA_BITS || key.modulusBits > MAX_RSA_BITS
        ? refuse(
            400,
            `RSA key of ${key.modulusBits} bits is not accepted: use ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`,
          )
        : undefined;
    case 'other':
      return refuse(400, `key type ${key.name} is not accepted: use EC (P-256, P-384) or RSA`);
  }
}

/**
 * A request may leave its names out (the registrar fills them in) or ask for exactly the
 * identity's own; any other name is a request for someone else's identity.
 */
export function checkRequestedNames(
  requested: {
    readonly uris: readonly string[];
    readonly dnsNames: readonly string[];
    readonly otherNames: number;
  },
  identity: WorkloadIdentity,
): Refusal | undefined {
  const foreignUri = requested.uris.find((uri) => uri !== identity.spiffeId);
  if (foreignUri !== undefined) {
    return refuse(403, `request asks for ${foreignUri}, the token is for ${identity.spiffeId}`);
  }
  const foreignDns = requested.dnsNames.find((name) => name !== identity.dnsName);
  if (foreignDns !== undefined) {
    return refuse(
      403,
      `request asks for DNS name ${foreignDns}, the token is for ${identity.dnsName}`,
    );
  }
  if (requested.otherNames > 0) {
    return refuse(
      400,
      'request asks for IP or e-mail names: SVIDs carry only the SPIFFE ID and its DNS name',
    );
  }
  return undefined;
}

/** Key usages of a leaf: signatures, plus key agreement (EC) or key transport (RSA). */
export function leafKeyUsages(key: RequestedKey): KeyUsage[] {
  return key.type === 'rsa'
    ? ['digitalSignature', 'keyEncipherment']
    : ['digitalSignature', 'keyAgreement'];
}

/** Leaves are dated back this much, so that peers whose clocks lag accept them at once. */
export const BACKDATE_MS = 60_000;

export interface SvidInput {
  readonly identity: WorkloadIdentity;
  readonly key: RequestedKey;
  readonly subjectPublicKeyInfo: Uint8Array;
  /** The signing CA's certificate fields and its signature algorithm. */
  readonly issuer: CertificateFields;
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly serial: Uint8Array;
  readonly now: Date;
  readonly ttlMs: number;
  /** DNS names besides the identity's own (the registrar's Service names on its own certificate). */
  readonly extraDnsNames?: readonly string[];
}

/** The X.509-SVID for an identity: never valid beyond its issuer, nor before it. */
export function buildSvidTemplate(input: SvidInput): CertificateTemplate {
  const { identity, issuer } = input;
  const notBefore = new Date(
    Math.max(input.now.getTime() - BACKDATE_MS, issuer.notBefore.getTime()),
  );
  const notAfter = new Date(Math.min(input.now.getTime() + input.ttlMs, issuer.notAfter.getTime()));
  return {
    serial: input.serial,
    signatureAlgorithm: input.signatureAlgorithm,
    issuer: issuer.subject,
    subject: buildName({ commonName: identity.dnsName }),
    notBefore,
    notAfter,
    subjectPublicKeyInfo: input.subjectPublicKeyInfo,
    basicConstraints: { ca: false },
    keyUsages: leafKeyUsages(input.key),
    extendedKeyUsages: ['serverAuth', 'clientAuth'],
    uris: [identity.spiffeId],
    dnsNames: [identity.dnsName, ...(input.extraDnsNames ?? [])],
    ...(issuer.subjectKeyId === undefined ? {} : { authorityKeyId: issuer.subjectKeyId }),
  };
}

/** A CA lives at least this many leaf lifetimes, so a new root reaches every workload in time. */
export const CA_TTL_MIN_SVID_MULTIPLE = 6;

/** The problem with a pair of TTLs, or undefined: a CA must outlive several leaves. */
export function checkTtls(caTtlMs: number, svidTtlMs: number): string | undefined {
  if (svidTtlMs <= 0) return 'invalid --svid-ttl: must be positive';
  if (caTtlMs < CA_TTL_MIN_SVID_MULTIPLE * svidTtlMs) {
    return 'invalid --ca-ttl: must be at least 6 times --svid-ttl, so that a new root reaches every workload before it signs';
  }
  return undefined;
}
