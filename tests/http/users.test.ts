import test from "ava";
import { mediaType } from "../../lib/versions.ts";
import {
  assertLinks,
  assertProblem,
  assertUnauthorized,
  assertVersioned,
  call,
  fetchPage,
  MODES,
  unprefixed,
  walkBothWays,
} from "../helpers/api.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";
import { upgradeStatus } from "../realtime/raw.ts";

let app: TestServer;
let me: Awaited<ReturnType<TestServer["signUp"]>>;
let other: Awaited<ReturnType<TestServer["signUp"]>>;
let seq = 0;
const PASSWORD = "correct horse battery";
const uniqueEmail = (name: string) => `${name}-${process.pid}-${++seq}@users.example.com`;

test.before(async () => {
  app = await startTestServer();
  me = await app.signUp("Me", { favorite_sports: ["Chess", "Go"] });
  other = await app.signUp("Other");
  // Enough users for a default page (20) to be followed by another.
  for (let i = 0; i < 24; i++)
    await app.deps.accounts.registerUser({ name: `Filler ${i}`, email: uniqueEmail("filler"), password: PASSWORD });
});
test.after.always(async () => {
  await app?.stop();
});

async function allUserIds(): Promise<number[]> {
  return app.deps.db("users").orderBy("id").pluck("id");
}

function chunk<T>(items: T[], size: number): T[][] {
  const pages: T[][] = [];
  for (let i = 0; i < items.length; i += size) pages.push(items.slice(i, i + size));
  return pages;
}

// Serial tests run before the concurrent ones, so the users table does not grow under the walk.
for (const mode of MODES) {
  test.serial(`GET /users walks forward and back by id, 7 at a time (${mode.label})`, async (t) => {
    const ids = await allUserIds();
    const pages = await walkBothWays(t, app, mode, "/users?limit=7", "users", me.token);
    t.deepEqual(pages, chunk(ids, 7));
    t.true(pages.length >= 4);
  });
}

test.serial("GET /users pages 20 at a time by default; email only on the viewer's own entry", async (t) => {
  const ids = await allUserIds();
  const mode = MODES[1]!;
  const { res, items } = await fetchPage(t, app, mode, "/users", "users", me.token);
  t.deepEqual(
    items.map((u) => u["id"]),
    ids.slice(0, 20),
  );
  t.regex(res.body._links.next.href, /^\/users\?limit=20&cursor=[\w-]+$/);
  for (const user of items) {
    t.deepEqual(
      Object.keys(user).sort(),
      user["id"] === me.id
        ? ["_links", "api_version", "email", "favorite_sports", "id", "name"]
        : ["_links", "favorite_sports", "id", "name"],
    );
  }
  t.is(items.find((u) => u["id"] === me.id)?.["email"], me.email);
});

test("GET /users checks limit (1–100) and cursor", async (t) => {
  const one = await app.request("GET", "/users?limit=1", { token: me.token });
  t.is(one.status, 200);
  t.is(one.body._embedded.users.length, 1);
  const hundred = await app.request("GET", "/users?limit=100", { token: me.token });
  t.is(hundred.status, 200);
  t.is(hundred.body._links.next, undefined);
  for (const query of [
    "limit=0",
    "limit=101",
    "limit=abc",
    "limit=-1",
    "limit=2.5",
    "limit=1&limit=2",
    "cursor=bogus",
  ]) {
    const res = await app.request("GET", `/users?${query}`, { token: me.token });
    assertProblem(t, res, 400);
  }
});

for (const mode of MODES) {
  test(`POST /users creates a user and shows it to its owner (${mode.label})`, async (t) => {
    const email = uniqueEmail("new");
    const sports = mode.version === 1 ? { favorite_sport: "Chess" } : { favorite_sports: ["Chess", "Go"] };
    const res = await call(app, mode, "POST", "/users", {
      json: { name: "New", email, password: PASSWORD, ...sports },
    });
    assertVersioned(t, res, mode, 201, "/users");
    const id = res.body.id as number;
    t.true(Number.isSafeInteger(id) && id > 0);
    t.is(res.headers.get("location"), `${mode.prefix}/users/${id}`);
    const expected =
      mode.version === 1
        ? { id, name: "New", email, favorite_sport: "Chess" }
        : { id, name: "New", email, favorite_sports: ["Chess", "Go"], api_version: 2 };
    const { _links, ...fields } = res.body;
    t.deepEqual(fields, expected);
    t.deepEqual(_links, {
      self: { href: `${mode.prefix}/users/${id}`, type: mediaType(mode.version) },
      collection: { href: `${mode.prefix}/users`, type: mediaType(mode.version) },
    });
    const session = await app.request("POST", "/sessions", { json: { email, password: PASSWORD } });
    const again = await call(app, mode, "GET", unprefixed(res.headers.get("location")!, mode), {
      token: session.body.token,
    });
    t.deepEqual(again.body, res.body, "GET on Location shows the same representation");
  });

  test(`GET /users/:id shows email only to the user themself (${mode.label})`, async (t) => {
    const own = await call(app, mode, "GET", `/users/${me.id}`, { token: me.token });
    assertVersioned(t, own, mode, 200, `/users/${me.id}`);
    assertLinks(t, own.body, mode);
    t.is(own.body.id, me.id);
    t.is(own.body.email, me.email);
    if (mode.version === 1) t.is(own.body.favorite_sport, "Chess");
    else t.deepEqual(own.body.favorite_sports, ["Chess", "Go"]);

    const seen = await call(app, mode, "GET", `/users/${me.id}`, { token: other.token });
    assertVersioned(t, seen, mode, 200, `/users/${me.id}`);
    t.false("email" in seen.body);
    const { email: _email, api_version: _pin, ...rest } = own.body;
    t.deepEqual(seen.body, rest);
  });

  test(`PATCH /users/:id changes the user themself (${mode.label})`, async (t) => {
    const user = await app.signUp("Patchable");
    const res = await call(app, mode, "PATCH", `/users/${user.id}`, {
      token: user.token,
      json: { name: `Renamed ${mode.label}` },
    });
    assertVersioned(t, res, mode, 200, `/users/${user.id}`);
    assertLinks(t, res.body, mode);
    t.is(res.body.name, `Renamed ${mode.label}`);
    t.is(res.body.email, user.email);
    const stored = await app.deps.accounts.getUser(user.id);
    t.is(stored.name, `Renamed ${mode.label}`);
  });

  test(`PATCH and DELETE of another user are 403 (${mode.label})`, async (t) => {
    const victim = await app.signUp("Victim");
    const patch = await call(app, mode, "PATCH", `/users/${victim.id}`, {
      token: other.token,
      json: { name: "Hijacked" },
    });
    assertProblem(t, patch, 403);
    const del = await call(app, mode, "DELETE", `/users/${victim.id}`, { token: other.token });
    assertProblem(t, del, 403);
    const stored = await app.deps.accounts.getUser(victim.id);
    t.is(stored.name, "Victim");
  });

  test(`DELETE /users/:id deletes the user themself and kills every token (${mode.label})`, async (t) => {
    const user = await app.signUp("Leaving");
    const second = await app.request("POST", "/sessions", { json: { email: user.email, password: PASSWORD } });
    t.is(second.status, 201);
    const res = await call(app, mode, "DELETE", `/users/${user.id}`, { token: user.token });
    assertVersioned(t, res, mode, 204, `/users/${user.id}`);
    t.is(res.text, "");
    for (const token of [user.token, second.body.token as string]) {
      assertUnauthorized(t, await call(app, mode, "GET", `/users/${user.id}`, { token }));
    }
    // The socket tokens those sessions minted are refused at the upgrade too.
    for (const socketToken of [user.socketToken, second.body.socket_token as string]) {
      const url = `${app.server.socketUrl}/websocket?vsn=2.0.0&token=${encodeURIComponent(socketToken)}`;
      t.is(await upgradeStatus(url), 403, "a socket token of a deleted user's session is refused");
    }
    assertProblem(t, await call(app, mode, "GET", `/users/${user.id}`, { token: other.token }), 404);
    const tokens = await app.deps
      .db("access_tokens")
      .where({ user_id: user.id })
      .count<{ count: number }[]>("* as count");
    t.is(Number(tokens[0]?.count), 0);
  });

  test(`POST /users with a taken e-mail, in any case, is 409 (${mode.label})`, async (t) => {
    const res = await call(app, mode, "POST", "/users", {
      json: { name: "Copy", email: me.email.toUpperCase(), password: PASSWORD },
    });
    assertProblem(t, res, 409);
    t.deepEqual(
      res.body.errors.map((e: { pointer: string }) => e.pointer),
      ["/email"],
    );
  });
}

test("user routes 404 for ids that name no user", async (t) => {
  for (const path of ["/users/999999", "/users/abc", "/users/0", "/users/99999999999"]) {
    assertProblem(t, await app.request("GET", path, { token: me.token }), 404);
  }
  assertProblem(t, await app.request("PATCH", "/users/999999", { token: me.token, json: { name: "x" } }), 404);
  assertProblem(t, await app.request("DELETE", "/users/999999", { token: me.token }), 404);
});

test("user routes other than sign-up need a bearer token", async (t) => {
  assertUnauthorized(t, await app.request("GET", "/users"));
  assertUnauthorized(t, await app.request("GET", `/users/${me.id}`, { token: "not-a-token" }));
  assertUnauthorized(t, await app.request("PATCH", `/users/${me.id}`, { json: { name: "x" } }));
  assertUnauthorized(t, await app.request("DELETE", `/users/${me.id}`, { token: "bad" }));
});
