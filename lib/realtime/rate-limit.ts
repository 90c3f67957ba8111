/**
 * Rate limits of one socket (pure; the caller passes the time):
 *
 * - a token bucket: `rate` events per second on average, bursts of up to `burst`;
 * - a refusal window: how many events were refused in the last `windowMs`, exactly, so a socket
 *   that keeps flooding after being told (more than `limit` refusals in the window) is closed.
 *
 *     const bucket = createBucket(200)
 *     take(bucket, performance.now(), { rate: 100, burst: 200 }) // → true
 *     const refusals = createRefusalWindow({ limit: 200, windowMs: 10_000 })
 *     refuse(refusals, performance.now()) // → false until the 201st refusal within 10 s
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
}

export function createBucket(burst: number, now = 0): Bucket {
  return { tokens: burst, at: now };
}

/** Takes one token if there is one; returns whether the event may proceed. */
export function take(bucket: Bucket, now: number, limit: RateLimit): boolean {
  const elapsed = Math.max(0, now - bucket.at);
  bucket.tokens = Math.min(limit.burst, bucket.tokens + (elapsed * limit.rate) / 1000);
  bucket.at = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return true;
  }
  return false;
}

export interface FloodLimit {
  /** Refusals allowed within the window; one more closes the socket. */
  limit: number;
  windowMs: number;
}

export interface RefusalWindow {
  readonly flood: FloodLimit;
  /** The times of the last `limit` refusals, a ring; allocated at the first refusal (most sockets never get one). */
  times: Float64Array | undefined;
  next: number;
  count: number;
}

export function createRefusalWindow(flood: FloodLimit): RefusalWindow {
  return { flood, times: undefined, next: 0, count: 0 };
}

/** Records a refusal at `now`; true when it is one more than `limit` within `windowMs` (a flood). */
export function refuse(window: RefusalWindow, now: number): boolean {
  const { limit, windowMs } = window.flood;
  if (limit <= 0) return true;
  const times = (window.times ??= new Float64Array(limit));
  // The slot we overwrite holds the refusal `limit` refusals ago: within the window, this is a flood.
  const flooding = window.count >= limit && now - times[window.next]! <= windowMs;
  times[window.next] = now;
  window.next = (window.next + 1) % limit;
  window.count = Math.min(window.count + 1, limit);
  return flooding;
}
