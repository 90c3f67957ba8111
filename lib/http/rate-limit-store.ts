/**
 * Where rate-limit counters live: the one place that picks the store. Today every limiter counts
 * in this process's memory (one node); the cluster issue swaps in `RateLimiterRedis` over the
 * shared Redis here, and nothing else changes — callers only see rate-limiter-flexible's
 * `RateLimiterAbstract` (consume, get, penalty, delete).
 *
 *     const limiter = createLimiterStore(config)({ name: "api", points: 600, windowSeconds: 60 })
 *     await limiter.consume(key) // rejects with a RateLimiterRes when the window is spent
 */
import { RateLimiterMemory, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { Config } from "../config.ts";

/** At most `points` per `windowSeconds` per key. `name` is the policy name in the RateLimit headers. */
export interface RatePolicy {
  readonly name: string;
  readonly points: number;
  readonly windowSeconds: number;
}

export type LimiterStore = (policy: RatePolicy) => RateLimiterAbstract;

export function createLimiterStore(_config: Pick<Config, "redisUrl">): LimiterStore {
  return (policy) => new RateLimiterMemory({ keyPrefix: policy.name, points: policy.points, duration: policy.windowSeconds });
}
