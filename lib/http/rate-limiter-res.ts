/**
 * rate-limiter-flexible's `RateLimiterRes` (the state of one key's window) on its own. The package's
 * index loads every store it ships (about 10 MiB of RSS in a process of its own), and a node without
 * `REDIS_URL` uses none of them: the in-process counter only needs this class. It is loaded from the
 * file the index loads it from, so `instanceof` holds for the states the Redis store rejects with too.
 */
import { createRequire } from "node:module";
import type { RateLimiterRes as State } from "rate-limiter-flexible";

export const RateLimiterRes = createRequire(import.meta.url)(
  "rate-limiter-flexible/lib/RateLimiterRes.js",
) as typeof State;
export type RateLimiterRes = State;
