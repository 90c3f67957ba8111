/**
 * A token bucket (pure; the caller passes the time): `rate` events per second on average,
 * bursts of up to `burst`. It also counts strikes — refusals in a row — so a socket that keeps
 * flooding after being told can be closed.
 *
 *     const bucket = createBucket(200)
 *     take(bucket, performance.now(), { rate: 100, burst: 200 }) // → true
 */

export interface RateLimit {
  /** Tokens added per second. */
  rate: number;
  /** Bucket size. */
  burst: number;
}

export interface Bucket {
  tokens: number;
  /** Milliseconds (any monotonic clock) of the last refill. */
  at: number;
  /** Refusals since the last accepted event. */
  strikes: number;
}

export function createBucket(burst: number, now = 0): Bucket {
  return { tokens: burst, at: now, strikes: 0 };
}

/** Takes one token if there is one; returns whether the event may proceed. */
export function take(bucket: Bucket, now: number, limit: RateLimit): boolean {
  const elapsed = Math.max(0, now - bucket.at);
  bucket.tokens = Math.min(limit.burst, bucket.tokens + (elapsed * limit.rate) / 1000);
  bucket.at = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    bucket.strikes = 0;
    return true;
  }
  bucket.strikes += 1;
  return false;
}
