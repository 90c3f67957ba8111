/**
 * The in-process rate-limit store: a fixed window per key with RateLimiterMemory's semantics
 * (the request-level behaviour is in rate-limit.test.ts), on a clock the test moves.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import { RateLimiterRes as OurRateLimiterRes } from "../../lib/http/rate-limiter-res.ts";
import { WindowCounter } from "../../lib/http/window-counter.ts";

function counter(points = 3, windowSeconds = 10) {
  const clock = { now: 1_000_000 };
  return { clock, counter: new WindowCounter({ points, windowSeconds, now: () => clock.now }) };
}

test("a window opens at the first consume, counts every consume in it, refusals too, and ends after windowSeconds", (t) => {
  const { clock, counter: c } = counter();
  const first = c.consumeNow("k");
  t.like(first, { consumedPoints: 1, remainingPoints: 2, msBeforeNext: 10_000, isFirstInDuration: true });
  clock.now += 4_000;
  t.like(c.consumeNow("k"), { consumedPoints: 2, remainingPoints: 1, msBeforeNext: 6_000, isFirstInDuration: false });
  t.like(c.consumeNow("k"), { consumedPoints: 3, remainingPoints: 0 });
  t.like(c.consumeNow("k"), { consumedPoints: 4, remainingPoints: 0, msBeforeNext: 6_000 }, "over the quota");
  clock.now += 5_999;
  t.like(c.consumeNow("k"), { consumedPoints: 5, msBeforeNext: 1 }, "still the same window");
  clock.now += 1;
  t.like(c.consumeNow("k"), { consumedPoints: 1, msBeforeNext: 10_000, isFirstInDuration: true }, "a new window");
  t.like(c.consumeNow("other"), { consumedPoints: 1 }, "keys count apart");
});

test("consume resolves within the quota and rejects with the state past it", async (t) => {
  const { counter: c } = counter(2);
  t.is((await c.consume("k")).consumedPoints, 1);
  t.is((await c.consume("k")).consumedPoints, 2);
  const rejection = await c.consume("k").catch((e: unknown) => e);
  t.true(rejection instanceof RateLimiterRes);
  t.like(rejection as RateLimiterRes, { consumedPoints: 3, remainingPoints: 0 });
});

test("reward gives points back, delete forgets the key, get reads without counting", async (t) => {
  const { clock, counter: c } = counter();
  t.is(await c.get("k"), null);
  c.consumeNow("k");
  c.consumeNow("k");
  t.like(await c.reward("k"), { consumedPoints: 1, remainingPoints: 2 });
  t.like(await c.get("k"), { consumedPoints: 1, msBeforeNext: 10_000 });
  t.true(await c.delete("k"));
  t.is(await c.get("k"), null);
  t.false(await c.delete("k"));
  c.consumeNow("k");
  clock.now += 10_000;
  t.is(await c.get("k"), null, "an ended window reads as none");
});

test("ended windows are swept without timers, and a restarted window is kept until it ends", (t) => {
  const { clock, counter: c } = counter(3, 10);
  for (let i = 0; i < 100; i++) c.consumeNow(`a${i}`);
  clock.now += 5_000;
  c.consumeNow("b");
  clock.now += 5_000; // the a-windows have ended; b's has 5 s to go
  c.consumeNow("a0"); // restarts a0's window behind b's
  t.is(c.size, 2, "only b and the restarted a0 are left");
  clock.now += 5_000;
  c.consumeNow("c");
  t.is(c.size, 2, "b swept; a0 (5 s left) and c kept");
  t.like(c.consumeNow("a0"), { consumedPoints: 2 }, "a0's restarted window survived the sweep");
});

test("a burst at once gets exactly the quota through, as RateLimiterMemory's does", async (t) => {
  const ours = new WindowCounter({ points: 5, windowSeconds: 60 });
  const theirs = new RateLimiterMemory({ points: 5, duration: 60 });
  const granted = async (limiter: { consume(key: string): Promise<RateLimiterRes> }) =>
    (
      await Promise.all(
        Array.from({ length: 40 }, () =>
          limiter.consume("k").then(
            (res) => res.consumedPoints,
            (res: RateLimiterRes) => -res.consumedPoints,
          ),
        ),
      )
    ).sort((a, b) => a - b);
  t.deepEqual(await granted(ours), await granted(theirs));
});

test("a window must have a length", (t) => {
  t.throws(() => new WindowCounter({ points: 1, windowSeconds: 0 }), { message: /more than 0 seconds, got 0/ });
});

test("the state class is rate-limiter-flexible's own (instanceof holds for the Redis store's rejections too)", (t) => {
  t.is(OurRateLimiterRes, RateLimiterRes);
  t.true(new WindowCounter({ points: 1, windowSeconds: 1 }).consumeNow("k") instanceof RateLimiterRes);
});

test("a node without REDIS_URL never loads rate-limiter-flexible's index (every store it ships, ~10 MiB of RSS)", (t) => {
  const store = fileURLToPath(new URL("../../lib/http/rate-limit-store.ts", import.meta.url));
  const script = `
    const { createLimiterStore } = await import(${JSON.stringify(store)});
    const limiter = (await createLimiterStore({ redisUrl: undefined }))({ name: "api", points: 2, windowSeconds: 60 });
    await limiter.consume("k");
    const { createRequire } = await import("node:module");
    const cache = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify(cache.filter((path) => path.includes("rate-limiter-flexible"))));`;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 30_000,
  });
  t.is(run.status, 0, run.stderr);
  const loaded = JSON.parse(run.stdout) as string[];
  t.deepEqual(
    loaded.map((path) => path.replace(/.*rate-limiter-flexible\//, "")),
    ["lib/RateLimiterRes.js"],
  );
});
