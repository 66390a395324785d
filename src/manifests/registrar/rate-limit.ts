// A token bucket per identity: a burst of requests, then a steady rate. Pure: the caller keeps
// the buckets and passes the time.

export interface Bucket {
  readonly tokens: number;
  readonly updatedMs: number;
}

export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

export function takeToken(
  bucket: Bucket | undefined,
  nowMs: number,
  limit: RateLimit,
): { readonly allowed: boolean; readonly bucket: Bucket; readonly retryAfterMs: number } {
  const elapsed = bucket === undefined ? 0 : Math.max(0, nowMs - bucket.updatedMs);
  const available = Math.min(
    limit.burst,
    (bucket?.tokens ?? limit.burst) + (elapsed / 1000) * limit.perSecond,
  );
  if (available >= 1) {
    return { allowed: true, bucket: { tokens: available - 1, updatedMs: nowMs }, retryAfterMs: 0 };
  }
  return {
    allowed: false,
    bucket: { tokens: available, updatedMs: nowMs },
    retryAfterMs: Math.ceil(((1 - available) / limit.perSecond) * 1000),
  };
}
