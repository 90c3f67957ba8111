/**
 * Server lifecycle and failure handling: restart and rejoin, graceful shutdown, channel crashes,
 * rate limits and floods. Each test builds its own world (these tests stop servers).
 */
import test from "ava";
import type { ChannelRoute } from "../../lib/realtime/index.ts";
import { CLOSE } from "../../lib/realtime/index.ts";
import { connect, createWorld, join, nextEvent, push, until, within } from "./helpers.ts";
import { openRaw } from "./raw.ts";

type Diff = { joins: Record<string, unknown>; leaves: Record<string, { metas: Array<{ phx_ref: string }> }> };

test.serial("the phoenix client reconnects and rejoins after a server restart on the same port", async (t) => {
  const world = await createWorld();
  try {
    const user = await world.user();
    const room = await world.deps.rooms.createRoom(user.id, { name: "restart" });
    const socket = await connect(world, user.token);
    const channel = socket.channel(`room:${room.id}`, {});
    await join(channel);
    const port = world.realtime.port;
    const rejoined = within(
      10000,
      "rejoin",
      new Promise<void>((resolve) => {
        let errored = false;
        channel.onError(() => {
          errored = true;
        });
        socket.onOpen(() => {
          if (!errored) return;
          const check = setInterval(() => {
            if (channel.state === "joined") {
              clearInterval(check);
              resolve();
            }
          }, 10);
        });
      }),
    );
    await world.restart();
    t.is(world.realtime.port, port);
    await rejoined;
    const broadcast = nextEvent(channel, "message:new");
    t.is((await push(channel, "message:new", { body: "after restart" })).status, "ok");
    t.like(await broadcast, { body: "after restart" });
    socket.disconnect();
  } finally {
    await world.close();
  }
});

test.serial("graceful shutdown: others get leave diffs first, then every socket closes with 1012", async (t) => {
  const world = await createWorld();
  const a = await world.user("a");
  const b = await world.user("b");
  const room = await world.deps.rooms.createRoom(a.id, { name: "drain" });
  const topic = `room:${room.id}`;
  const ca = await openRaw(world.url(`token=${a.token}`));
  const cb = await openRaw(world.url(`token=${b.token}`));
  ca.sendFrame(["1", "1", topic, "phx_join", {}]);
  await ca.nextEvent("presence_state");
  cb.sendFrame(["1", "1", topic, "phx_join", {}]);
  await cb.nextEvent("presence_state");
  await world.realtime.presence.flush();
  // Join diffs may reach A before or after the reader starts: only leaves are counted below.
  const seenByA: unknown[] = [];
  const closedA = (async () => {
    for (;;) {
      const frame = await ca.next(5000).catch(() => undefined);
      if (frame === undefined) return;
      seenByA.push(frame);
    }
  })();
  await world.realtime.shutdown();
  t.is((await ca.closed).code, CLOSE.SERVICE_RESTART);
  t.is((await cb.closed).code, CLOSE.SERVICE_RESTART);
  await closedA;
  const leaves = seenByA
    .filter((f): f is [null, null, string, string, Diff] => Array.isArray(f) && f[3] === "presence_diff")
    .map((f) => f[4].leaves);
  t.true(
    leaves.some((l) => String(b.id) in l),
    JSON.stringify(seenByA),
  );
  t.deepEqual(world.realtime.presence.list(topic), {});
  await t.throwsAsync(openRaw(world.url(`token=${a.token}`)));
  await world.close();
});

test.serial("a channel crash sends phx_error with that join_ref and cleans up; the socket survives", async (t) => {
  const crashy: ChannelRoute = {
    pattern: "crash:*",
    create: () => ({
      async join() {
        return { status: "ok" };
      },
      async handleIn(event) {
        if (event === "boom") throw new Error("kaboom");
        return { status: "ok", response: {} };
      },
      handleInfo() {},
      terminate() {},
    }),
  };
  const world = await createWorld({ channels: [crashy] });
  try {
    const user = await world.user();
    const c = await openRaw(world.url(`token=${user.token}`));
    c.sendFrame(["4", "4", "crash:1", "phx_join", {}]);
    t.like(await c.next(), ["4", "4", "crash:1", "phx_reply", { status: "ok" }]);
    c.sendFrame(["4", "5", "crash:1", "boom", {}]);
    t.deepEqual(await c.next(), ["4", "4", "crash:1", "phx_error", { reason: "channel_crash" }]);
    c.sendFrame(["4", "6", "crash:1", "ping", {}]);
    t.like(await c.next(), [
      null,
      "6",
      "crash:1",
      "phx_reply",
      { status: "error", response: { reason: "unmatched topic" } },
    ]);
    c.sendFrame(["7", "7", "crash:1", "phx_join", {}]);
    t.like(await c.next(), ["7", "7", "crash:1", "phx_reply", { status: "ok" }]);
    c.close();
  } finally {
    await world.close();
  }
});

test.serial("a crashed room channel untracks its presence (leave diff for others)", async (t) => {
  const world = await createWorld();
  try {
    const user = await world.user();
    const other = await world.user();
    const room = await world.deps.rooms.createRoom(user.id, { name: "crash" });
    const topic = `room:${room.id}`;
    const watcher = await openRaw(world.url(`token=${other.token}`));
    watcher.sendFrame(["1", "1", topic, "phx_join", {}]);
    await watcher.nextEvent("presence_state");
    const c = await openRaw(world.url(`token=${user.token}`));
    c.sendFrame(["2", "2", topic, "phx_join", {}]);
    await c.nextEvent("presence_state");
    // The join must reach the watcher first: a join and a leave within one window cancel out.
    for (;;) {
      const frame = await watcher.nextEvent("presence_diff");
      if (String(user.id) in (frame[4] as Diff).joins) break;
    }
    // A real failure that is neither a domain error nor the database being away: the messages table
    // is gone from under the running server (as after a bad migration). The insert fails, the channel crashes.
    await world.deps.db.schema.renameTable("messages", "messages_away");
    try {
      c.sendFrame(["2", "3", topic, "message:new", { body: "x" }]);
      t.deepEqual(await c.nextEvent("phx_error"), ["2", "2", topic, "phx_error", { reason: "channel_crash" }]);
    } finally {
      await world.deps.db.schema.renameTable("messages_away", "messages");
    }
    for (;;) {
      const frame = await watcher.nextEvent("presence_diff");
      if (String(user.id) in (frame[4] as Diff).leaves) break;
    }
    t.false(String(user.id) in world.realtime.presence.list(topic));
    c.close();
    watcher.close();
  } finally {
    await world.close();
  }
});

test.serial(
  "rate limiting: over the burst → rate_limited replies; a socket past 200 refusals within 10 s is closed with 4429",
  async (t) => {
    const world = await createWorld({ env: { SOCKET_RATE_LIMIT: "5", SOCKET_RATE_BURST: "10" } });
    try {
      const user = await world.user();
      const bystander = await openRaw(world.url(`token=${user.token}`));
      const c = await openRaw(world.url(`token=${user.token}`));
      for (let i = 0; i < 15; i++) c.sendFrame([null, String(i), "phoenix", "heartbeat", {}]);
      const replies = [];
      for (let i = 0; i < 15; i++) replies.push(await c.next());
      t.is(replies.filter((r) => (r[4] as { status: string }).status === "ok").length, 10);
      t.deepEqual(replies[14], [
        null,
        "14",
        "phoenix",
        "phx_reply",
        { status: "error", response: { reason: "rate_limited" } },
      ]);
      const flooder = await openRaw(world.url(`token=${user.token}`));
      for (let i = 0; i < 300; i++) flooder.sendFrame([null, String(i), "phoenix", "heartbeat", {}]);
      t.is((await flooder.closed).code, CLOSE.FLOODING);
      bystander.sendFrame([null, "1", "phoenix", "heartbeat", {}]);
      t.like(await bystander.next(), [null, "1", "phoenix", "phx_reply", { status: "ok" }]);
      c.close();
      bystander.close();
    } finally {
      await world.close();
    }
  },
);

test.serial("a slow consumer is disconnected once its send buffer passes the limit, never skipped", async (t) => {
  const world = await createWorld();
  try {
    const user = await world.user();
    const room = await world.deps.rooms.createRoom(user.id, { name: "slow" });
    const topic = `room:${room.id}`;
    const fast = await openRaw(world.url(`token=${user.token}`));
    const slow = await openRaw(world.url(`token=${user.token}`));
    // Each socket's message:new ids, in arrival order, read off the wire (not through `next()`).
    const ids = new Map([fast, slow].map((c) => [c, [] as number[]]));
    for (const c of [fast, slow]) {
      c.sendFrame(["1", "1", topic, "phx_join", { presence: false }]);
      t.like(await c.next(), ["1", "1", topic, "phx_reply", { status: "ok" }]);
      c.ws.on("message", (data: Buffer) => {
        const frame = JSON.parse(data.toString("utf8")) as [unknown, unknown, string, string, { id?: unknown }];
        if (frame[3] === "message:new" && typeof frame[4].id === "number") ids.get(c)!.push(frame[4].id);
      });
    }
    const connected = world.realtime.connections();
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause(); // stop reading: the kernel buffers fill, then uWS's
    const big = "x".repeat(60_000);
    let sent = 0;
    while (sent < 600 && world.realtime.connections() === connected) {
      sent++;
      const message = {
        id: sent,
        roomId: room.id,
        body: big,
        insertedAt: new Date(),
        author: { id: user.id, name: "u" },
      };
      world.deps.pubsub.broadcast(topic, "message.created", message); // as the rooms context does, without the database
      if (sent % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    await until("the slow socket is dropped", () => world.realtime.connections() === connected - 1);
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const { code } = await slow.closed;
    // README "Close codes": 4503, or 1006 when uWebSockets.js closes the socket first.
    t.true(code === CLOSE.SLOW_CONSUMER || code === 1006, `closed with ${code}, expected 4503 or 1006`);
    const every = Array.from({ length: sent }, (_, i) => i + 1);
    await until("the fast socket gets every broadcast", () => ids.get(fast)!.length >= sent);
    t.deepEqual(ids.get(fast), every, "the fast socket got every broadcast, in order");
    const got = ids.get(slow)!;
    t.true(got.length < sent, `the slow socket got ${got.length} of ${sent}: it was cut off, not kept`);
    t.deepEqual(got, every.slice(0, got.length), "what the slow socket got has no gap: it was closed, never skipped");
    t.log(`slow consumer closed with ${code} after ${got.length} of ${sent} broadcasts of 60 KB`);
    fast.close();
  } finally {
    await world.close();
  }
});
