/**
 * Frame-level protocol tests with a raw `ws` client: bad input, limits, refs and join_refs, the
 * upgrade. After each bad input another socket must keep working.
 */
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { SignJWT } from "jose";
import { createHmac } from "node:crypto";
import { request } from "node:http";
import { CLOSE } from "../../lib/realtime/index.ts";
import { createWorld, type World } from "./helpers.ts";
import { openRaw, upgradeStatus, type RawClient } from "./raw.ts";

type Ctx = { world: World; token: string; userId: number; topic: string; bystander: RawClient };
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const world = await createWorld();
  const user = await world.user("raw");
  const room = await world.deps.rooms.createRoom(user.id, { name: "frames" });
  t.context = {
    world,
    token: user.token,
    userId: user.id,
    topic: `room:${room.id}`,
    bystander: await openRaw(world.url(`token=${user.token}`)),
  };
});
test.after.always(async (t) => {
  await t.context.world?.close();
});

let refs = 1000;
/** Another socket still gets heartbeat replies. */
async function bystanderWorks(t: ExecutionContext<Ctx>) {
  const ref = String(refs++);
  t.context.bystander.sendFrame([null, ref, "phoenix", "heartbeat", {}]);
  t.like(await t.context.bystander.next(), [null, ref, "phoenix", "phx_reply", { status: "ok", response: {} }]);
}

const client = (t: { context: { world: World; token: string } }, query = "") =>
  openRaw(t.context.world.url(`token=${t.context.token}${query}`));

const unrecoverable: Array<[string, string]> = [
  ["not JSON", "{nope"],
  ["not an array", '{"topic":"phoenix"}'],
  ["a numeric ref", '[null,1,"phoenix","heartbeat",{}]'],
  ["a null ref and a bad payload", '[null,null,"phoenix","heartbeat",null]'],
];
for (const [name, text] of unrecoverable) {
  test.serial(`${name} closes the socket with 4400; others keep working`, async (t) => {
    const c = await client(t);
    c.send(text);
    t.is((await c.closed).code, CLOSE.MALFORMED);
    await bystanderWorks(t);
  });
}

const recoverable: Array<[string, unknown[]]> = [
  ["wrong arity", [null, "7", "phoenix", "heartbeat"]],
  ["extra elements", [null, "7", "phoenix", "heartbeat", {}, 1]],
  ["a numeric join_ref", [1, "7", "phoenix", "heartbeat", {}]],
  ["a non-string topic", [null, "7", 12, "heartbeat", {}]],
  ["a non-string event", [null, "7", "phoenix", false, {}]],
  ["an array payload", [null, "7", "phoenix", "heartbeat", []]],
  ["a null payload", [null, "7", "phoenix", "heartbeat", null]],
];
for (const [name, frame] of recoverable) {
  test.serial(`${name} gets an error reply with the ref; the socket stays open`, async (t) => {
    const c = await client(t);
    c.sendFrame(frame);
    const reply = await c.next();
    t.like(reply, [
      null,
      "7",
      typeof frame[2] === "string" ? frame[2] : "phoenix",
      "phx_reply",
      { status: "error", response: { reason: "malformed" } },
    ]);
    c.sendFrame([null, "8", "phoenix", "heartbeat", {}]);
    t.like(await c.next(), [null, "8", "phoenix", "phx_reply", { status: "ok" }]);
    c.close();
    await bystanderWorks(t);
  });
}

test.serial("a binary frame closes with 1003", async (t) => {
  const c = await client(t);
  c.send(Buffer.from('[null,"1","phoenix","heartbeat",{}]'), true);
  t.is((await c.closed).code, CLOSE.UNSUPPORTED_DATA);
  await bystanderWorks(t);
});

test.serial("a frame over 64 KiB closes with 1009; exactly 64 KiB is fine", async (t) => {
  const ok = await client(t);
  const pad = (size: number) => {
    const head = `[null,"1","phoenix","heartbeat",{"pad":"`;
    const tail = `"}]`;
    return head + "x".repeat(size - head.length - tail.length) + tail;
  };
  ok.send(pad(64 * 1024));
  t.like(await ok.next(), [null, "1", "phoenix", "phx_reply", { status: "ok" }]);
  ok.close();
  const big = await client(t);
  big.send(pad(64 * 1024 + 1));
  t.is((await big.closed).code, CLOSE.MESSAGE_TOO_BIG);
  await bystanderWorks(t);
});

test.serial("heartbeat needs no join and echoes the ref string", async (t) => {
  const c = await client(t);
  c.sendFrame([null, "abc-1", "phoenix", "heartbeat", {}]);
  t.deepEqual(await c.next(), [null, "abc-1", "phoenix", "phx_reply", { status: "ok", response: {} }]);
  c.close();
});

test.serial(
  "a push to a topic that is not joined → unmatched topic with join_ref null; phx_leave of it → ok",
  async (t) => {
    const c = await client(t);
    c.sendFrame(["5", "6", t.context.topic, "message:new", { body: "x" }]);
    t.deepEqual(await c.next(), [
      null,
      "6",
      t.context.topic,
      "phx_reply",
      { status: "error", response: { reason: "unmatched topic" } },
    ]);
    c.sendFrame(["5", "7", "room:1", "phx_leave", {}]);
    t.like(await c.next(), [, "7", "room:1", "phx_reply", { status: "ok" }]);
    c.sendFrame(["9", "9", "nothing:here", "phx_join", {}]);
    t.deepEqual(await c.next(), [
      null,
      "9",
      "nothing:here",
      "phx_reply",
      { status: "error", response: { reason: "unmatched topic" } },
    ]);
    c.close();
  },
);

test.serial("join reply comes first, then presence_state; stale join_refs are ignored", async (t) => {
  const c = await client(t);
  const { topic } = t.context;
  c.sendFrame(["3", "3", topic, "phx_join", {}]);
  t.deepEqual(await c.next(), ["3", "3", topic, "phx_reply", { status: "ok", response: {} }]);
  const state = await c.next();
  t.like(state, ["3", null, topic, "presence_state"]);
  c.sendFrame(["2", "4", topic, "nope", {}]); // stale join_ref: silently ignored
  c.sendFrame(["3", "5", topic, "nope", {}]);
  t.deepEqual(await c.nextEvent("phx_reply"), [
    "3",
    "5",
    topic,
    "phx_reply",
    { status: "error", response: { reason: "unknown_event" } },
  ]);
  c.close();
});

test.serial(
  "a burst of pushes is stored by one insert; broadcasts and replies keep arrival order, and a leave waits for them",
  async (t) => {
    const c = await client(t);
    const { topic, world } = t.context;
    c.sendFrame(["1", "1", topic, "phx_join", { presence: false }]);
    t.like(await c.next(), ["1", "1", topic, "phx_reply", { status: "ok" }]);
    let inserts = 0;
    const onQuery = (q: { sql: string }) => {
      if (/insert into messages/i.test(q.sql)) inserts++;
    };
    world.deps.db.on("query", onQuery);
    try {
      const frames = Array.from({ length: 20 }, (_, i) =>
        JSON.stringify(["1", String(10 + i), topic, i === 7 ? "bogus" : "message:new", { body: `burst ${i}` }]),
      );
      for (const frame of frames) c.send(frame);
      c.sendFrame(["1", "99", topic, "phx_leave", {}]);
      const seen: unknown[][] = [];
      while (seen.length < 20 + 19) seen.push(await c.next());
      const replies = seen.filter((f) => f[3] === "phx_reply");
      const broadcasts = seen.filter((f) => f[3] === "message:new");
      t.deepEqual(
        replies.map((f) => f[1]),
        Array.from({ length: 20 }, (_, i) => String(10 + i)),
        "replies in arrival order",
      );
      t.like(replies[7], [, "17", topic, "phx_reply", { status: "error", response: { reason: "unknown_event" } }]);
      t.deepEqual(
        broadcasts.map((f) => (f[4] as { body: string }).body),
        Array.from({ length: 20 }, (_, i) => `burst ${i}`).filter((_, i) => i !== 7),
      );
      const ids = broadcasts.map((f) => (f[4] as { id: number }).id);
      t.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
      );
      for (const reply of replies.filter((f) => f[1] !== "17"))
        t.true(ids.includes((reply[4] as { response: { message: { id: number } } }).response.message.id));
      t.like(
        await c.next(),
        ["1", "99", topic, "phx_reply", { status: "ok" }],
        "the leave is answered after every push",
      );
      t.true(inserts < 19, `${inserts} inserts for 19 messages`);
    } finally {
      world.deps.db.off("query", onQuery);
      c.close();
    }
  },
);

test.serial(
  "a duplicate join closes the old channel with phx_close carrying the OLD join_ref, after the new reply",
  async (t) => {
    const c = await client(t);
    const { topic } = t.context;
    c.sendFrame(["3", "3", topic, "phx_join", { presence: false }]);
    t.like(await c.next(), ["3", "3", topic, "phx_reply", { status: "ok" }]);
    c.sendFrame(["8", "8", topic, "phx_join", { presence: false }]);
    t.like(await c.next(), ["8", "8", topic, "phx_reply", { status: "ok" }]);
    t.deepEqual(await c.next(), ["3", "3", topic, "phx_close", {}]);
    c.sendFrame(["8", "9", topic, "x", {}]);
    t.like(await c.next(), ["8", "9", topic, "phx_reply", { status: "error", response: { reason: "unknown_event" } }]);
    c.close();
  },
);

test.serial("phx_leave replies ok, then the socket no longer receives the topic", async (t) => {
  const c = await client(t);
  const { topic, world, userId } = t.context;
  c.sendFrame(["3", "3", topic, "phx_join", { presence: false }]);
  await c.next();
  c.sendFrame(["3", "4", topic, "phx_leave", {}]);
  t.deepEqual(await c.next(), ["3", "4", topic, "phx_reply", { status: "ok", response: {} }]);
  await world.deps.rooms.createMessage(userId, Number(topic.slice(5)), "after leave");
  c.sendFrame([null, "5", "phoenix", "heartbeat", {}]);
  t.like(await c.next(), [null, "5", "phoenix", "phx_reply"]); // and no message:new before it
  c.close();
});

test.serial("more than 100 joined topics → too_many_channels", async (t) => {
  const { world, userId } = t.context;
  const c = await client(t);
  for (let i = 0; i < 101; i++) {
    const room = await world.deps.rooms.createRoom(userId, { name: `many${i}` });
    c.sendFrame([String(i), String(i), `room:${room.id}`, "phx_join", { presence: false }]);
    const reply = await c.next();
    if (i < 100) t.is(reply[4]["status"], "ok");
    else t.deepEqual(reply[4], { status: "error", response: { reason: "too_many_channels" } });
  }
  c.close();
  await bystanderWorks(t);
});

test.serial("upgrade: missing, bad or expired token, bad vsn or api_version → 403; other paths → 404", async (t) => {
  const { world, token, userId } = t.context;
  const base = `ws://127.0.0.1:${world.realtime.port}`;
  const key = createHmac("sha256", world.deps.config.secretKeyBase).update("hypercast socket token v1").digest();
  const expired = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(String(userId))
    .setAudience("hypercast:socket")
    .setIssuedAt(Math.floor(Date.now() / 1000) - 100)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
    .sign(key);
  t.is(await upgradeStatus(`${base}/socket/websocket?vsn=2.0.0`), 403);
  t.is(await upgradeStatus(`${base}/socket/websocket?vsn=2.0.0&token=garbage`), 403);
  t.is(await upgradeStatus(`${base}/socket/websocket?vsn=2.0.0&token=${expired}`), 403);
  t.is(await upgradeStatus(`${base}/socket/websocket?vsn=1.0.0&token=${token}`), 403);
  t.is(await upgradeStatus(`${base}/socket/websocket?token=${token}`), 403);
  t.is(await upgradeStatus(`${base}/socket/websocket?vsn=2.0.0&token=${token}&api_version=3`), 403);
  t.is(await upgradeStatus(`${base}/elsewhere?vsn=2.0.0&token=${token}`), 404);
  t.is(await upgradeStatus(`${base}/socket/websocket?&&vsn=2.0.0&user[id]=1&token=${token}&api_version=1`), 101);
  const refused = await rawUpgrade(world.realtime.port, "/socket/websocket?vsn=2.0.0&token=nope");
  t.is(refused.status, 403);
  t.is(refused.body, "");
  await bystanderWorks(t);
});

test.serial("authToken subprotocol: answered with phoenix, never the token protocol", async (t) => {
  const b64 = Buffer.from(t.context.token, "latin1").toString("base64").replace(/=+$/, "");
  const c = await openRaw(t.context.world.url(), ["phoenix", `base64url.bearer.phx.${b64}`]);
  t.is(c.protocol, "phoenix");
  c.sendFrame([null, "1", "phoenix", "heartbeat", {}]);
  t.like(await c.next(), [null, "1", "phoenix", "phx_reply", { status: "ok" }]);
  c.close();
  t.is(await upgradeStatus(t.context.world.url(), ["phoenix", "base64url.bearer.phx.Z2FyYmFnZQ"]), 403);
});

function rawUpgrade(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port,
      path,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("upgrade", () => reject(new Error("unexpectedly upgraded")));
    req.on("error", reject);
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}
