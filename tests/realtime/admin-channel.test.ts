/**
 * AdminChannel (`admin:dashboard`) with the real phoenix client over a real uWebSockets.js server:
 * only ADMIN_EMAILS may join; an operator gets the history at once, then every snapshot; the
 * snapshots count the sockets that come and go.
 */
import test from "ava";
import type { DashboardHistory, NodeSnapshot } from "../../lib/dashboard/snapshot.ts";
import { startRedisServer } from "../helpers/processes.ts";
import { connect, createWorld, join, nextEvent, push, type World } from "./helpers.ts";

const OPERATOR = "Ops.Lead@Example.com";

let world: World;
let operatorId: number;

test.before(async () => {
  world = await createWorld({
    env: { ADMIN_EMAILS: `nobody@example.com,${OPERATOR.toLowerCase()}`, DASHBOARD_INTERVAL_MS: "100" },
  });
  operatorId = (
    await world.deps.accounts.registerUser({ name: "Ops", email: OPERATOR, password: "correct horse battery" })
  ).id;
});

test.after.always(async () => {
  await world?.close();
});

async function operatorToken(): Promise<string> {
  // A session of its own each time, as the page's login makes one.
  return (await world.deps.accounts.createSession(OPERATOR, "correct horse battery")).socketToken;
}

test("a user who is not an operator is refused with unauthorized, and receives nothing on the topic, not even a snapshot forced after the refusal", async (t) => {
  // A watching operator proves the forced snapshot is really sent to the topic's subscribers.
  const watcher = (await connect(world, await operatorToken())).channel("admin:dashboard", {});
  t.is((await join(watcher)).status, "ok");
  const user = await world.user("plain");
  const socket = await connect(world, user.token);
  // Every frame the socket receives on the topic, read below the channel object (which the refused
  // join removes from the client, so listeners on it would hear nothing either way).
  const frames: string[] = [];
  socket.onMessage((message) => {
    const m = message as { topic: string; event: string };
    if (m.topic === "admin:dashboard") frames.push(m.event);
  });
  const channel = socket.channel("admin:dashboard", {});
  t.deepEqual(await join(channel), { status: "error", response: { reason: "unauthorized" } });
  const forced = world.deps.dashboard.tick();
  await nextEvent<NodeSnapshot>(watcher, "snapshot", (s) => s.at === forced.at && s.node === forced.node);
  // A marker round trip on another topic: anything the server had sent on admin:dashboard came before it.
  const room = await world.deps.rooms.createRoom(user.id, { name: "marker", private: false });
  const other = socket.channel(`room:${room.id}`, { presence: false });
  t.is((await join(other)).status, "ok");
  t.is((await push(other, "message:new", { body: "marker" })).status, "ok");
  t.true(frames.length >= 1, "the refusal arrived");
  t.deepEqual(
    frames.filter((event) => event !== "phx_reply"),
    [],
    "replies only (the refusal, and the client's leave): no history, no snapshot",
  );
});

test("cross-node: an operator's socket on node A receives node B's live snapshots through Redis (a redis-server of its own)", async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.kill());
  const env = { ADMIN_EMAILS: OPERATOR.toLowerCase(), REDIS_URL: redis.url, DASHBOARD_INTERVAL_MS: "100" };
  const a = await createWorld({ env: { ...env, NODE_NAME: "node-a" } });
  t.teardown(() => a.close());
  const b = await createWorld({ env: { ...env, NODE_NAME: "node-b" } });
  t.teardown(() => b.close());
  const bNode = b.deps.cluster!.nodeId;
  t.not(a.deps.cluster!.nodeId, bNode);
  await a.deps.accounts.registerUser({ name: "Ops", email: OPERATOR, password: "correct horse battery" });
  const session = await a.deps.accounts.createSession(OPERATOR, "correct horse battery");
  const channel = (await connect(a, session.socketToken)).channel("admin:dashboard", {});
  t.is((await join(channel)).status, "ok");
  const fromB = await nextEvent<NodeSnapshot>(channel, "snapshot", (s) => s.node === bNode);
  t.regex(fromB.node, /^node-b:/);
  t.is(fromB.redis.status, "ok");
  t.true(Date.now() - fromB.at < 5000, "a live snapshot, not an old one");
});

test("an operator (e-mail matched without regard to case) joins, gets the history at once, then live snapshots", async (t) => {
  world.deps.dashboard.tick();
  const socket = await connect(world, await operatorToken());
  const channel = socket.channel("admin:dashboard", {});
  const history = nextEvent<DashboardHistory>(channel, "history");
  t.is((await join(channel)).status, "ok");
  const pushed = await history;
  const points = Object.values(pushed.nodes)[0];
  t.true(points !== undefined && points.length >= 1, "the node's recent snapshots arrive with the join");
  t.is(pushed.interval_ms, 100);
  const snapshot = await nextEvent<NodeSnapshot>(channel, "snapshot");
  t.true(snapshot.sockets.open >= 1);
  t.is(
    snapshot.topics.top.find((row) => row.topic === "admin:dashboard"),
    undefined,
    "the dashboard's own topic is not listed among the busiest",
  );
});

// Serial: alone in the world, so no other test's sockets move the figure meanwhile.
test.serial("the sockets figure follows sockets opening and closing", async (t) => {
  const socket = await connect(world, await operatorToken());
  const channel = socket.channel("admin:dashboard", {});
  t.is((await join(channel)).status, "ok");
  const before = (await nextEvent<NodeSnapshot>(channel, "snapshot")).sockets.open;
  const user = await world.user("guest");
  const guests = await Promise.all([1, 2].map(() => connect(world, user.token)));
  await nextEvent<NodeSnapshot>(channel, "snapshot", (s) => s.sockets.open === before + 2);
  for (const guest of guests) guest.disconnect();
  await nextEvent<NodeSnapshot>(channel, "snapshot", (s) => s.sockets.open === before);
  t.pass();
});

test("the channel takes no client events: unknown_event", async (t) => {
  const socket = await connect(world, await operatorToken());
  const channel = socket.channel("admin:dashboard", {});
  t.is((await join(channel)).status, "ok");
  t.deepEqual(await push(channel, "snapshot", {}), { status: "error", response: { reason: "unknown_event" } });
});
