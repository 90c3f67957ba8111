/**
 * The socket quota, both implementations, attacked with concurrent acquires: never more than the
 * limit, a release frees exactly one slot. The Redis one across two "nodes" on the shared Redis
 * (keys under a prefix unique to this run): one count for the cluster, a node whose lease lapses
 * stops counting, and its true counts come back when it renews.
 */
import test from "ava";
import { createLocalSocketQuota, type SocketQuota } from "../../lib/socket-quota/index.ts";
import { createRedisSocketQuota } from "../../lib/socket-quota/redis.ts";
import { cleanupPrefix, SHARED_REDIS_URL, uniquePrefix } from "../cluster/redis-server.ts";

const prefix = uniquePrefix("quota");
const open: SocketQuota[] = [];

const redisNode = async (limit: number, leaseMs = 60_000) => {
  const quota = await createRedisSocketQuota({
    url: SHARED_REDIS_URL,
    prefix,
    limit,
    heartbeatMs: Math.max(10, Math.floor(leaseMs / 3)),
    leaseMs,
  });
  open.push(quota);
  return quota;
};

test.after.always(async () => {
  await Promise.all(open.map((q) => q.close()));
  await cleanupPrefix(SHARED_REDIS_URL, `rt:${prefix}:*`);
});

const burst = (quota: SocketQuota, userId: number, n: number) =>
  Promise.all(Array.from({ length: n }, () => quota.acquire(userId)));
const granted = (results: boolean[]) => results.filter(Boolean).length;

for (const [label, make] of [
  ["local", async (limit: number) => createLocalSocketQuota(limit)],
  ["redis", (limit: number) => redisNode(limit)],
] as const) {
  test(`${label}: 30 concurrent acquires with a limit of 7 → exactly 7; a release frees exactly one; users are counted apart`, async (t) => {
    const quota = await make(7);
    t.is(granted(await burst(quota, 101, 30)), 7);
    t.is(granted(await burst(quota, 102, 3)), 3, "another user");
    quota.release(101);
    t.is(granted(await burst(quota, 101, 5)), 1);
  });
}

/** Acquires until one is granted (a release travels to Redis asynchronously); bounded. */
async function acquireSoon(quota: SocketQuota, userId: number): Promise<boolean> {
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
    if (await quota.acquire(userId)) return true;
  }
  return false;
}

test("redis: two nodes share one count; a node whose lease is gone stops counting; a node whose keys were lost writes its counts back", async (t) => {
  const a = await redisNode(6, 300);
  const b = await redisNode(6, 300);
  const [fromA, fromB] = await Promise.all([burst(a, 201, 6), burst(b, 201, 6)]);
  t.is(granted(fromA) + granted(fromB), 6, "one limit for the cluster");
  // Release one on the node that holds one, take it back on the other.
  const [holder, taker] = granted(fromB) > 0 ? [b, a] : [a, b];
  holder.release(201);
  t.true(await acquireSoon(taker, 201), "a slot released on one node is free on the other");
  t.is(granted(await burst(taker, 201, 3)), 0, "and only that one");
  const aHeld = granted(fromA) + (taker === a ? 1 : -1);
  const bHeld = granted(fromB) + (taker === b ? 1 : -1);
  await a.close(); // a's lease is gone at once (as it lapses one lease after a crash)
  open.splice(open.indexOf(a), 1);
  t.is(granted(await burst(b, 201, 10)), aHeld, "a's sockets no longer count");

  // Redis loses every key (a restart without persistence): b notices at its next renewal and writes back its 6.
  await cleanupPrefix(SHARED_REDIS_URL, `rt:${prefix}:spu*`);
  const c = await redisNode(6, 300);
  await new Promise((r) => setTimeout(r, 300)); // more than b's renewal period (100 ms)
  t.is(granted(await burst(c, 201, 10)), 6 - (bHeld + aHeld), "b's sockets count again");
});
