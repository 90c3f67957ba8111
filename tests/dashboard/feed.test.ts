/**
 * The dashboard feed (lib/dashboard/feed.ts) over real parts: a real telemetry emitter, the local
 * PubSub, PGlite/PostgreSQL for the pool figures, and — for the cluster — two feeds on two Redis
 * PubSub nodes of the shared Redis, each hearing the other's snapshots.
 */
import test from "ava";
import {
  createDashboardFeed,
  DASHBOARD_TOPIC,
  type DashboardFeed,
  type DashboardFeedOptions,
} from "../../lib/dashboard/feed.ts";
import type { NodeSnapshot } from "../../lib/dashboard/snapshot.ts";
import { createLocalPresence } from "../../lib/presence/index.ts";
import { checkPayload } from "../../lib/pubsub/events.ts";
import { createLocalPubSub } from "../../lib/pubsub/index.ts";
import { createRedisPubSub, type RedisPubSub } from "../../lib/pubsub/redis.ts";
import { createTelemetry } from "../../lib/telemetry/index.ts";
import { versionPolicy } from "../../lib/version-policy.ts";
import { SHARED_REDIS_URL, uniquePrefix } from "../cluster/redis-server.ts";
import { createTestDeps } from "../helpers/deps.ts";
import { eventually } from "../helpers/processes.ts";

const feeds = new Set<DashboardFeed>();
test.after.always(() => {
  for (const feed of feeds) feed.close();
});

/** A feed showing the top callers of the deprecated versions, as createDeps builds it. */
function feedOf(options: Omit<DashboardFeedOptions, "deprecatedVersions">): DashboardFeed {
  const feed = createDashboardFeed({ ...options, deprecatedVersions: versionPolicy().deprecated });
  feeds.add(feed);
  return feed;
}

test("a tick publishes this node's snapshot on the PubSub: figures from telemetry, the deprecated callers, the process and the pool", async (t) => {
  const deps = await createTestDeps();
  t.teardown(() => deps.dispose());
  const telemetry = createTelemetry();
  const pubsub = createLocalPubSub();
  const received: NodeSnapshot[] = [];
  pubsub.subscribe(DASHBOARD_TOPIC, (m) => received.push(m.payload as NodeSnapshot));
  const feed = feedOf({ telemetry, pubsub, db: deps.db, nodeName: "web-1", intervalMs: 60_000 });
  telemetry.emit("socket.open", {}, { api_version: 1, user_id: 5 });
  telemetry.emit(
    "http.request.stop",
    { duration_ms: 2 },
    { request_id: "r", method: "GET", path: "/v1/users", route: "/users", status: 200, api_version: 1, user_id: 5 },
  );
  await deps.db.raw("select 1");
  const snapshot = feed.tick();
  t.is(received.length, 1);
  t.is(received[0], snapshot);
  t.regex(snapshot.node, /^web-1:\d+:/);
  t.is(snapshot.sockets.open, 1);
  t.deepEqual(snapshot.callers[0]?.callers, [{ user_id: 5, requests: 1, error: 0 }]);
  t.is(snapshot.callers[0]?.version, 1);
  t.is(snapshot.redis.status, "off");
  t.true(snapshot.db.in_use !== null && snapshot.db.waiting === 0);
  t.true(snapshot.process.rss_bytes > 0 && snapshot.process.heap_used_bytes > 0);
  t.true(snapshot.build_ms >= 0);
  t.is(snapshot.version, "0.1.0");
});

test("history keeps every tick of the node, newest last, with the tables only on the newest", (t) => {
  const feed = feedOf({ telemetry: createTelemetry(), pubsub: createLocalPubSub(), intervalMs: 60_000 });
  for (let i = 0; i < 3; i++) feed.tick();
  const history = feed.history();
  const [points] = Object.values(history.nodes);
  t.is(points?.length, 3);
  t.is(history.interval_ms, 60_000);
  t.deepEqual(
    points!.slice(0, 2).map((p) => p.callers),
    [[], []],
  );
  t.is(points![2]!.callers.length, 1, "the newest keeps its callers table");
});

test("the feed accounts for what its ticks cost: CPU and wall time of build + publish + relay, and the worst tick", (t) => {
  const pubsub = createLocalPubSub();
  let relayed = 0;
  // A subscriber doing work inside the publish (as the realtime relay does) is part of the tick's cost.
  pubsub.subscribe(DASHBOARD_TOPIC, () => {
    const until = process.cpuUsage().user + 20_000;
    while (process.cpuUsage().user < until) relayed++;
  });
  const feed = feedOf({ telemetry: createTelemetry(), pubsub, intervalMs: 60_000 });
  t.deepEqual(feed.cost(), { ticks: 0, cpu_ms: 0, wall_ms: 0, max_cpu_ms: 0 });
  for (let i = 0; i < 3; i++) feed.tick();
  const cost = feed.cost();
  t.is(cost.ticks, 3);
  t.true(relayed > 0);
  t.true(cost.cpu_ms >= 3 * 20, `cpu_ms ${cost.cpu_ms}: the relay's 20 ms of CPU per tick are counted`);
  t.true(cost.max_cpu_ms >= 20 && cost.max_cpu_ms <= cost.cpu_ms);
  t.true(cost.wall_ms >= cost.cpu_ms * 0.5);
});

test("DASHBOARD_INTERVAL_MS=0 turns the feed off: no handlers, an empty history, and tick says so", (t) => {
  const telemetry = createTelemetry();
  let attached = 0;
  const real = telemetry.attach.bind(telemetry);
  telemetry.attach = (handler) => (attached++, real(handler));
  const feed = feedOf({ telemetry, pubsub: createLocalPubSub(), intervalMs: 0 });
  t.is(attached, 0);
  t.deepEqual(feed.history(), { interval_ms: 0, nodes: {} });
  t.throws(() => feed.tick(), { message: /DASHBOARD_INTERVAL_MS=0/ });
});

test("clustered: each node hears the others' snapshots through Redis and keeps their history; Redis state reported", async (t) => {
  const prefix = uniquePrefix("dashboard");
  const nodes: RedisPubSub[] = [];
  t.teardown(async () => void (await Promise.all(nodes.map((n) => n.close()))));
  for (const name of ["a", "b"])
    nodes.push(await createRedisPubSub({ url: SHARED_REDIS_URL, prefix, name, lingerMs: 0 }));
  const [a, b] = nodes.map((pubsub) =>
    feedOf({
      telemetry: createTelemetry(),
      pubsub,
      cluster: { nodeId: pubsub.nodeId, redis: () => "ok", ping: () => pubsub.ping() },
      intervalMs: 60_000,
    }),
  );
  await Promise.all(nodes.map((n) => n.synced()));
  a!.tick();
  b!.tick();
  for (const feed of [a!, b!]) {
    await eventually(() => Object.keys(feed.history().nodes).length === 2, 10_000, "both nodes in the history");
  }
  t.deepEqual(Object.keys(a!.history().nodes).sort(), nodes.map((n) => n.nodeId).sort());
  t.is(a!.tick().redis.status, "ok", "the cluster link's Redis state");
  // The PING started by a tick is timed in the background and shown by the next one.
  await nodes[0]!.ping();
  const ping = a!.tick().redis.ping_ms;
  t.true(typeof ping === "number" && ping > 0 && ping < 1000, `ping_ms ${ping}`);
});

test("the Redis PING never holds a tick: one out at a time, null once it outlasts an interval, its late answer ignored", async (t) => {
  let pings = 0;
  const answers: (() => void)[] = [];
  const feed = feedOf({
    telemetry: createTelemetry(),
    pubsub: createLocalPubSub(),
    intervalMs: 50,
    cluster: {
      nodeId: "n:1:1:aa",
      redis: () => "ok",
      ping: () => (pings++, new Promise<void>((resolve) => answers.push(resolve))),
    },
  });
  const started = performance.now();
  t.is(feed.tick().redis.ping_ms, null, "nothing measured yet");
  t.is(feed.tick().redis.ping_ms, null);
  t.true(performance.now() - started < 40, "ticks return without waiting for Redis");
  t.is(pings, 1, "a second PING is not sent while the first is out");
  answers[0]!();
  await new Promise((r) => setImmediate(r));
  const answered = feed.tick().redis.ping_ms;
  t.true(typeof answered === "number" && answered >= 0, `ping_ms ${answered}`);
  t.is(pings, 2, "the next tick sends the next PING");
  await new Promise((r) => setTimeout(r, 80)); // the second PING outlasts its bound (one interval)
  t.is(feed.tick().redis.ping_ms, null, "an unanswered PING is a failed one");
  answers[1]!();
  await new Promise((r) => setImmediate(r));
  t.is(feed.tick().redis.ping_ms, null, "its late answer is not taken for the third PING's");
  t.is(pings, 3);
});

test("busiest topics read presence counts from the presence core, including presences tracked before the node saw the topic", async (t) => {
  const presence = createLocalPresence({ windowMs: 0 });
  t.teardown(() => presence.close());
  // Already there (another node's, or tracked before this feed started): no diff will ever say so.
  for (const [owner, user] of [
    ["s1", "1"],
    ["s2", "1"],
    ["s3", "2"],
  ] as const)
    presence.track("room:7", owner, user, { online_at: "2026-01-01T00:00:00.000Z" });
  const telemetry = createTelemetry();
  const feed = feedOf({ telemetry, pubsub: createLocalPubSub(), presence, intervalMs: 60_000 });
  telemetry.emit(
    "channel.join.stop",
    { duration_ms: 1 },
    { topic: "room:7", outcome: "ok", reason: undefined, user_id: 3 },
  );
  t.deepEqual(
    feed.tick().topics.top.find((row) => row.topic === "room:7"),
    { topic: "room:7", subscribers: 1, presences: 3, rate: 0 },
  );
  presence.untrack("room:7", "s1");
  t.is(feed.tick().topics.top.find((row) => row.topic === "room:7")?.presences, 2, "read afresh at every tick");
});

test("the dashboard's own topic is not a busy topic, and its joins, events and deliveries count in no rate", (t) => {
  const telemetry = createTelemetry();
  const feed = feedOf({ telemetry, pubsub: createLocalPubSub(), intervalMs: 60_000 });
  const join = (topic: string) =>
    telemetry.emit("channel.join.stop", { duration_ms: 1 }, { topic, outcome: "ok", reason: undefined, user_id: 9 });
  telemetry.emit("socket.open", {}, { api_version: 2, user_id: 9 });
  join(DASHBOARD_TOPIC);
  telemetry.emit("channel.message.in", { bytes: 2 }, { topic: DASHBOARD_TOPIC, event: "x" });
  telemetry.emit("broadcast.fanout", { deliveries: 5 }, { topic: DASHBOARD_TOPIC, event: "snapshot" });
  const watched = feed.tick();
  t.deepEqual(watched.topics, { count: 0, top: [] });
  t.like(watched.sockets, { open: 1, joins_per_s: 0, messages_in_per_s: 0, deliveries_per_s: 0 });
  // Another topic's activity still counts, beside the watching page.
  join("room:1");
  telemetry.emit("broadcast.fanout", { deliveries: 2 }, { topic: "room:1", event: "message:new" });
  const busy = feed.tick();
  t.deepEqual(
    busy.topics.top.map((row) => row.topic),
    ["room:1"],
  );
  t.true(busy.sockets.joins_per_s > 0 && busy.sockets.deliveries_per_s > 0);
});

test("the history pushed on join stays small: thinned evenly to maxHistoryPoints, keeping the newest", (t) => {
  const feed = feedOf({
    telemetry: createTelemetry(),
    pubsub: createLocalPubSub(),
    intervalMs: 60_000,
    maxHistoryPoints: 10,
  });
  const ticks = Array.from({ length: 35 }, () => feed.tick());
  const [points] = Object.values(feed.history().nodes);
  t.is(points?.length, 10);
  t.is(points![9], ticks[34], "the newest is the last");
  t.is(new Set(points).size, 10, "no point twice");
  // With the default limit, a full history of one node is one frame far below the 1 MiB send buffer.
  const full = feedOf({ telemetry: createTelemetry(), pubsub: createLocalPubSub(), intervalMs: 60_000 });
  for (let i = 0; i < 600; i++) full.tick();
  const bytes = JSON.stringify(full.history()).length;
  t.true(bytes < 600 * 1024, `${bytes} bytes`);
});

/** A copy of the snapshot with one field replaced (by a dotted path); `undefined` removes it. */
function mutate(snapshot: NodeSnapshot, path: string, value: unknown): unknown {
  const copy = structuredClone(snapshot) as unknown as Record<string, unknown>;
  const keys = path.split(".");
  let at: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) at = at[key] as Record<string, unknown>;
  if (value === undefined) delete at[keys[keys.length - 1]!];
  else at[keys[keys.length - 1]!] = value;
  return copy;
}

const MALFORMED: [string, unknown][] = [
  ["http", undefined],
  ["http.rps", "12"],
  ["http.by_version", null],
  ["callers", {}],
  ["callers.0.callers", [{ user_id: "5", requests: 1, error: 0 }]],
  ["sockets.open", null],
  ["topics.top", [{ topic: "room:1", subscribers: 1, rate: 0 }]],
  ["topics.top", Array.from({ length: 101 }, () => ({ topic: "room:1", subscribers: 1, presences: 0, rate: 0 }))],
  ["db.in_use", "3"],
  ["redis.status", "maybe"],
  ["process.cpu_percent", undefined],
  ["interval_ms", 0],
  ["node", ""],
];

test("a snapshot from another node is checked field by field at the PubSub boundary (lib/pubsub/events.ts)", (t) => {
  const feed = feedOf({ telemetry: createTelemetry(), pubsub: createLocalPubSub(), intervalMs: 60_000 });
  const snapshot = feed.tick();
  t.is(checkPayload("dashboard.snapshot", JSON.parse(JSON.stringify(snapshot))), undefined, "a real one passes");
  for (const [path, value] of MALFORMED)
    t.is(
      checkPayload("dashboard.snapshot", mutate(snapshot, path, value)),
      'malformed "dashboard.snapshot" payload',
      `${path} = ${JSON.stringify(value)?.slice(0, 40)}`,
    );
});

test("clustered: a malformed snapshot from another node is dropped and counted; the next good one arrives", async (t) => {
  const prefix = uniquePrefix("dashboard-bad");
  const invalid: string[] = [];
  const a = await createRedisPubSub({ url: SHARED_REDIS_URL, prefix, name: "a", lingerMs: 0 });
  const b = await createRedisPubSub({
    url: SHARED_REDIS_URL,
    prefix,
    name: "b",
    lingerMs: 0,
    onInvalid: (_channel, reason) => invalid.push(reason),
  });
  t.teardown(async () => void (await Promise.all([a.close(), b.close()])));
  const feedA = feedOf({
    telemetry: createTelemetry(),
    pubsub: a,
    cluster: { nodeId: a.nodeId, redis: () => "ok", ping: () => a.ping() },
    intervalMs: 60_000,
  });
  const feedB = feedOf({ telemetry: createTelemetry(), pubsub: b, intervalMs: 60_000 });
  await b.synced();
  const good = feedA.tick();
  for (const [path, value] of MALFORMED.slice(0, 4))
    a.broadcast(DASHBOARD_TOPIC, "dashboard.snapshot", mutate(good, path, value) as NodeSnapshot);
  const next = feedA.tick();
  await eventually(() => (feedB.history().nodes[a.nodeId]?.length ?? 0) === 2, 10_000, "a's two good snapshots at b");
  t.deepEqual(
    feedB.history().nodes[a.nodeId]!.map((s) => s.at),
    [good.at, next.at],
  );
  t.deepEqual(invalid, Array(4).fill('malformed "dashboard.snapshot" payload'));
});
