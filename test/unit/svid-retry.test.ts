// How the SVID client waits between failed requests, and what it reports while it has no valid
// SVID: jittered backoff from the first failure, at least four tries before a valid SVID expires,
// a bounded cadence (never a tight loop) once it has expired, and a readiness that names the
// expiry and the registrar's error.
import {
  BACKOFF_WITHOUT_SVID_MAX_MS,
  MIN_RETRY_MS,
  retryWaitMs,
} from '../../src/runtime/svid/schedule';
import { svidReadiness } from '../../src/runtime/svid/identity';
import type { SvidStatus } from '../../src/runtime/svid/svid-client';

describe('retryWaitMs', () => {
  it('backs off with jitter from the first failure before any SVID arrived', () => {
    expect(retryWaitMs(1, 0, undefined, 0)).toBe(200);
    expect(retryWaitMs(1, 0.999, undefined, 0)).toBe(400);
    expect(retryWaitMs(2, 0, undefined, 0)).toBe(400);
    expect(retryWaitMs(40, 0, undefined, 0)).toBe(BACKOFF_WITHOUT_SVID_MAX_MS / 2);
    expect(retryWaitMs(40, 0.999, undefined, 0)).toBe(4_998);
    expect(BACKOFF_WITHOUT_SVID_MAX_MS).toBe(5_000);
  });

  it('keeps backing off after the SVID expired instead of retrying in a tight loop', () => {
    const waits = [1, 2, 3, 4, 5, 6, 20].map((attempt) => retryWaitMs(attempt, 0.5, -60_000, 0));
    expect(waits).toEqual([300, 600, 1200, 2400, 3750, 3750, 3750]);
    for (const wait of waits) expect(wait).toBeGreaterThan(MIN_RETRY_MS);
  });

  it('honours the registrar Retry-After once the SVID expired', () => {
    expect(retryWaitMs(1, 0, -1, 20_000)).toBe(20_000);
  });

  it('retries at least four more times before a valid SVID expires, jittered', () => {
    // 8 s left: at most 2 s, whatever the backoff or the registrar's hint says.
    expect(retryWaitMs(10, 0.999, 8_000, 60_000)).toBeLessThanOrEqual(2_000);
    expect(retryWaitMs(10, 0, 8_000, 0)).toBe(1_000);
    // Close to expiry the wait shrinks, but never below the floor.
    expect(retryWaitMs(10, 0, 100, 0)).toBe(MIN_RETRY_MS);
    // Far from expiry the ordinary backoff applies.
    expect(retryWaitMs(1, 0, 3_600_000, 0)).toBe(250);
  });
});

describe('svidReadiness', () => {
  const svid: SvidStatus = {
    spiffeId: 'spiffe://example.org/ns/shop/sa/web',
    notBefore: new Date('2026-01-01T00:00:00.000Z'),
    notAfter: new Date('2026-01-01T01:00:00.000Z'),
  };
  const refused = 'registrar unreachable: connect ECONNREFUSED 198.18.0.12:8443';

  it('is ready while the SVID is valid, even when its renewal fails', () => {
    const client = { current: () => svid, lastError: () => refused };
    expect(svidReadiness(client, new Date('2026-01-01T00:59:59.000Z'))).toEqual({ ready: true });
  });

  it('names the expiry and the registrar error once the SVID expired', () => {
    const client = { current: () => svid, lastError: () => refused };
    expect(svidReadiness(client, new Date('2026-01-01T01:00:00.000Z'))).toEqual({
      ready: false,
      reason:
        'SVID expired at 2026-01-01T01:00:00.000Z; registrar unreachable: connect ECONNREFUSED 198.18.0.12:8443',
    });
  });

  it('is not ready before the first SVID, saying why', () => {
    const waiting = { current: () => undefined, lastError: () => undefined };
    expect(svidReadiness(waiting, new Date())).toEqual({
      ready: false,
      reason: 'no SVID yet; waiting for the registrar',
    });
    const failing = { current: () => undefined, lastError: () => refused };
    expect(svidReadiness(failing, new Date())).toEqual({
      ready: false,
      reason: `no SVID yet; ${refused}`,
    });
  });
});
