// When the SVID client acts: renewal at half the certificate's life, brought forward by up to a
// tenth of it at random so that a fleet started together does not renew together; and bounded
// exponential backoff while the registrar cannot be reached. random is a number in [0, 1).

import { jitteredBackoffMs } from '../backoff';

/** Share of the lifetime by which renewal may come before the half-life. */
const JITTER_SHARE = 0.1;
export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 30_000;

/** When to renew a certificate valid from notBefore to notAfter (ms since the epoch). */
export function renewalTime(notBefore: number, notAfter: number, random: number): number {
  const life = notAfter - notBefore;
  return notBefore + life * (0.5 - JITTER_SHARE * random);
}

/** Wait before retry number attempt (1, 2, …): doubling from BACKOFF_FIRST_MS, capped, jittered. */
export function backoffMs(attempt: number, random: number): number {
  return jitteredBackoffMs(attempt - 1, random, BACKOFF_FIRST_MS, BACKOFF_MAX_MS);
}

/** How loudly to talk about a certificate: warn past three quarters of its life, error once expired. */
export function expiryConcern(
  notBefore: number,
  notAfter: number,
  now: number,
): 'none' | 'expiring' | 'expired' {
  if (now >= notAfter) return 'expired';
  return now >= notBefore + (notAfter - notBefore) * 0.75 ? 'expiring' : 'none';
}
