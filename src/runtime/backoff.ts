// Bounded exponential backoff with "equal jitter": the wait doubles with every failure up to a
// cap, and its upper half is random, so that many clients failing together do not retry together.
// Shared by every retry loop (SVID requests, Kubernetes watches, the agent's resync on NATS).

/**
 * The wait before retry number `failures` (0 = the first retry): initialMs doubled per earlier
 * failure, capped at maxMs, of which the upper half is scaled by random (a number in [0, 1)).
 */
export function jitteredBackoffMs(
  failures: number,
  random: number,
  initialMs: number,
  maxMs: number,
): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(failures, 0), 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
