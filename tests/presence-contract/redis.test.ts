/**
 * The Redis presence store: the shared contract on the shared Redis (6379), then what only a
 * cluster has: two nodes converge, a node whose lease expires is filtered and reaped, and a node
 * re-asserts after a restart of the test's own redis-server. Keys on the shared Redis are under a
 * prefix unique to this run, removed afterwards.
 */
import test from "ava";
import { Redis } from "ioredis";
import type { PresenceDiff } from "../../lib/presence/index.ts";
import {
  createRedisPresence,
  type PresenceControls,
  type RedisPresence,
  type RedisPresenceOptions,
} from "../../lib/presence/redis.ts";
import { cleanupPrefix, SHARED_REDIS_URL, uniquePrefix } from "../cluster/redis-server.ts";
import { presenceContract } from "./contract.ts";
import { eventually, startRedisServer } from "../helpers/processes.ts";

const prefix = uniquePrefix("presence");
const open = new Set<RedisPresence>();
const admin = new Redis(SHARED_REDIS_URL, { lazyConnect: true });

async function node(options: Partial<RedisPresenceOptions> = {}): Promise<RedisPresence & PresenceControls> {
  // snapshot() is these tests' barrier ("this node's view is synced"): on a loaded machine a sync can
  // outlast the production bound of 1 s, after which snapshot() answers with the view it has.
  let controls: PresenceControls | undefined;
  const presence = await createRedisPresence({
    url: SHARED_REDIS_URL,
    prefix,
    windowMs: 10,
    heartbeatMs: 100,
    leaseMs: 500,
    reapMs: 100,
    reapLockMs: 2000,
    syncTimeoutMs: 10_000,
    ...options,
    controls: (given) => (controls = given),
  });
  open.add(presence);
  return Object.assign(presence, controls!);
}

test.after.always(async () => {
  await Promise.all([...open].map((p) => p.close()));
  await cleanupPrefix(SHARED_REDIS_URL, `rt:${prefix}*`);
  admin.disconnect();
});

presenceContract("redis", async (windowMs) => {
  const presence = await node({ windowMs });
  return { presence, settle: (topic) => presence.snapshot(topic), close: () => presence.close() };
});

function listen(presence: RedisPresence, topic: string): PresenceDiff[] {
  const diffs: PresenceDiff[] = [];
  presence.subscribe(topic, (d) => diffs.push(d));
  return diffs;
}

const keysOf = (p: Record<string, unknown>) => Object.keys(p).sort();

test("two nodes converge: each sees the other's entries as diffs and in list; a late subscriber gets them from the snapshot", async (t) => {
  const p = `${prefix}-converge`;
  const [a, b] = await Promise.all([node({ name: "a", prefix: p }), node({ name: "b", prefix: p })]);
  const room = "room:converge";
  const atA = listen(a, room);
  listen(b, room);
  await Promise.all([a.snapshot(room), b.snapshot(room)]);
  const ma = a.track(room, "sa", "1", { online_at: "x" });
  const mb = b.track(room, "sb", "2", { online_at: "y" });
  await Promise.all([a.flush(), b.flush()]);
  await eventually(
    () => keysOf(a.list(room)).join() === "1,2" && keysOf(b.list(room)).join() === "1,2",
    2000,
    "convergence",
  );
  t.deepEqual(a.list(room), { "1": { metas: [ma] }, "2": { metas: [mb] } });
  t.deepEqual(b.list(room)["1"], { metas: [ma] });
  await a.flush(); // the replica changes at once; its diff follows within windowMs
  t.true(atA.some((d) => d.joins["2"]?.metas[0]?.phx_ref === mb.phx_ref));
  // A third node subscribing later starts from the snapshot.
  const c = await node({ name: "c", prefix: p });
  listen(c, room);
  t.deepEqual(keysOf(await c.snapshot(room)), ["1", "2"]);
  t.deepEqual(c.list(room)["2"], { metas: [mb] });
  // REST on a node with no listener: a filtered read.
  const d = await node({ name: "d", prefix: p });
  t.deepEqual(keysOf(await d.snapshot(room)), ["1", "2"]);
  b.untrack(room, "sb");
  await b.flush();
  await eventually(() => keysOf(a.list(room)).join() === "1", 2000, "leave reaches a");
  await a.flush();
  t.true(atA.some((d) => d.leaves["2"]?.metas[0]?.phx_ref === mb.phx_ref));
});

test("a node whose lease expires is filtered from snapshots within leaseMs and reaped with exactly one leaves diff per topic", async (t) => {
  const leaseMs = 500;
  const p = `${prefix}-lease`;
  const watcherA = await node({ name: "wa", leaseMs, prefix: p });
  const watcherB = await node({ name: "wb", leaseMs, prefix: p }); // two reapers race: the lock keeps it to one leave
  const doomed = await node({ name: "doomed", leaseMs, reapMs: 0, prefix: p });
  const rooms = ["room:lease1", "room:lease2"];
  const diffs = rooms.map((room) => listen(watcherA, room));
  const diffsB = rooms.map((room) => listen(watcherB, room));
  await Promise.all(rooms.map((room) => Promise.all([watcherA.snapshot(room), watcherB.snapshot(room)])));
  for (const room of rooms)
    (doomed.track(room, "s1", "7", {}), doomed.track(room, "s2", "7", {}), doomed.track(room, "s3", "8", {}));
  await doomed.flush();
  await eventually(
    () => rooms.every((room) => keysOf(watcherA.list(room)).join() === "7,8"),
    2000,
    "doomed entries visible",
  );
  const reader = await node({ name: "reader", reapMs: 0, prefix: p });
  t.deepEqual(keysOf(await reader.snapshot(rooms[0]!)), ["7", "8"]);

  const stoppedAt = Date.now();
  doomed.pauseHeartbeat();
  await eventually(
    async () => Object.keys(await reader.snapshot(rooms[0]!)).length === 0 || undefined,
    leaseMs + 500,
    "read-time filtering",
  );
  // The lease was renewed before the pause, so it expires at most leaseMs later; 500 ms is the stated
  // margin for the 20 ms polling and the snapshot's round trip on a loaded machine.
  t.true(Date.now() - stoppedAt <= leaseMs + 500);
  await eventually(() => rooms.every((room) => Object.keys(watcherA.list(room)).length === 0), leaseMs + 1500, "reap");
  // No second leave: both watchers run a reaper pass now, then a third node's change is the marker
  // (Redis delivers a channel's messages in the order it ran the PUBLISHes: any leave comes first).
  await watcherA.tick();
  await watcherB.tick();
  for (const room of rooms) reader.track(room, "marker", "m", {});
  await eventually(
    () => rooms.every((room) => watcherA.list(room)["m"] !== undefined && watcherB.list(room)["m"] !== undefined),
    5000,
    "the marker",
  );
  for (const [i, room] of rooms.entries()) {
    const leaves = diffs[i]!.filter((d) => Object.keys(d.leaves).length > 0);
    t.is(leaves.length, 1, `one leaves diff in ${room} at a`);
    t.deepEqual(keysOf(leaves[0]!.leaves), ["7", "8"]);
    t.is(leaves[0]!.leaves["7"]!.metas.length, 2);
    t.is(diffsB[i]!.filter((d) => Object.keys(d.leaves).length > 0).length, 1, `one leaves diff in ${room} at b`);
  }
  t.is(await admin.exists(`rt:${p}:pn:${doomed.nodeId()}`), 0);
  t.is(await admin.zscore(`rt:${p}:nodes`, doomed.nodeId()), null);
});

test("after Redis restarts without its data (a new epoch) a node re-asserts: new incarnation, new phx_refs, others converge", async (t) => {
  // The test's own redis-server: restarting it is what "Redis lost its data" is in production.
  const owned = await startRedisServer();
  t.teardown(() => owned.kill());
  const p = `${prefix}-epoch`;
  const [a, b] = await Promise.all([
    node({ url: owned.url, name: "ra", prefix: p }),
    node({ url: owned.url, name: "rb", prefix: p }),
  ]);
  const room = "room:epoch";
  const atB = listen(b, room);
  listen(a, room);
  await Promise.all([a.snapshot(room), b.snapshot(room)]);
  const before = a.track(room, "s", "5", { online_at: "x" });
  await eventually(() => b.list(room)["5"] !== undefined, 2000, "b sees a's entry");
  const oldNode = a.nodeId();
  await owned.kill();
  await owned.restart();
  // Each node notices on reconnect: the epoch changed, so it starts a new incarnation and re-reads its topics.
  await eventually(() => a.nodeId() !== oldNode || undefined, 5000, "a re-asserts as a new incarnation");
  await eventually(
    () => {
      const metas = b.list(room)["5"]?.metas ?? [];
      return metas.length === 1 && metas[0]!.phx_ref !== before.phx_ref ? true : undefined;
    },
    5000,
    "b sees the re-asserted entry",
  );
  const after = a.list(room)["5"]!.metas;
  t.is(after.length, 1);
  t.not(after[0]!.phx_ref, before.phx_ref);
  await b.flush(); // b's replica changes at once; its listeners get the coalesced diff windowMs later
  t.true(atB.some((d) => d.leaves["5"]?.metas[0]?.phx_ref === before.phx_ref));
  t.deepEqual(keysOf(await (await node({ url: owned.url, name: "rc", prefix: p })).snapshot(room)), ["5"]);
});
