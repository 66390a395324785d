// When a managed serving certificate is renewed, when it is checked next, and whether the role
// serving with it may call itself ready. Pure: time arrives as a parameter.
import type { Readiness } from '../role/role';

/** What renewal needs to know of a certificate. */
export interface CertificateFacts {
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
}

/** Share of a certificate's lifetime after which it is renewed. */
export const DEFAULT_RENEW_AT_SHARE = 2 / 3;
/**
 * Share of the lifetime, at its end, in which a certificate whose renewal fails makes the role
 * unready: by then renewal has been failing for a long time.
 */
export const EXPIRING_SHARE = 0.1;

/** How a stored certificate compares with what the service needs. */
export type CertificateState = 'fresh' | 'due' | 'expired' | 'wrong-names';

/** The instant (ms since the epoch) from which the certificate is due for renewal. */
export function renewalDueAt(facts: CertificateFacts, renewAtShare: number): number {
  const start = facts.notBefore.getTime();
  return start + (facts.notAfter.getTime() - start) * renewAtShare;
}

/** Whether a certificate may keep serving the wanted names at now, or must be replaced. */
export function assessCertificate(
  facts: CertificateFacts,
  wantedNames: readonly string[],
  now: Date,
  renewAtShare: number,
): CertificateState {
  if (!wantedNames.every((name) => facts.dnsNames.includes(name))) return 'wrong-names';
  if (now.getTime() >= facts.notAfter.getTime()) return 'expired';
  if (now.getTime() >= renewalDueAt(facts, renewAtShare)) return 'due';
  return 'fresh';
}

/**
 * Milliseconds until the next check: the periodic interval, brought forward to when the
 * certificate falls due or a waiting certificate may be served, but never below minDelayMs.
 */
export function nextCheckDelayMs(input: {
  readonly now: Date;
  readonly dueAt: number;
  /** When a certificate waiting for its CA to be trusted may be served. */
  readonly serveAt: number | undefined;
  readonly intervalMs: number;
  readonly minDelayMs: number;
}): number {
  const now = input.now.getTime();
  const soonest = Math.min(now + input.intervalMs, input.dueAt, input.serveAt ?? Infinity);
  return Math.max(input.minDelayMs, soonest - now);
}

/** The PEM certificates of a bundle, each with its trailing newline, in order. */
export function splitPemCertificates(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => `${pem}\n`,
  );
}

/**
 * The CA bundle to trust after a renewal: the new CA first, then earlier CAs that are still
 * valid (their certificates may still be served by replicas that have not switched yet), at
 * most maxCas in all.
 */
export function buildCaBundle(
  newCaPem: string,
  earlier: readonly { readonly pem: string; readonly notAfter: Date }[],
  now: Date,
  maxCas: number,
): string {
  const kept = earlier
    .filter((ca) => ca.notAfter.getTime() > now.getTime() && ca.pem.trim() !== newCaPem.trim())
    .map((ca) => ca.pem);
  return [newCaPem, ...kept].slice(0, Math.max(1, maxCas)).join('');
}

export interface ServingState {
  /** Where the certificate is kept, for messages ("Secret nginx-mesh/nginx-mesh-webhook-tls"). */
  readonly source: string;
  /** The certificate being served; undefined before the first one. */
  readonly serving: CertificateFacts | undefined;
  /** The latest attempt's error, while attempts keep failing. */
  readonly failure: string | undefined;
  readonly expiringShare: number;
}

/**
 * Ready while serving a certificate that is neither expired nor, with renewal failing, in the
 * last expiringShare of its life.
 */
export function servingReadiness(state: ServingState, now: Date): Readiness {
  const { serving, failure } = state;
  if (serving === undefined) {
    return failure === undefined
      ? { ready: false, reason: `waiting for the serving certificate in ${state.source}` }
      : { ready: false, reason: `waiting for the Kubernetes API: ${failure}` };
  }
  const notAfter = serving.notAfter.getTime();
  const failing = failure === undefined ? '' : `; renewing it fails: ${failure}`;
  if (now.getTime() >= notAfter) {
    return {
      ready: false,
      reason: `the serving certificate from ${state.source} expired at ${serving.notAfter.toISOString()}${failing}`,
    };
  }
  const lifetime = notAfter - serving.notBefore.getTime();
  if (failure !== undefined && now.getTime() >= notAfter - lifetime * state.expiringShare) {
    return {
      ready: false,
      reason: `the serving certificate from ${state.source} expires at ${serving.notAfter.toISOString()}${failing}`,
    };
  }
  return { ready: true };
}
