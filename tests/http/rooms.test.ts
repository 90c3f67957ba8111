import test from "ava";
import { mediaType } from "../../lib/versions.ts";
import { assertLinks, assertProblem, assertVersioned, call, MODES, walkBothWays, type Mode } from "../helpers/api.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";

type SignedUp = Awaited<ReturnType<TestServer["signUp"]>>;
let app: TestServer;
let owner: SignedUp;
let member: SignedUp;
let outsider: SignedUp;

test.before(async () => {
  app = await startTestServer();
  owner = await app.signUp("Owner");
  member = await app.signUp("Member");
  outsider = await app.signUp("Outsider");
  // A mix for the listing walk: public rooms, the viewer's private rooms, others' private rooms.
  for (let i = 0; i < 9; i++) await app.deps.rooms.createRoom(owner.id, { name: `public ${i}` });
  for (let i = 0; i < 3; i++)
    await app.deps.rooms.createRoom(member.id, { name: `member's private ${i}`, private: true });
  for (let i = 0; i < 3; i++) {
    const room = await app.deps.rooms.createRoom(owner.id, { name: `owner's private ${i}`, private: true });
    if (i === 0) await app.deps.rooms.addMember(owner.id, room.id, member.id);
  }
});
test.after.always(async () => {
  await app?.stop();
});

async function createRoom(user: SignedUp, body: Record<string, unknown>): Promise<number> {
  const res = await app.request("POST", "/rooms", { token: user.token, json: body });
  if (res.status !== 201) throw new Error(`room not created: ${res.status} ${res.text}`);
  return res.body.id as number;
}

function expectedRoom(mode: Mode, id: number, name: string, isPrivate: boolean) {
  const type = mediaType(mode.version);
  const p = mode.prefix;
  return {
    id,
    name,
    private: isPrivate,
    _links: {
      self: { href: `${p}/rooms/${id}`, type },
      messages: { href: `${p}/rooms/${id}/messages`, type },
      members: { href: `${p}/rooms/${id}/members`, type },
      presence: { href: `${p}/rooms/${id}/presence`, type },
    },
  };
}

// Serial tests run before the concurrent ones, so no room appears in the middle of the walk.
for (const mode of MODES) {
  test.serial(
    `GET /rooms lists public rooms and the viewer's private rooms, 4 at a time (${mode.label})`,
    async (t) => {
      const visible: number[] = await app.deps
        .db("rooms")
        .where("private", false)
        .orWhereIn("id", app.deps.db("memberships").where("user_id", member.id).select("room_id"))
        .orderBy("id")
        .pluck("id");
      const pages = await walkBothWays(t, app, mode, "/rooms?limit=4", "rooms", member.token);
      t.deepEqual(pages.flat(), visible);
      t.is(visible.length, 9 + 3 + 1);
      t.true(pages.length >= 4);
      const first = await call(app, mode, "GET", "/rooms", { token: outsider.token });
      t.is(first.body._embedded.rooms.length, 9, "an outsider sees only the public rooms");
      t.true(first.body._embedded.rooms.every((r: { private: boolean }) => !r.private));
    },
  );
}

for (const mode of MODES) {
  test(`POST /rooms creates a room owned by its creator (${mode.label})`, async (t) => {
    const res = await call(app, mode, "POST", "/rooms", {
      token: owner.token,
      json: { name: `created ${mode.label}` },
    });
    assertVersioned(t, res, mode, 201, "/rooms");
    const id = res.body.id as number;
    t.true(Number.isSafeInteger(id));
    t.is(res.headers.get("location"), `${mode.prefix}/rooms/${id}`);
    t.deepEqual(res.body, expectedRoom(mode, id, `created ${mode.label}`, false));
    const members = await call(app, mode, "GET", `/rooms/${id}/members`, { token: owner.token });
    t.deepEqual(
      members.body._embedded.members.map((m: { user_id: number }) => m.user_id),
      [owner.id],
    );
    t.is((await app.deps.rooms.getRoom(owner.id, id)).ownerId, owner.id);
  });

  test(`GET /rooms/:id shows a public room to anyone, a private room only to its members (${mode.label})`, async (t) => {
    const open = await createRoom(owner, { name: "open" });
    const shown = await call(app, mode, "GET", `/rooms/${open}`, { token: outsider.token });
    assertVersioned(t, shown, mode, 200, `/rooms/${open}`);
    t.deepEqual(shown.body, expectedRoom(mode, open, "open", false));

    const secret = await createRoom(owner, { name: "secret", private: true });
    const own = await call(app, mode, "GET", `/rooms/${secret}`, { token: owner.token });
    assertVersioned(t, own, mode, 200, `/rooms/${secret}`);
    t.deepEqual(own.body, expectedRoom(mode, secret, "secret", true));
    for (const path of [
      `/rooms/${secret}`,
      `/rooms/${secret}/members`,
      `/rooms/${secret}/messages`,
      `/rooms/${secret}/presence`,
    ]) {
      assertProblem(t, await call(app, mode, "GET", path, { token: outsider.token }), 404);
    }
    assertProblem(
      t,
      await call(app, mode, "POST", `/rooms/${secret}/messages`, { token: outsider.token, json: { body: "hi" } }),
      404,
    );
    assertProblem(
      t,
      await call(app, mode, "POST", `/rooms/${secret}/members`, {
        token: outsider.token,
        json: { user_id: outsider.id },
      }),
      404,
    );
  });

  test(`POST /rooms/:id/members lets the owner add a member, who then sees the private room (${mode.label})`, async (t) => {
    const secret = await createRoom(owner, { name: "club", private: true });
    const guest = await app.signUp("Guest");
    const added = await call(app, mode, "POST", `/rooms/${secret}/members`, {
      token: owner.token,
      json: { user_id: guest.id },
    });
    assertVersioned(t, added, mode, 201, `/rooms/${secret}/members`);
    const type = mediaType(mode.version);
    t.deepEqual(added.body, {
      room_id: secret,
      user_id: guest.id,
      _links: {
        self: { href: `${mode.prefix}/rooms/${secret}/members`, type },
        room: { href: `${mode.prefix}/rooms/${secret}`, type },
        user: { href: `${mode.prefix}/users/${guest.id}`, type },
      },
    });
    const again = await call(app, mode, "POST", `/rooms/${secret}/members`, {
      token: owner.token,
      json: { user_id: guest.id },
    });
    assertVersioned(t, again, mode, 200, `/rooms/${secret}/members`);
    t.deepEqual(again.body, added.body, "adding an existing member changes nothing");

    for (const path of [
      `/rooms/${secret}`,
      `/rooms/${secret}/members`,
      `/rooms/${secret}/messages`,
      `/rooms/${secret}/presence`,
    ]) {
      t.is((await call(app, mode, "GET", path, { token: guest.token })).status, 200, path);
    }
    const listed = await call(app, mode, "GET", "/rooms?limit=100", { token: guest.token });
    t.true(listed.body._embedded.rooms.some((r: { id: number }) => r.id === secret));
    t.is(
      (await call(app, mode, "POST", `/rooms/${secret}/messages`, { token: guest.token, json: { body: "hi" } })).status,
      201,
    );

    // A member who is not the owner may not add anyone.
    const denied = await call(app, mode, "POST", `/rooms/${secret}/members`, {
      token: guest.token,
      json: { user_id: outsider.id },
    });
    assertProblem(t, denied, 403);
    assertProblem(t, await call(app, mode, "GET", `/rooms/${secret}`, { token: outsider.token }), 404);
  });

  test(`POST /rooms/:id/members on a public room is still owner-only (${mode.label})`, async (t) => {
    const open = await createRoom(owner, { name: "lobby" });
    const res = await call(app, mode, "POST", `/rooms/${open}/members`, {
      token: outsider.token,
      json: { user_id: outsider.id },
    });
    assertProblem(t, res, 403);
    const unknownUser = await call(app, mode, "POST", `/rooms/${open}/members`, {
      token: owner.token,
      json: { user_id: 999999 },
    });
    assertProblem(t, unknownUser, 422);
    t.is(unknownUser.body.errors[0].pointer, "/user_id");
  });

  test(`GET /rooms/:id/members lists members by user id, paginated (${mode.label})`, async (t) => {
    const room = await createRoom(owner, { name: "crowd", private: true });
    const ids = [owner.id];
    for (let i = 0; i < 6; i++) {
      const user = await app.deps.accounts.registerUser({
        name: `Crowd ${i}`,
        email: `crowd-${mode.version}${mode.prefix.length}-${i}@example.com`,
        password: "x".repeat(8),
      });
      await app.deps.rooms.addMember(owner.id, room, user.id);
      ids.push(user.id);
    }
    const pages = await walkBothWays(
      t,
      app,
      mode,
      `/rooms/${room}/members?limit=3`,
      "members",
      owner.token,
      (m) => m["user_id"],
    );
    t.deepEqual(pages, [ids.slice(0, 3), ids.slice(3, 6), ids.slice(6)]);
  });

  test(`GET /rooms/:id/presence shows who is in the room (${mode.label})`, async (t) => {
    const room = await createRoom(owner, { name: "present" });
    const empty = await call(app, mode, "GET", `/rooms/${room}/presence`, { token: outsider.token });
    assertVersioned(t, empty, mode, 200, `/rooms/${room}/presence`);
    const type = mediaType(mode.version);
    t.deepEqual(empty.body, {
      presences: {},
      _links: {
        self: { href: `${mode.prefix}/rooms/${room}/presence`, type },
        room: { href: `${mode.prefix}/rooms/${room}`, type },
      },
    });
    const meta = app.deps.presence.track(`room:${room}`, "socket-1", String(owner.id), {
      online_at: "2026-01-01T00:00:00.000Z",
    });
    try {
      const shown = await call(app, mode, "GET", `/rooms/${room}/presence`, { token: outsider.token });
      t.deepEqual(shown.body.presences, {
        [String(owner.id)]: { metas: [{ online_at: "2026-01-01T00:00:00.000Z", phx_ref: meta.phx_ref }] },
      });
      assertLinks(t, shown.body, mode);
    } finally {
      app.deps.presence.untrack(`room:${room}`, "socket-1");
    }
  });
}

test("POST /rooms: private defaults to false; the body is validated", async (t) => {
  const res = await app.request("POST", "/rooms", { token: owner.token, json: { name: "plain" } });
  t.is(res.body.private, false);
  for (const json of [
    {},
    { name: "" },
    { name: "x", private: "yes" },
    { name: "x", extra: true },
    { name: "x".repeat(101) },
  ]) {
    assertProblem(t, await app.request("POST", "/rooms", { token: owner.token, json }), 422);
  }
  assertProblem(
    t,
    await app.request("POST", `/rooms/${await createRoom(owner, { name: "m" })}/members`, {
      token: owner.token,
      json: { user_id: "1" },
    }),
    422,
  );
});

test("room routes 404 for ids that name no room", async (t) => {
  for (const path of [
    "/rooms/999999",
    "/rooms/abc",
    "/rooms/999999/members",
    "/rooms/999999/messages",
    "/rooms/999999/presence",
  ]) {
    assertProblem(t, await app.request("GET", path, { token: owner.token }), 404);
  }
  assertProblem(
    t,
    await app.request("POST", "/rooms/999999/members", { token: owner.token, json: { user_id: member.id } }),
    404,
  );
});
