/**
 * The Redis adapter: the shared PubSub contract on the shared Redis (6379), then cross-node
 * behaviour with two adapter instances ("nodes") in this process, and a Redis restart on a
 * redis-server this file owns. Every channel and key is under a prefix unique to this run.
 */
import test from "ava";
import { Redis } from "ioredis";
import type { PubSubMessage } from "../../lib/pubsub/index.ts";
import {
  createRedisPubSub,
  type DropReason,
  type RedisPubSub,
  type RedisPubSubOptions,
} from "../../lib/pubsub/redis.ts";
import { SHARED_REDIS_URL, uniquePrefix } from "../cluster/redis-server.ts";
import { pubsubContract, type AnyEvents } from "./contract.ts";
import { eventually, startRedisServer, type OwnedRedis } from "../helpers/processes.ts";

const prefix = uniquePrefix("pubsub");
const open = new Set<RedisPubSub<AnyEvents>>();
let owned: OwnedRedis | undefined;
let admin: Redis | undefined;

/** A node carrying the suite's own events: every payload accepted (the catalogue's check has a test of its own below). */
async function node(options: Partial<RedisPubSubOptions> = {}): Promise<RedisPubSub<AnyEvents>> {
  const pubsub = await createRedisPubSub<AnyEvents>({
    url: SHARED_REDIS_URL,
    prefix,
    lingerMs: 0,
    check: () => undefined,
    ...options,
  });
  open.add(pubsub);
  return pubsub;
}

test.before(async () => {
  admin = new Redis(SHARED_REDIS_URL);
});

test.after.always(async () => {
  await Promise.all([...open].map((p) => p.close()));
  await owned?.kill();
  admin?.disconnect();
});

pubsubContract("redis", async () => {
  const pubsub = await node();
  return { pubsub, settle: pubsub.synced };
});

function collect(pubsub: RedisPubSub<AnyEvents>, topic: string): PubSubMessage<AnyEvents>[] {
  const seen: PubSubMessage<AnyEvents>[] = [];
  pubsub.subscribe(topic, (m) => seen.push(m));
  return seen;
}

test("cross-node: a broadcast reaches the other node's subscribers with its from, and Dates stay Dates", async (t) => {
  const [a, b] = await Promise.all([node({ name: "a" }), node({ name: "b" })]);
  t.not(a.nodeId, b.nodeId);
  t.regex(a.nodeId, /^a:\d+:\d+:[0-9a-f]{4}$/);
  const atB = collect(b, "room:x");
  await b.synced();
  const insertedAt = new Date("2026-03-04T05:06:07.089Z");
  a.broadcastFrom("sock-1", "room:x", "message:new", { id: 1, body: "hi", insertedAt, nested: [{ at: insertedAt }] });
  await eventually(() => atB.length === 1, 2000, "delivery to b");
  const got = atB[0]!;
  t.is(got.event, "message:new");
  t.is(got.from, "sock-1");
  const payload = got.payload as { insertedAt: Date; nested: { at: Date }[] };
  t.true(payload.insertedAt instanceof Date);
  t.is(payload.insertedAt.toISOString(), insertedAt.toISOString());
  t.true(payload.nested[0]!.at instanceof Date);
});

test("cross-node: 1000 messages from one publisher arrive in order, and the publisher sees no echo", async (t) => {
  const [a, b] = await Promise.all([node(), node()]);
  const atA = collect(a, "room:fifo");
  const atB = collect(b, "room:fifo");
  await Promise.all([a.synced(), b.synced()]);
  for (let i = 0; i < 1000; i++) a.broadcast("room:fifo", "n", i);
  await eventually(() => atB.length >= 1000, 10_000, "1000 messages at b");
  t.deepEqual(
    atB.map((m) => m.payload),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  // A marker from b is published after a's 1000 reached Redis, so a's echoes (if any) come before it.
  b.broadcast("room:fifo", "marker", null);
  await eventually(() => atA.some((m) => m.event === "marker"), 2000, "marker at a");
  t.is(atA.filter((m) => m.event === "n").length, 1000);
  t.deepEqual(
    atA.filter((m) => m.event === "n").map((m) => m.payload),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  t.is(a.dropped(), 0);
});

test("interest: a node subscribes to a topic's channel only while it has local subscribers", async (t) => {
  const [a, b] = await Promise.all([node(), node()]);
  const channel = a.channel("room:interest");
  t.is(channel, `rt:${prefix}:t:room:interest`);
  const numsub = async () => Number(((await admin!.pubsub("NUMSUB", channel)) as [string, number])[1]);
  t.is(await numsub(), 0);
  const first: string[] = [];
  const second: string[] = [];
  const off = a.subscribe("room:interest", (m) => first.push(m.event));
  const off2 = a.subscribe("room:interest", (m) => second.push(m.event));
  await a.synced();
  t.is(await numsub(), 1); // one SUBSCRIBE per node, not per local subscriber
  // b has no subscriber: its broadcasts go out once through Redis, and a's one subscription
  // fans each out to both local subscribers exactly once (the marker ends the wait).
  b.broadcast("room:interest", "e", 1);
  b.broadcast("room:interest", "marker", null);
  await eventually(
    () => first.includes("marker") && second.includes("marker"),
    2000,
    "the marker at both of a's subscribers",
  );
  t.deepEqual(first, ["e", "marker"]);
  t.deepEqual(second, ["e", "marker"]);
  t.true(((await admin!.pubsub("CHANNELS", `rt:${prefix}:t:*`)) as string[]).includes(channel));
  off();
  await a.synced();
  t.is(await numsub(), 1);
  off2();
  await a.synced();
  t.is(await numsub(), 0);
});

test("interest: with a linger the channel stays subscribed for a while, and a new subscriber cancels the unsubscribe", async (t) => {
  // Long enough that the readings before it runs out are not a race on a loaded machine (150 ms was one).
  const a = await node({ lingerMs: 1000 });
  const channel = a.channel("room:linger");
  const numsub = async () => Number(((await admin!.pubsub("NUMSUB", channel)) as [string, number])[1]);
  const marker = a.channel("room:linger-marker");
  const markerSubs = async () => Number(((await admin!.pubsub("NUMSUB", marker)) as [string, number])[1]);
  a.subscribe("room:linger", () => {})();
  a.subscribe("room:linger-marker", () => {})(); // lingers too, starting after room:linger: the marker
  await a.synced();
  t.is(await numsub(), 1);
  t.is(await markerSubs(), 1);
  const off = a.subscribe("room:linger", () => {});
  // Once the marker's linger has run out and it is unsubscribed, room:linger's would have too.
  await eventually(async () => (await markerSubs()) === 0, 5000, "the marker's unsubscribe after its linger");
  t.is(await numsub(), 1, "the new subscriber cancelled the pending unsubscribe");
  off();
  await eventually(async () => (await numsub()) === 0, 5000, "unsubscribe after linger");
  t.pass();
});

test("cross-node: a 64 KiB payload arrives intact", async (t) => {
  const [a, b] = await Promise.all([node(), node()]);
  const atB = collect(b, "room:big");
  await b.synced();
  const body = "é🙂x".repeat(Math.ceil(65536 / 7)).slice(0, 65536);
  a.broadcast("room:big", "message:new", { body });
  await eventually(() => atB.length === 1, 3000, "64 KiB message");
  t.is((atB[0]!.payload as { body: string }).body, body);
});

test("a foreign or undecodable message on a topic channel is reported and not delivered", async (t) => {
  const a = await node({ onInvalid: (channel, reason) => invalid.push(`${channel}: ${reason}`) });
  const invalid: string[] = [];
  const seen = collect(a, "room:junk");
  await a.synced();
  await admin!.publish(a.channel("room:junk"), "not json");
  await admin!.publish(
    a.channel("room:junk"),
    JSON.stringify({ v: 2, node: "x", topic: "room:junk", event: "e", payload: 1 }),
  );
  await eventually(() => invalid.length === 2, 2000, "two invalid reports");
  t.deepEqual(seen, []);
});

test.serial(
  "a payload that is not what its event promises (the catalogue, lib/pubsub/events.ts) is reported at the boundary and not delivered",
  async (t) => {
    const invalid: string[] = [];
    // The production check: the events of the catalogue and nothing else.
    const [a, b] = await Promise.all([
      createRedisPubSub({ url: SHARED_REDIS_URL, prefix, lingerMs: 0 }),
      createRedisPubSub({
        url: SHARED_REDIS_URL,
        prefix,
        lingerMs: 0,
        onInvalid: (_channel, reason) => invalid.push(reason),
      }),
    ]);
    try {
      const seen: PubSubMessage[] = [];
      b.subscribe("room:typed", (m) => seen.push(m));
      await b.synced();
      const message = {
        id: 7,
        roomId: 1,
        body: "hi",
        insertedAt: new Date("2026-03-04T05:06:07.089Z"),
        author: { id: 2, name: "ann" },
      };
      // Each publishes through the real path (local core, then one PUBLISH); `as never` forges what a buggy or foreign node could send.
      a.broadcast("room:typed", "message.created", { ...message, insertedAt: new Date(Number.NaN) });
      a.broadcast("room:typed", "message:new" as never, message as never);
      a.broadcast("room:typed", "message.created", { ...message, author: undefined } as never);
      a.broadcast("room:typed", "message.created", message);
      await eventually(() => seen.length === 1, 2000, "the valid message");
      t.deepEqual(
        seen.map((m) => m.payload),
        [message],
      );
      t.deepEqual(invalid, [
        'malformed "message.created" payload',
        'unknown event "message:new"',
        'malformed "message.created" payload',
      ]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
);

test("Redis restart: publishes are dropped and counted while local delivery continues; afterwards cross-node works again", async (t) => {
  owned = await startRedisServer();
  const drops: DropReason[] = [];
  const [a, b] = await Promise.all([
    node({ url: owned.url, onDrop: (reason) => drops.push(reason) }),
    node({ url: owned.url }),
  ]);
  const atA = collect(a, "room:outage");
  const atB = collect(b, "room:outage");
  await Promise.all([a.synced(), b.synced()]);
  a.broadcast("room:outage", "n", "before");
  await eventually(() => atB.length === 1, 2000, "delivery before the outage");
  await a.ping();

  await owned.kill();
  await eventually(
    () =>
      a.ping().then(
        () => undefined,
        () => true,
      ),
    3000,
    "a to notice the outage",
  );
  for (let i = 0; i < 10; i++) a.broadcast("room:outage", "n", `during-${i}`);
  t.is(atA.filter((m) => String(m.payload).startsWith("during")).length, 10); // local delivery continues
  await eventually(() => a.dropped() >= 10, 2000, "drops counted");
  t.is(a.dropped(), 10);
  t.true(drops.every((reason) => reason === "unavailable" || reason === "error"));

  await owned.restart();
  await eventually(
    () =>
      a.ping().then(
        () => true,
        () => undefined,
      ),
    5000,
    "a to reconnect",
  );
  await eventually(
    () =>
      b.ping().then(
        () => true,
        () => undefined,
      ),
    5000,
    "b to reconnect",
  );
  // ioredis re-subscribes b's channel after the reconnect; publish until one arrives.
  await eventually(
    () => {
      if (atB.some((m) => m.payload === "after")) return true;
      a.broadcast("room:outage", "n", "after");
      return undefined;
    },
    5000,
    "cross-node delivery after the restart",
  );
  t.false(atB.some((m) => String(m.payload).startsWith("during")));
});
