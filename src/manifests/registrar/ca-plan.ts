// When the registrar's CA rotates, decided from the authorities' validity alone, so that every
// replica, before and after a restart, reaches the same answer. An authority is prepared at
// half its life and published in the trust bundle beside the current one; it signs only after
// it has been published for a sixth of the current one's life (at least one SVID TTL, see
// checkTtls), so every workload has renewed against the new bundle before a leaf from the new
// authority can reach it. Expired authorities leave the bundle. Pure.

export interface AuthorityValidity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface AuthorityPlan {
  /** Indices of the authorities still valid, oldest first: kept and published. */
  readonly live: readonly number[];
  /** Index of the authority that signs now; undefined when none is valid. */
  readonly active: number | undefined;
  /** A new authority must be created (none is valid, or the newest is half-way through). */
  readonly needNext: boolean;
}

const life = (a: AuthorityValidity): number => a.notAfter.getTime() - a.notBefore.getTime();

export function prepareTime(a: AuthorityValidity): number {
  return a.notBefore.getTime() + life(a) / 2;
}

/** A sixth of the life: how long a successor is published before it may sign. */
export function overlapMs(a: AuthorityValidity): number {
  return life(a) / 6;
}

export function planAuthorities(
  authorities: readonly AuthorityValidity[],
  now: Date,
): AuthorityPlan {
  const at = now.getTime();
  const live = authorities
    .map((authority, index) => ({ authority, index }))
    .filter(
      ({ authority }) => authority.notAfter.getTime() > at && authority.notBefore.getTime() <= at,
    );
  const first = live[0];
  if (first === undefined) return { live: [], active: undefined, needNext: true };
  let active = first;
  for (const next of live.slice(1)) {
    const handover = Math.max(
      prepareTime(active.authority) + overlapMs(active.authority),
      next.authority.notBefore.getTime() + overlapMs(active.authority),
    );
    if (at >= handover) active = next;
  }
  const newest = live[live.length - 1] ?? first;
  return {
    live: live.map(({ index }) => index),
    active: active.index,
    needNext: at >= prepareTime(newest.authority),
  };
}

/** The next moment the plan can change: the registrar re-plans no later than this. */
export function nextPlanChange(authorities: readonly AuthorityValidity[], now: Date): number {
  const at = now.getTime();
  const moments = authorities.flatMap((a) => [
    prepareTime(a),
    prepareTime(a) + overlapMs(a),
    a.notBefore.getTime() + overlapMs(a),
    a.notAfter.getTime(),
  ]);
  const future = moments.filter((moment) => moment > at);
  return future.length === 0 ? at : Math.min(...future);
}
