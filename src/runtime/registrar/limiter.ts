// Rate limits kept in memory: token buckets by key (a client address, an identity), at most
// maxBuckets of them, so that a flood of distinct keys cannot grow the registrar without bound.
import type { Bucket, RateLimit } from '../../manifests/registrar/rate-limit';
import { takeToken } from '../../manifests/registrar/rate-limit';

export interface BucketLimiter {
  /** Takes a token for key: undefined when allowed, else the milliseconds to wait. */
  take(key: string, nowMs: number): number | undefined;
  /** Buckets kept now (never more than maxBuckets). */
  size(): number;
}

/**
 * The map keeps buckets in order of last use; beyond maxBuckets the least recently used one is
 * dropped, in constant time, so a flood of new keys costs no scan. A dropped key starts again
 * with a full bucket, which only ever lets more through, never less.
 */
export function createBucketLimiter(limit: RateLimit, maxBuckets: number): BucketLimiter {
  const buckets = new Map<string, Bucket>();
  return {
    take(key, nowMs) {
      const result = takeToken(buckets.get(key), nowMs, limit);
      buckets.delete(key);
      buckets.set(key, result.bucket);
      if (buckets.size > maxBuckets) {
        const oldest = buckets.keys().next();
        if (oldest.done !== true) buckets.delete(oldest.value);
      }
      return result.allowed ? undefined : result.retryAfterMs;
    },
    size: () => buckets.size,
  };
}
