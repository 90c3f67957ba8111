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
      cluster: { nodeId: pubsub.nodeId, redis: () => "ok" },
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
