// When the SVID client acts: renewal at half the certificate's life, brought forward by up to a
// tenth of it at random so that a fleet started together does not renew together; and bounded
// exponential backoff while the registrar cannot be reached. random is a number in [0, 1).
// The life counts from when the certificate arrived, not from its notBefore: the registrar dates
// leaves back a minute for lagging clocks, and with second-scale TTLs a life counted from
// notBefore would be half over on arrival, so the client would renew without pause.

import { jitteredBackoffMs } from '../backoff';

/** Share of the lifetime by which renewal may come before the half-life. */
const JITTER_SHARE = 0.1;
export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
/**
 * The cap while the workload has no valid SVID (none yet, or expired): its mTLS is down until
 * the registrar answers, so it asks often enough to recover within seconds of the registrar's
 * return, yet jittered and no faster than this, so that a fleet does not flood the registrar.
 */
export const BACKOFF_WITHOUT_SVID_MAX_MS = 5_000;
/** The first wait once without a valid SVID (its upper half is jittered), doubling from there. */
export const BACKOFF_WITHOUT_SVID_FIRST_MS = 400;
/** The shortest wait between two requests, however close expiry is. */
export const MIN_RETRY_MS = 200;

/** When a certificate's life starts for this client: on arrival, unless notBefore is later. */
function lifeStart(notBefore: number, receivedAt: number): number {
  return Math.max(notBefore, receivedAt);
}

/**
 * When to renew a certificate valid from notBefore to notAfter and received at receivedAt (ms
 * since the epoch).
 */
export function renewalTime(
  notBefore: number,
  notAfter: number,
  receivedAt: number,
  random: number,
): number {
  const start = lifeStart(notBefore, receivedAt);
  return start + (notAfter - start) * (0.5 - JITTER_SHARE * random);
}

/** Wait before retry number attempt (1, 2, …): doubling from BACKOFF_FIRST_MS, capped, jittered. */
export function backoffMs(attempt: number, random: number): number {
  return jitteredBackoffMs(attempt - 1, random, BACKOFF_FIRST_MS, BACKOFF_MAX_MS);
}

/**
 * Wait before retry number attempt (1, 2, …) after a failed request. remainingMs is how long the
 * SVID in use stays valid (undefined without one); hintedMs the registrar's Retry-After (0 when
 * it gave none). While the SVID is valid the client retries at least four more times before it
 * expires; once it has expired, or before the first, attempt counts the failures since then and
 * the wait doubles from BACKOFF_WITHOUT_SVID_FIRST_MS to BACKOFF_WITHOUT_SVID_MAX_MS.
 * Every wait is jittered, so that clients that failed together do not retry together.
 */
export function retryWaitMs(
  attempt: number,
  random: number,
  remainingMs: number | undefined,
  hintedMs: number,
): number {
  if (remainingMs === undefined || remainingMs <= 0) {
    const backoff = jitteredBackoffMs(
      attempt - 1,
      random,
      BACKOFF_WITHOUT_SVID_FIRST_MS,
      BACKOFF_WITHOUT_SVID_MAX_MS,
    );
    return Math.max(backoff, hintedMs);
  }
  const wait = Math.max(backoffMs(attempt, random), hintedMs);
  const beforeExpiry = Math.max(MIN_RETRY_MS, (remainingMs / 4) * (0.5 + 0.5 * random));
  return Math.round(Math.min(wait, beforeExpiry));
}

/** How loudly to talk about a certificate: warn past three quarters of its life, error once expired. */
export function expiryConcern(
  notBefore: number,
  notAfter: number,
  receivedAt: number,
  now: number,
): 'none' | 'expiring' | 'expired' {
  if (now >= notAfter) return 'expired';
  const start = lifeStart(notBefore, receivedAt);
  return now >= start + (notAfter - start) * 0.75 ? 'expiring' : 'none';
}
