/**
 * POST /rooms/{id}/messages retried with the same Idempotency-Key creates one message, never two,
 * when the first answer is lost after the insert or the first request is cut mid-insert: real
 * database cuts through a TCP proxy (tests/helpers/proxied-database.ts), a real socket joined to
 * the room to see that a stored message is broadcast.
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { startProxiedDatabase, type ProxiedDatabase } from "../helpers/proxied-database.ts";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";

let database: ProxiedDatabase;
let app: TestServer;

test.before(async () => {
  database = await startProxiedDatabase();
  app = await startTestServer(database.env);
});
test.after.always(async () => {
  await database?.proxy.restore();
  await app?.stop();
  await database?.close();
});

/** A socket joined to the room, collecting the ids of the `message:new` broadcasts it receives. */
async function listen(socketToken: string, roomId: number): Promise<{ ids: number[]; close(): void }> {
  const ws = new WebSocket(`${app.server.socketUrl}/websocket?vsn=2.0.0&token=${encodeURIComponent(socketToken)}`);
  const ids: number[] = [];
  let joined: () => void = () => {};
  const ready = new Promise<void>((resolve) => (joined = resolve));
  ws.on("message", (data) => {
    const [, ref, , event, payload] = JSON.parse(String(data)) as [unknown, unknown, string, string, { id?: number }];
    if (event === "phx_reply" && ref === "1") joined();
    if (event === "message:new" && typeof payload.id === "number") ids.push(payload.id);
  });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  ws.send(JSON.stringify(["1", "1", `room:${roomId}`, "phx_join", {}]));
  await ready;
  return { ids, close: () => ws.terminate() };
}

async function eventually<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 15000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Cuts the database the moment knex sees `event` for the message insert. */
function cutAt(event: "query" | "query-response"): void {
  const db = app.deps.db;
  const handler = (...args: unknown[]) => {
    const query = (event === "query" ? args[0] : args[1]) as { sql?: string };
    if (!/insert into messages/i.test(query.sql ?? "")) return;
    db.off(event, handler);
    void database.proxy.cut();
  };
  db.on(event, handler);
}

/** Retries as a client would after a failure: until the answer is neither 409 (in flight) nor 503. */
async function retry(send: () => Promise<TestResponse>): Promise<TestResponse> {
  return eventually(async () => {
    const res = await send();
    return res.status === 409 || res.status === 503 ? undefined : res;
  }, "a final answer to the retry");
}

async function setUp() {
  const ada = await app.signUp("Ada");
  const room = await app.request("POST", "/rooms", {
    token: ada.token,
    json: { name: `r-${randomBytes(3).toString("hex")}` },
  });
  const socket = await listen(ada.socketToken, room.body.id);
  const body = `hello ${randomBytes(6).toString("hex")}`;
  const key = randomBytes(16).toString("hex");
  const post = () =>
    app.request("POST", `/rooms/${room.body.id}/messages`, {
      token: ada.token,
      json: { body },
      headers: { "idempotency-key": key },
    });
  const stored = async () =>
    (await app.deps.db("messages").where({ body }).select("id")).map((r: { id: number }) => r.id);
  return { ada, room, socket, body, post, stored };
}

test.serial(
  "the answer is lost after the insert (the database goes away before the result is kept): the retry gets the same message, one row",
  async (t) => {
    const { socket, post, stored } = await setUp();
    t.teardown(() => socket.close());
    cutAt("query-response");
    const first = await post(); // the message is stored; keeping the result fails; this answer is "lost"
    await database.proxy.restore();
    const again = await retry(post);
    t.is(again.status, 201);
    t.is(again.headers.get("idempotent-replayed"), "true", "the kept result, stored once the database was back");
    if (first.status === 201) t.is(again.body.id, first.body.id);
    const ids = await stored();
    t.is(ids.length, 1, "one message, never two");
    t.is(again.body.id, ids[0]);
    await eventually(() => (socket.ids.includes(ids[0]!) ? true : undefined), "the broadcast of the stored message");
  },
);

test.serial(
  "a POST cut at its insert before it reaches the database answers 503; the retry after the restore stores exactly one message, broadcast",
  async (t) => {
    const { socket, post, stored } = await setUp();
    t.teardown(() => socket.close());
    cutAt("query");
    const first = await post();
    t.is(first.status, 503);
    t.truthy(first.headers.get("retry-after"));
    const storedDuringCut = await eventually(async () => {
      await database.proxy.restore();
      return stored().catch(() => undefined);
    }, "the database back");
    t.log(
      storedDuringCut.length === 1
        ? "the cut insert had been committed: the retry found it"
        : "the cut insert never ran: the retry stored it",
    );
    const again = await retry(post);
    t.is(again.status, 201);
    const ids = await stored();
    t.is(ids.length, 1, "one message, never two");
    t.is(again.body.id, ids[0]);
    await eventually(() => (socket.ids.includes(ids[0]!) ? true : undefined), "the broadcast of the stored message");
  },
);

test.serial(
  "a POST whose insert ran but whose answer was lost (the database cut as it answered) gets 503; the retry after the restore returns that message, exactly one row, broadcast",
  async (t) => {
    const { socket, post, stored } = await setUp();
    t.teardown(() => socket.close());
    // The proxy forwards the keyed insert, drops the database's answer and cuts: the row is committed
    // (one autocommit statement), the server never learns it.
    const cut = database.proxy.cutOnAnswer("insert into messages");
    const first = await post();
    await cut;
    t.is(first.status, 503, "the lost answer is a database failure to the client");
    t.truthy(first.headers.get("retry-after"));
    const storedDuringCut = await eventually(async () => {
      await database.proxy.restore();
      return stored().catch(() => undefined);
    }, "the database back");
    t.is(storedDuringCut.length, 1, "the insert whose answer was lost had been committed");
    const again = await retry(post);
    t.is(again.status, 201);
    t.is(again.body.id, storedDuringCut[0], "the retry returns the message the lost insert stored");
    t.deepEqual(await stored(), storedDuringCut, "one message, never two");
    await eventually(
      () => (socket.ids.includes(storedDuringCut[0]!) ? true : undefined),
      "the broadcast of the stored message",
    );
  },
);

test.serial(
  "the insert itself is keyed: a second createMessage with the same key returns the first message and broadcasts it; another body is refused",
  async (t) => {
    const { ada, room, socket, body, stored } = await setUp();
    t.teardown(() => socket.close());
    const key = randomBytes(16).toString("hex");
    // Two calls at once, as a client retrying a request whose answer it gave up on.
    const [a, b] = await Promise.all([
      app.deps.rooms.createMessage(ada.id, room.body.id, body, { requestKey: key }),
      app.deps.rooms.createMessage(ada.id, room.body.id, body, { requestKey: key }),
    ]);
    t.is(a.id, b.id);
    t.deepEqual(await stored(), [a.id]);
    await eventually(() => (socket.ids.includes(a.id) ? true : undefined), "the broadcast");
    await t.throwsAsync(app.deps.rooms.createMessage(ada.id, room.body.id, `${body} changed`, { requestKey: key }), {
      message: /different message/,
    });
    // Without a key every call is a new message.
    const [c, d] = await Promise.all([
      app.deps.rooms.createMessage(ada.id, room.body.id, body),
      app.deps.rooms.createMessage(ada.id, room.body.id, body),
    ]);
    t.not(c.id, d.id);
  },
);
