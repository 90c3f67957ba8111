/**
 * Where rate-limit counters live: the one place that picks the store. Callers only see a
 * `Limiter` per policy (rate-limiter-flexible's consume, reward, get, delete).
 *
 * - No `REDIS_URL`: this process's memory (one node), a `WindowCounter` per policy
 *   (window-counter.ts): synchronous, so it also offers `consumeNow`, which the request path
 *   uses to count without a promise.
 * - `REDIS_URL` set: `RateLimiterRedis` over one ioredis connection shared by every policy, so a
 *   limit holds cluster-wide (every node counts in the same keys, `<keyPrefix>:<policy>:<key>`).
 *   While Redis is unreachable each node falls back to counting in its own memory (rate-limiter-
 *   flexible's insurance limiter): limits loosen to per-node, requests are never refused or
 *   failed because Redis is away.
 *
 * Built once by createDeps (lib/deps.ts), which closes it in closeDeps; its Redis connection is
 * made by connectRedis like every other (named, URL redacted in errors).
 *
 *     const store = await createLimiterStore(config, { name: config.nodeName })
 *     const limiter = store({ name: "api", points: 600, windowSeconds: 60 })
 *     await limiter.consume(key) // rejects with a RateLimiterRes when the window is spent
 *     await store.close()        // the Redis connection, if any
 */
import { closeRedis, connectRedis } from "../cluster/redis.ts";
import type { RateLimiterRes } from "rate-limiter-flexible";
import type { Config } from "../config.ts";
import type { Telemetry } from "../telemetry/index.ts";
import { WindowCounter } from "./window-counter.ts";

/** At most `points` per `windowSeconds` per key. `name` is the policy name in the RateLimit headers. */
export interface RatePolicy {
  readonly name: string;
  readonly points: number;
  readonly windowSeconds: number;
}

/**
 * One policy's counters. `consume` rejects with the key's `RateLimiterRes` when its window is
 * spent; any other rejection is the store failing.
 */
export interface Limiter {
  consume(key: string, points?: number): Promise<RateLimiterRes>;
  reward(key: string, points?: number): Promise<RateLimiterRes>;
  get(key: string): Promise<RateLimiterRes | null>;
  delete(key: string): Promise<boolean>;
  /**
   * In-process stores only: counts synchronously and returns the state, spent or not (spent when
   * `consumedPoints > policy.points`).
   */
  consumeNow?(key: string): RateLimiterRes;
}

export interface LimiterStore {
  (policy: RatePolicy): Limiter;
  /** Releases the shared store's connection (nothing for memory). */
  close(): Promise<void>;
}

export interface LimiterStoreOptions {
  /** Namespace of the Redis keys (default "hypercast:rl"); tests use one per run. */
  keyPrefix?: string;
  /** This node's name, in the connection's name (`hypercast:rl:<name>`, shown by CLIENT LIST). */
  name?: string;
  /** Redis connection errors (they repeat while Redis is away). */
  onError?: (error: Error) => void;
  /** Traces its commands (lib/cluster/redis.ts). */
  telemetry?: Telemetry;
}

export async function createLimiterStore(
  config: Pick<Config, "redisUrl">,
  options: LimiterStoreOptions = {},
): Promise<LimiterStore> {
  const url = config.redisUrl;
  if (url === undefined) {
    const memory = (policy: RatePolicy): Limiter =>
      new WindowCounter({ points: policy.points, windowSeconds: policy.windowSeconds });
    return Object.assign(memory, { close: async () => {} });
  }

  // Loaded only here: the package's index brings every store it ships (see rate-limiter-res.ts).
  const { RateLimiterMemory, RateLimiterRedis } = await import("rate-limiter-flexible");
  const keyPrefix = options.keyPrefix ?? "hypercast:rl";
  const client = await connectRedis(url, {
    role: "limiter",
    name: `hypercast:rl:${options.name ?? "node"}`,
    ...(options.onError === undefined ? {} : { onError: options.onError }),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
  });
  let closed = false;
  const store = (policy: RatePolicy): Limiter =>
    new RateLimiterRedis({
      storeClient: client,
      keyPrefix: `${keyPrefix}:${policy.name}`,
      points: policy.points,
      duration: policy.windowSeconds,
      rejectIfRedisNotReady: true,
      // rate-limiter-flexible accepts only its own limiters here; same fixed-window semantics.
      insuranceLimiter: new RateLimiterMemory({
        keyPrefix: policy.name,
        points: policy.points,
        duration: policy.windowSeconds,
      }),
    });
  return Object.assign(store, {
    async close() {
      if (closed) return;
      closed = true;
      await closeRedis(client); // bounded: a hung Redis must not hold up a shutdown
    },
  });
}
