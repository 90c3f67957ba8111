/**
 * Presence over channels with the real phoenix client (and its Presence class).
 */
import anyTest, { type TestFn } from "ava";
import type { Socket } from "phoenix";
import {
  connect,
  createWorld,
  join,
  nextEvent,
  PhoenixPresence,
  until,
  WAIT_MS,
  within,
  type World,
} from "./helpers.ts";
import { openRaw } from "./raw.ts";

const test = anyTest as TestFn<{ world: World }>;

test.before(async (t) => {
  t.context.world = await createWorld({ env: { SOCKETS_PER_USER: "100000" } }); // storms of one user's sockets
});
test.after.always(async (t) => {
  await t.context.world?.close();
});

type Diff = {
  joins: Record<string, { metas: Array<{ phx_ref: string }> }>;
  leaves: Record<string, { metas: Array<{ phx_ref: string }> }>;
};

async function room(world: World) {
  const owner = await world.user("owner");
  const r = await world.deps.rooms.createRoom(owner.id, { name: "p" });
  return { owner, topic: `room:${r.id}`, roomId: r.id };
}

test("two devices of one user are two metas under one key; phoenix Presence syncs them", async (t) => {
  const { world } = t.context;
  const { owner, topic } = await room(world);
  const phone = await connect(world, owner.token);
  const laptop = await connect(world, owner.token);
  const watcher = (await connect(world, (await world.user("w")).token)).channel(topic, {});
  const presence = new PhoenixPresence(watcher);
  await join(watcher);
  await join(phone.channel(topic, {}));
  await join(laptop.channel(topic, {}));
  await until("three metas in the client's Presence", () => {
    const metas = presence.list((_key: string, p: { metas: unknown[] }) => p.metas.length);
    return metas.reduce((a: number, b: number) => a + b, 0) === 3;
  });
  const state = world.realtime.presence.list(topic);
  const metas = state[String(owner.id)]!.metas;
  t.is(metas.length, 2);
  t.not(metas[0]!.phx_ref, metas[1]!.phx_ref);
  t.is(typeof metas[0]!["online_at"], "string");
  phone.disconnect();
  laptop.disconnect();
});

test("a dropped socket produces a leave diff with the same phx_ref", async (t) => {
  const { world } = t.context;
  const { owner, topic } = await room(world);
  const other = await world.user("o");
  const watcherSocket = await connect(world, owner.token);
  const watcher = watcherSocket.channel(topic, {});
  await join(watcher);
  const leaver = await openRaw(world.url(`token=${other.token}`));
  leaver.sendFrame(["1", "1", topic, "phx_join", {}]);
  t.like(await leaver.next(), [, , , "phx_reply", { status: "ok" }]);
  const state = await leaver.nextEvent("presence_state");
  const ref = (state[4] as Diff["joins"])[String(other.id)]!.metas[0]!.phx_ref;
  const leave = nextEvent<Diff>(watcher, "presence_diff", (d) => String(other.id) in d.leaves);
  leaver.ws.terminate(); // no phx_leave, no close frame
  const diff = await leave;
  t.deepEqual(
    diff.leaves[String(other.id)]!.metas.map((m) => m.phx_ref),
    [ref],
  );
  t.deepEqual(Object.keys(diff), ["joins", "leaves"]);
  watcherSocket.disconnect();
});

test("phx_leave untracks too", async (t) => {
  const { world } = t.context;
  const { owner, topic } = await room(world);
  const a = await connect(world, owner.token);
  const channel = a.channel(topic, {});
  await join(channel);
  t.truthy(world.realtime.presence.list(topic)[String(owner.id)]);
  await within(WAIT_MS, "leave", new Promise((resolve) => channel.leave().receive("ok", resolve)));
  await until("untracked", () => world.realtime.presence.list(topic)[String(owner.id)] === undefined);
  t.pass();
  a.disconnect();
});

test("audience joins ({presence: false}) are not tracked and get no presence events, but do get broadcasts", async (t) => {
  const { world } = t.context;
  const { owner, topic, roomId } = await room(world);
  const raw = await openRaw(world.url(`token=${owner.token}`));
  raw.sendFrame(["1", "1", topic, "phx_join", { presence: false }]);
  t.like(await raw.next(), ["1", "1", topic, "phx_reply", { status: "ok" }]);
  const tracked = await connect(world, (await world.user("t")).token);
  await join(tracked.channel(topic, {}));
  await world.realtime.presence.flush();
  await world.deps.rooms.createMessage(owner.id, roomId, "for the audience");
  const next = await raw.next();
  t.is(next[3], "message:new"); // no presence_state, no presence_diff before it
  t.false(String(owner.id) in world.realtime.presence.list(topic));
  raw.close();
  tracked.disconnect();
});

test("a storm of joins costs each subscriber one coalesced diff per window, not one per join", async (t) => {
  // A window far longer than the test, then an explicit flush: the window's end is ours, not a timer's.
  const world = await createWorld({ presenceWindowMs: 600_000, env: { SOCKETS_PER_USER: "100000" } }); // one user's 100 sockets
  try {
    const { owner, topic } = await room(world);
    const watcher = await openRaw(world.url(`token=${owner.token}`));
    watcher.sendFrame(["1", "1", topic, "phx_join", {}]);
    await watcher.nextEvent("presence_state");
    const joiner = await world.user("j");
    const sockets: Socket[] = await Promise.all(Array.from({ length: 100 }, () => connect(world, joiner.token)));
    await Promise.all(sockets.map((s) => join(s.channel(topic, {}))));
    await world.realtime.presence.flush();
    // A heartbeat after the flush is the marker: every diff the window produced comes before its reply.
    watcher.sendFrame([null, "marker", "phoenix", "heartbeat", {}]);
    const diffs: Diff[] = [];
    for (;;) {
      const frame = await watcher.next();
      if (frame[1] === "marker") break;
      if (frame[3] === "presence_diff") diffs.push(frame[4] as Diff);
    }
    t.is(diffs.length, 1, `${diffs.length} diffs for 100 joins in one window`);
    t.is(diffs[0]?.joins[String(joiner.id)]?.metas.length, 100);
    for (const s of sockets) s.disconnect();
    watcher.close();
  } finally {
    await world.close();
  }
});

// How fast they join is a benchmark's business (benchmarks/README), not this test's. Serial: its
// 2,000 clients share this process with the server, and on a loaded CI machine the file's other
// joins, run beside it, waited past WAIT_MS.
test.serial("2,000 audience sockets join one room and all receive a broadcast", async (t) => {
  const { world } = t.context;
  const { owner, roomId, topic } = await room(world);
  const started = Date.now();
  const clients = [];
  for (let batch = 0; batch < 20; batch++) {
    clients.push(...(await Promise.all(Array.from({ length: 100 }, () => openRaw(world.url(`token=${owner.token}`))))));
  }
  let replies = 0;
  await Promise.all(
    clients.map(async (c) => {
      c.sendFrame(["1", "1", topic, "phx_join", { presence: false }]);
      const reply = await c.next(20000).catch((e: Error) => {
        throw new Error(
          `join reply: ${e.message}; ${replies} replies so far, ${world.realtime.connections()} connections`,
        );
      });
      replies++;
      if (reply[4]["status"] !== "ok") throw new Error(`join failed ${JSON.stringify(reply)}`);
    }),
  );
  const joinedMs = Date.now() - started;
  t.log(`2000 connects+joins in ${joinedMs} ms`);
  await world.deps.rooms.createMessage(owner.id, roomId, "hello audience");
  let got = 0;
  const frames = await Promise.all(
    clients.map((c) =>
      c.next(20000).then((f) => {
        got++;
        return f;
      }),
    ),
  ).catch((e: Error) => {
    throw new Error(`broadcast: ${e.message}, got ${got}, connections ${world.realtime.connections()}`);
  });
  t.true(frames.every((f) => f[3] === "message:new" && f[4]["body"] === "hello audience"));
  t.deepEqual(world.realtime.presence.list(topic), {});
  for (const c of clients) c.ws.terminate();
});
