/**
 * Channels end to end with the real phoenix client: joins, pushes, broadcasts, versions.
 */
import anyTest, { type TestFn } from "ava";
import type { Socket } from "phoenix";
import { messageView } from "../../representations/messages.ts";
import { connect, createWorld, join, nextEvent, push, until, WAIT_MS, within, type World } from "./helpers.ts";
import { openRaw, upgradeStatus } from "./raw.ts";

const test = anyTest as TestFn<{ world: World }>;

test.before(async (t) => {
  t.context.world = await createWorld();
});
test.after.always(async (t) => {
  await t.context.world?.close();
});

async function setup(world: World, options: { private?: boolean } = {}) {
  const owner = await world.user("owner");
  const room = await world.deps.rooms.createRoom(owner.id, { name: "room", private: options.private ?? false });
  return { owner, room, topic: `room:${room.id}` };
}

test("join ok, then presence_state; push message:new gets an ok reply with the message", async (t) => {
  const { world } = t.context;
  const { owner, topic } = await setup(world);
  const socket = await connect(world, owner.token);
  const channel = socket.channel(topic, {});
  const state = nextEvent(channel, "presence_state");
  t.deepEqual(await join(channel), { status: "ok", response: {} });
  const presences = await state;
  t.deepEqual(Object.keys(presences), [String(owner.id)]);
  const reply = await push(channel, "message:new", { body: "hello" });
  t.is(reply.status, "ok");
  t.like(reply.response, { message: { body: "hello", author: { id: owner.id } } });
  socket.disconnect();
});

test("join refused: not_found, unauthorized (private room), unmatched topic", async (t) => {
  const { world } = t.context;
  const { topic } = await setup(world, { private: true });
  const stranger = await world.user("stranger");
  const socket = await connect(world, stranger.token);
  t.deepEqual(await join(socket.channel("room:999999", {})), { status: "error", response: { reason: "not_found" } });
  t.deepEqual(await join(socket.channel("room:abc", {})), { status: "error", response: { reason: "not_found" } });
  t.deepEqual(await join(socket.channel(topic, {})), { status: "error", response: { reason: "unauthorized" } });
  t.deepEqual(await join(socket.channel("lobby:1", {})), { status: "error", response: { reason: "unmatched topic" } });
  socket.disconnect();
});

test("a member of a private room may join", async (t) => {
  const { world } = t.context;
  const { owner, room, topic } = await setup(world, { private: true });
  const member = await world.user("member");
  await world.deps.rooms.addMember(owner.id, room.id, member.id);
  const socket = await connect(world, member.token);
  t.is((await join(socket.channel(topic, {}))).status, "ok");
  socket.disconnect();
});

test("unknown event and invalid payload get error replies; the channel stays usable", async (t) => {
  const { world } = t.context;
  const { owner, topic } = await setup(world);
  const socket = await connect(world, owner.token);
  const channel = socket.channel(topic, {});
  await join(channel);
  t.deepEqual(await push(channel, "dance", {}), { status: "error", response: { reason: "unknown_event" } });
  t.deepEqual(await push(channel, "message:new", { body: "" }), {
    status: "error",
    response: { reason: "invalid", errors: [{ pointer: "/body", detail: "must NOT have fewer than 1 characters" }] },
  });
  const missing = await push(channel, "message:new", { text: "x" });
  t.like(missing.response, { reason: "invalid" });
  t.deepEqual((missing.response["errors"] as Array<{ pointer: string }>).map((e) => e.pointer).sort(), [
    "/body",
    "/text",
  ]);
  t.like(await push(channel, "message:new", { body: "x".repeat(4001) }), {
    status: "error",
    response: { reason: "invalid" },
  });
  t.is((await push(channel, "message:new", { body: "still fine" })).status, "ok");
  socket.disconnect();
});

test("a broadcast reaches every subscriber, rendered in each socket's own api_version", async (t) => {
  const { world } = t.context;
  const { owner, topic } = await setup(world);
  const sockets: Socket[] = [];
  const received: Array<{ version: 1 | 2; payloads: Array<Record<string, unknown>> }> = [];
  for (let i = 0; i < 20; i++) {
    const version = i % 2 === 0 ? 1 : 2;
    const socket = await connect(world, owner.token, { api_version: String(version) });
    sockets.push(socket);
    const channel = socket.channel(topic, { presence: false });
    await join(channel);
    const entry = { version, payloads: [] as Array<Record<string, unknown>> };
    channel.on("message:new", (payload: Record<string, unknown>) => {
      entry.payloads.push(payload);
    });
    received.push(entry as { version: 1 | 2; payloads: Array<Record<string, unknown>> });
  }
  const message = await world.deps.rooms.createMessage(owner.id, Number(topic.slice(5)), "to everyone"); // as REST does
  await until("every subscriber got the broadcast", () => received.every((r) => r.payloads.length > 0));
  for (const { version, payloads } of received) {
    t.deepEqual(payloads, [JSON.parse(JSON.stringify(messageView[version](message, { version, basePath: "" })))]);
  }
  const v1 = received[0]!.payloads[0]!;
  const v2 = received[1]!.payloads[0]!;
  t.is(v1["user_id"], owner.id);
  t.false("author" in v1);
  t.deepEqual(v2["author"], { id: owner.id, name: message.author.name });
  t.false("user_id" in v2);
  t.is((v1["_links"] as { self: { type: string } }).self.type, "application/vnd.app.v1+json");
  for (const s of sockets) s.disconnect();
});

test("the push reply is rendered in the pusher's version and its own broadcast arrives too", async (t) => {
  const { world } = t.context;
  const { owner, topic } = await setup(world);
  const socket = await connect(world, owner.token, { api_version: "1" });
  const channel = socket.channel(topic, {});
  await join(channel);
  const broadcast = nextEvent(channel, "message:new");
  const reply = await push(channel, "message:new", { body: "v1 please" });
  const message = reply.response["message"] as Record<string, unknown>;
  t.is(message["user_id"], owner.id);
  t.deepEqual(await broadcast, message);
  socket.disconnect();
});

test("per-topic order: 200 pushed messages arrive in order at another subscriber", async (t) => {
  const { world } = t.context;
  const { owner, topic } = await setup(world);
  const sender = await connect(world, owner.token);
  const listener = await connect(world, owner.token);
  const out = sender.channel(topic, {});
  const inbox = listener.channel(topic, { presence: false });
  await join(out);
  await join(inbox);
  const bodies: string[] = [];
  const all = within(
    30000,
    "200 broadcasts",
    new Promise<void>((resolve) => {
      inbox.on("message:new", (p: { body: string }) => {
        bodies.push(p.body);
        if (bodies.length === 200) resolve();
      });
    }),
  );
  const replies = [];
  for (let i = 0; i < 200; i++) replies.push(push(out, "message:new", { body: `m${i}` }));
  await Promise.all(replies);
  await all;
  t.deepEqual(
    bodies,
    Array.from({ length: 200 }, (_, i) => `m${i}`),
  );
  sender.disconnect();
  listener.disconnect();
});

test("heartbeat is answered without a join (socket.ping)", async (t) => {
  const { world } = t.context;
  const { owner } = await setup(world);
  const socket = await connect(world, owner.token);
  // ping() only calls back on the heartbeat's own phx_reply; it returns false if it could not send.
  let sent = false;
  await within(
    WAIT_MS,
    "the heartbeat reply",
    new Promise<void>((resolve) => {
      sent = socket.ping(() => resolve());
    }),
  );
  t.true(sent);
  socket.disconnect();
  // The exact frame, on a raw socket that never joined anything.
  const raw = await openRaw(world.url(`token=${owner.token}`));
  raw.sendFrame([null, "77", "phoenix", "heartbeat", {}]);
  t.deepEqual(await raw.next(), [null, "77", "phoenix", "phx_reply", { status: "ok", response: {} }]);
  raw.close();
});

test("the authToken subprotocol works with the real client", async (t) => {
  const { world } = t.context;
  const { owner, topic } = await setup(world);
  const socket = await connect(world, owner.token, {}, { authToken: true });
  t.is((await join(socket.channel(topic, {}))).status, "ok");
  socket.disconnect();
});

test("a bad token never opens: the client sees an error (HTTP 403 at the upgrade)", async (t) => {
  const { world } = t.context;
  await t.throwsAsync(connect(world, "not-a-token"), { message: /socket error/ });
  t.is(await upgradeStatus(world.url("token=not-a-token")), 403);
  const { owner } = await setup(world);
  t.is(await upgradeStatus(world.url(`token=${owner.token}`)), 101, "the same upgrade with a real token opens");
});
