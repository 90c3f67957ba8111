import test from "ava";
import type { PubSubMessage } from "../../lib/pubsub/index.ts";
import type { Message } from "../../lib/rooms/index.ts";
import { mediaType } from "../../lib/versions.ts";
import {
  assertLinks,
  assertProblem,
  assertVersioned,
  call,
  fetchPage,
  ISO_UTC,
  MODES,
  unprefixed,
  walkBothWays,
  type Mode,
} from "../helpers/api.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";

type SignedUp = Awaited<ReturnType<TestServer["signUp"]>>;
let app: TestServer;
let author: SignedUp;
let reader: SignedUp;
let outsider: SignedUp;
/** A room with 25 messages that no test adds to, for the pagination walks. */
let history: { roomId: number; ids: number[] };

test.before(async () => {
  app = await startTestServer();
  author = await app.signUp("Author");
  reader = await app.signUp("Reader");
  outsider = await app.signUp("Outsider");
  const room = await app.deps.rooms.createRoom(author.id, { name: "history" });
  const ids: number[] = [];
  for (let i = 0; i < 25; i++)
    ids.push((await app.deps.rooms.createMessage(i % 2 === 0 ? author.id : reader.id, room.id, `message ${i}`)).id);
  history = { roomId: room.id, ids };
});
test.after.always(async () => {
  await app?.stop();
});

async function createRoom(body: Record<string, unknown>): Promise<number> {
  return (await app.deps.rooms.createRoom(author.id, body as { name: string; private?: boolean })).id;
}

function expectedMessage(
  mode: Mode,
  m: { id: number; roomId: number; body: string; insertedAt: string; author: { id: number; name: string } },
) {
  const type = mediaType(mode.version);
  const _links = {
    self: { href: `${mode.prefix}/rooms/${m.roomId}/messages/${m.id}`, type },
    room: { href: `${mode.prefix}/rooms/${m.roomId}`, type },
    author: { href: `${mode.prefix}/users/${m.author.id}`, type },
  };
  return mode.version === 1
    ? { id: m.id, room_id: m.roomId, user_id: m.author.id, body: m.body, inserted_at: m.insertedAt, _links }
    : { id: m.id, room_id: m.roomId, body: m.body, inserted_at: m.insertedAt, author: m.author, _links };
}

for (const mode of MODES) {
  test(`GET /rooms/:id/messages walks newest first, forward and back (${mode.label})`, async (t) => {
    const path = `/rooms/${history.roomId}/messages`;
    const pages = await walkBothWays(t, app, mode, `${path}?limit=6`, "messages", reader.token);
    const newestFirst = [...history.ids].reverse();
    t.deepEqual(
      pages,
      [0, 6, 12, 18, 24].map((i) => newestFirst.slice(i, i + 6)),
    );

    const { res, items } = await fetchPage(t, app, mode, path, "messages", reader.token);
    t.deepEqual(
      items.map((m) => m["id"]),
      newestFirst.slice(0, 20),
      "20 per page by default",
    );
    t.is(res.body._links.next.href.startsWith(`${mode.prefix}${path}?limit=20&cursor=`), true);
    t.is(res.body._links.prev, undefined);
    for (const item of items) {
      t.is(item["room_id"], history.roomId);
      t.regex(item["inserted_at"] as string, ISO_UTC);
    }
    const last = await call(app, mode, "GET", unprefixed(res.body._links.next.href, mode), { token: reader.token });
    t.deepEqual(
      last.body._embedded.messages.map((m: { id: number }) => m.id),
      newestFirst.slice(20),
    );
    t.is(last.body._links.next, undefined);
  });

  test(`POST /rooms/:id/messages creates a message and GET shows it (${mode.label})`, async (t) => {
    const roomId = await createRoom({ name: "chat" });
    const before = Date.now();
    const res = await call(app, mode, "POST", `/rooms/${roomId}/messages`, {
      token: author.token,
      json: { body: `hello ${mode.label}` },
    });
    assertVersioned(t, res, mode, 201, `/rooms/${roomId}/messages`);
    const id = res.body.id as number;
    t.true(Number.isSafeInteger(id));
    t.is(res.headers.get("location"), `${mode.prefix}/rooms/${roomId}/messages/${id}`);
    t.regex(res.body.inserted_at, ISO_UTC);
    t.true(Math.abs(Date.parse(res.body.inserted_at) - before) < 60_000);
    t.deepEqual(
      res.body,
      expectedMessage(mode, {
        id,
        roomId,
        body: `hello ${mode.label}`,
        insertedAt: res.body.inserted_at,
        author: { id: author.id, name: "Author" },
      }),
    );
    assertLinks(t, res.body, mode);

    const shown = await call(app, mode, "GET", unprefixed(res.headers.get("location")!, mode), { token: reader.token });
    assertVersioned(t, shown, mode, 200, `/rooms/${roomId}/messages/${id}`);
    t.deepEqual(shown.body, res.body);
    const listed = await call(app, mode, "GET", `/rooms/${roomId}/messages`, { token: reader.token });
    t.deepEqual(listed.body._embedded.messages, [res.body]);
  });

  test(`a private room's messages are 404 to outsiders and open to members (${mode.label})`, async (t) => {
    const roomId = await createRoom({ name: "private chat", private: true });
    await app.deps.rooms.addMember(author.id, roomId, reader.id);
    const message = await app.deps.rooms.createMessage(author.id, roomId, "secret");
    const paths = [`/rooms/${roomId}/messages`, `/rooms/${roomId}/messages/${message.id}`];
    for (const path of paths) {
      assertProblem(t, await call(app, mode, "GET", path, { token: outsider.token }), 404);
      assertVersioned(t, await call(app, mode, "GET", path, { token: reader.token }), mode, 200, path);
    }
    assertProblem(
      t,
      await call(app, mode, "POST", paths[0]!, { token: outsider.token, json: { body: "let me in" } }),
      404,
    );
    assertVersioned(
      t,
      await call(app, mode, "POST", paths[0]!, { token: reader.token, json: { body: "hi" } }),
      mode,
      201,
      paths[0]!,
    );
    const stored = await app.deps.db("messages").where({ room_id: roomId }).orderBy("id").pluck("body");
    t.deepEqual(stored, ["secret", "hi"]);
  });

  test(`a message posted over REST is broadcast on the room's topic (${mode.label})`, async (t) => {
    const roomId = await createRoom({ name: "broadcast" });
    const received: PubSubMessage[] = [];
    const off = app.deps.pubsub.subscribe(`room:${roomId}`, (message) => received.push(message));
    try {
      const res = await call(app, mode, "POST", `/rooms/${roomId}/messages`, {
        token: reader.token,
        json: { body: "to everyone" },
      });
      t.is(res.status, 201);
      // Local PubSub delivers synchronously, before the response is written.
      t.is(received.length, 1);
      const [message] = received;
      t.is(message?.topic, `room:${roomId}`);
      t.is(message?.event, "message.created");
      const payload = message?.payload as Message;
      t.like(payload, { id: res.body.id, roomId, body: "to everyone", author: { id: reader.id, name: "Reader" } });
      t.is(payload.insertedAt.toISOString(), res.body.inserted_at);
    } finally {
      off();
    }
  });
}

test("GET /rooms/:id/messages/:mid is 404 for a message of another room or no message", async (t) => {
  const elsewhere = await createRoom({ name: "elsewhere" });
  const firstId = history.ids[0]!;
  assertProblem(t, await app.request("GET", `/rooms/${elsewhere}/messages/${firstId}`, { token: reader.token }), 404);
  for (const mid of ["999999", "abc", "0"]) {
    assertProblem(
      t,
      await app.request("GET", `/rooms/${history.roomId}/messages/${mid}`, { token: reader.token }),
      404,
    );
  }
  t.is(
    (await app.request("GET", `/rooms/${history.roomId}/messages/${firstId}`, { token: reader.token })).body.body,
    "message 0",
  );
});

test("POST /rooms/:id/messages takes a body of 1 to 4000 characters", async (t) => {
  const roomId = await createRoom({ name: "limits" });
  const post = (json: unknown) => app.request("POST", `/rooms/${roomId}/messages`, { token: author.token, json });
  const longest = await post({ body: "é".repeat(4000) });
  t.is(longest.status, 201);
  t.is(longest.body.body, "é".repeat(4000));
  t.is((await post({ body: "x" })).status, 201);
  for (const json of [{ body: "" }, { body: "x".repeat(4001) }, {}, { body: 42 }, { body: "x", room_id: 1 }]) {
    const res = await post(json);
    assertProblem(t, res, 422);
    t.true(Array.isArray(res.body.errors), JSON.stringify(json));
  }
  t.is(
    await app.deps
      .db("messages")
      .where({ room_id: roomId })
      .count<{ n: number }[]>("* as n")
      .then((r) => Number(r[0]?.n)),
    2,
  );
});

test("GET /rooms/:id/messages checks limit", async (t) => {
  const path = `/rooms/${history.roomId}/messages`;
  const hundred = await app.request("GET", `${path}?limit=100`, { token: reader.token });
  t.is(hundred.body._embedded.messages.length, 25);
  t.is(hundred.body._links.next, undefined);
  t.is(hundred.headers.get("link"), null, "no next/prev, no Link header");
  for (const query of ["limit=0", "limit=101", "cursor=eyJkIjoieCJ9"])
    assertProblem(t, await app.request("GET", `${path}?${query}`, { token: reader.token }), 400);
});
