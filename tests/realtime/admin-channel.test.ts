/**
 * AdminChannel (`admin:dashboard`) with the real phoenix client over a real uWebSockets.js server:
 * only ADMIN_EMAILS may join; an operator gets the history at once, then every snapshot; the
 * snapshots count the sockets that come and go.
 */
import test from "ava";
import type { DashboardHistory, NodeSnapshot } from "../../lib/dashboard/snapshot.ts";
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

test("a user who is not an operator is refused with unauthorized, and receives no snapshot", async (t) => {
  const user = await world.user("plain");
  const socket = await connect(world, user.token);
  const channel = socket.channel("admin:dashboard", {});
  let pushed = 0;
  channel.on("history", () => void pushed++);
  channel.on("snapshot", () => void pushed++);
  t.deepEqual(await join(channel), { status: "error", response: { reason: "unauthorized" } });
  // A marker round trip on another topic: anything the server had sent on admin:dashboard came before it.
  const room = await world.deps.rooms.createRoom(user.id, { name: "marker", private: false });
  const other = socket.channel(`room:${room.id}`, { presence: false });
  t.is((await join(other)).status, "ok");
  t.is((await push(other, "message:new", { body: "marker" })).status, "ok");
  t.is(pushed, 0);
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
  // This file's other tests may have operators joined too.
  t.true(
    (snapshot.topics.top.find((row) => row.topic === "admin:dashboard")?.subscribers ?? 0) >= 1,
    "the dashboard topic is among the busiest",
  );
});

test("the sockets figure follows sockets opening and closing", async (t) => {
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
