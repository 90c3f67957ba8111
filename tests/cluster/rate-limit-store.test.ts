/**
 * Cluster-wide limits: two app instances (two stores, two Redis connections, as two processes
 * would have) share one count in the shared Redis; without REDIS_URL counting stays in memory.
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { createLimiterStore } from "../../lib/http/rate-limit-store.ts";
import { WindowCounter } from "../../lib/http/window-counter.ts";
import { cleanupPrefix, SHARED_REDIS_URL, uniquePrefix } from "./redis-server.ts";
import { startRedisServer, type OwnedRedis } from "../helpers/processes.ts";

const keyPrefix = uniquePrefix("rl");
const policy = { name: "api", points: 5, windowSeconds: 60 };
let owned: OwnedRedis | undefined;

test.after.always(async () => {
  await cleanupPrefix(SHARED_REDIS_URL, `${keyPrefix}:*`);
  await owned?.kill();
});

test("without REDIS_URL each store counts in its own memory, synchronously", async (t) => {
  const [first, second] = [
    await createLimiterStore({ redisUrl: undefined }),
    await createLimiterStore({ redisUrl: undefined }),
  ];
  const [a, b] = [first(policy), second(policy)];
  t.true(a instanceof WindowCounter);
  t.is(a.consumeNow?.("k").consumedPoints, 1);
  t.is((await a.consume("k")).consumedPoints, 2);
  t.is((await b.consume("k")).consumedPoints, 1, "another store (another process) counts apart");
  t.true(b.consumeNow !== undefined);
  await Promise.all([first.close(), second.close()]);
});

test("with REDIS_URL two app instances share the count", async (t) => {
  const first = await createLimiterStore({ redisUrl: SHARED_REDIS_URL }, { keyPrefix });
  const second = await createLimiterStore({ redisUrl: SHARED_REDIS_URL }, { keyPrefix });
  try {
    const [a, b] = [first(policy), second(policy)];
    t.true(a instanceof RateLimiterRedis);
    t.is(a.consumeNow, undefined, "no synchronous path: Redis is asked every time");
    const key = randomBytes(8).toString("hex");
    // Each store's connection is ready when it is returned: no command races it into the insurance limiter.
    const consumed: number[] = [];
    for (let i = 0; i < 5; i++) consumed.push((await (i % 2 === 0 ? a : b).consume(key)).consumedPoints);
    t.deepEqual(consumed, [1, 2, 3, 4, 5]);
    const rejection = await b.consume(key).catch((e: unknown) => e);
    t.true(rejection instanceof RateLimiterRes);
    t.is((rejection as RateLimiterRes).remainingPoints, 0);
    t.is((await a.get(key))?.consumedPoints, 6);
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

test("while Redis is away a node counts in memory instead of failing requests, and still refuses past the limit", async (t) => {
  owned = await startRedisServer();
  const store = await createLimiterStore({ redisUrl: owned.url }, { keyPrefix });
  try {
    const limiter = store(policy);
    await owned.kill();
    // limit + 1 at once: the insurance limiter counts them atomically in memory.
    const outcomes = await Promise.all(
      Array.from({ length: policy.points + 1 }, () =>
        limiter.consume("k").then(
          (res) => ({ granted: true, res }),
          (rejection: unknown) => ({ granted: false, res: rejection }),
        ),
      ),
    );
    t.is(outcomes.filter((o) => o.granted).length, policy.points, "the limit's worth is granted");
    const refused = outcomes.filter((o) => !o.granted);
    t.is(refused.length, 1, "the one past the limit is refused");
    t.true(refused[0]!.res instanceof RateLimiterRes, "refused for rate, not failed because Redis is away");
    t.is((refused[0]!.res as RateLimiterRes).remainingPoints, 0);
  } finally {
    await store.close();
  }
});

test("with REDIS_URL a burst spread over two app instances gets exactly the limit through", async (t) => {
  const first = await createLimiterStore({ redisUrl: SHARED_REDIS_URL }, { keyPrefix });
  const second = await createLimiterStore({ redisUrl: SHARED_REDIS_URL }, { keyPrefix });
  try {
    const [a, b] = [first(policy), second(policy)];
    const key = randomBytes(8).toString("hex");
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 === 0 ? a : b).consume(key).then(
          () => true,
          () => false,
        ),
      ),
    );
    t.is(outcomes.filter(Boolean).length, policy.points);
    t.is((await a.get(key))?.consumedPoints, 40, "every attempt was counted in Redis, none in memory");
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});
