import test from "ava";
import { routes } from "../../lib/http/routes.ts";
import { mediaType } from "../../lib/versions.ts";
import { assertLinks, assertProblem, assertUnauthorized, assertVersioned, call, MODES } from "../helpers/api.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";

let app: TestServer;
let me: Awaited<ReturnType<TestServer["signUp"]>>;
const PASSWORD = "correct horse battery";

test.before(async () => {
  // Every version mode logs the same user in at once, and attempts are counted before the password
  // is checked (tests/http/rate-limit.test.ts proves that limit): lift it here, where it is not the subject.
  app = await startTestServer({ LOGIN_FAILURES_PER_EMAIL: "1000" });
  me = await app.signUp("Sessions");
});
test.after.always(async () => {
  await app?.stop();
});

const logIn = (email: string, password = PASSWORD) => app.request("POST", "/sessions", { json: { email, password } });

for (const mode of MODES) {
  test(`POST /sessions issues a bearer token and a socket token (${mode.label})`, async (t) => {
    const res = await call(app, mode, "POST", "/sessions", { json: { email: me.email, password: PASSWORD } });
    assertVersioned(t, res, mode, 201, "/sessions");
    t.deepEqual(Object.keys(res.body).sort(), ["_links", "socket_token", "token"]);
    t.regex(res.body.token, /^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url");
    t.not(res.body.token, me.token, "every session gets its own token");
    t.deepEqual(res.body._links.user, { href: `${mode.prefix}/users/${me.id}`, type: mediaType(mode.version) });
    t.is(res.body._links.socket.type, mediaType(mode.version));
    t.regex(res.body._links.socket.href, /^ws:\/\/127\.0\.0\.1:\d+\/socket$/);
    assertLinks(t, res.body, mode);
    const verified = await app.deps.accounts.verifySocketToken(res.body.socket_token);
    t.like(verified, { ok: true, userId: me.id });
    const own = await app.request("GET", `/users/${me.id}`, { token: res.body.token });
    t.is(own.status, 200);
    t.is(own.body.email, me.email);
  });

  test(`DELETE /sessions revokes the token at once, and only that one (${mode.label})`, async (t) => {
    const session = await logIn(me.email);
    const kept = await logIn(me.email);
    t.is((await app.request("GET", "/users", { token: session.body.token })).status, 200);
    const res = await call(app, mode, "DELETE", "/sessions", { token: session.body.token });
    assertVersioned(t, res, mode, 204, "/sessions");
    t.is(res.text, "");
    assertUnauthorized(t, await app.request("GET", "/users", { token: session.body.token }));
    assertUnauthorized(t, await call(app, mode, "DELETE", "/sessions", { token: session.body.token }));
    t.is((await app.request("GET", "/users", { token: kept.body.token })).status, 200);
  });

  test(`POST /socket-tokens issues a fresh verifiable socket token (${mode.label})`, async (t) => {
    const before = Date.now();
    const res = await call(app, mode, "POST", "/socket-tokens", { token: me.token });
    assertVersioned(t, res, mode, 201, "/socket-tokens");
    t.deepEqual(Object.keys(res.body).sort(), ["_links", "socket_token"]);
    t.deepEqual(res.body._links.user, { href: `${mode.prefix}/users/${me.id}`, type: mediaType(mode.version) });
    assertLinks(t, res.body, mode);
    const verified = await app.deps.accounts.verifySocketToken(res.body.socket_token);
    if (!verified.ok) return t.fail(`socket token rejected: ${verified.reason}`);
    t.is(verified.userId, me.id);
    // Default lifetime 24 h, counted from now (JWT times have a resolution of one second).
    const ttl = verified.expiresAt.getTime() - before;
    t.true(ttl > 86_400_000 - 2_000 && ttl <= 86_400_000 + 1_000, `ttl ${ttl}`);
  });

  test(`POST /sessions: unknown e-mail and wrong password get the same 401 (${mode.label})`, async (t) => {
    const wrong = await call(app, mode, "POST", "/sessions", {
      json: { email: me.email, password: "not the password" },
    });
    const unknown = await call(app, mode, "POST", "/sessions", {
      json: { email: `nobody-${mode.version}@example.com`, password: PASSWORD },
    });
    assertUnauthorized(t, wrong);
    assertUnauthorized(t, unknown);
    t.deepEqual(wrong.body, unknown.body);
    t.is(wrong.headers.get("www-authenticate"), unknown.headers.get("www-authenticate"));
    t.false("token" in wrong.body);
  });
}

test("POST /sessions matches the e-mail address case-insensitively", async (t) => {
  const res = await logIn(me.email.toUpperCase());
  t.is(res.status, 201);
  t.is(res.body._links.user.href, `/users/${me.id}`);
});

test("a socket token is not a bearer token, and a bearer token is not a socket token", async (t) => {
  assertUnauthorized(t, await app.request("GET", "/users", { token: me.socketToken }));
  t.deepEqual(await app.deps.accounts.verifySocketToken(me.token), { ok: false, reason: "invalid" });
});

// Every route the table marks `auth`, in every mode, without a token and with bad ones.
const placeholder = { socketUrl: () => "ws://unused" };
const authRoutes = routes({ accounts: {}, rooms: {}, presence: {} } as never, placeholder).filter((r) => r.auth);

test("the route table has the authenticated routes this suite expects", (t) => {
  t.deepEqual(
    authRoutes.map((r) => r.name),
    [
      "users.index",
      "users.show",
      "users.update",
      "users.delete",
      "sessions.delete",
      "socket_tokens.create",
      "rooms.create",
      "rooms.index",
      "rooms.show",
      "rooms.delete",
      "members.create",
      "members.delete",
      "members.index",
      "messages.index",
      "messages.show",
      "messages.create",
      "presence.show",
    ],
  );
});

for (const mode of MODES) {
  test(`every authenticated route is 401 with a Bearer challenge without a valid token (${mode.label})`, async (t) => {
    const revoked = (await logIn(me.email)).body.token as string;
    t.is((await app.request("DELETE", "/sessions", { token: revoked })).status, 204);
    for (const route of authRoutes) {
      const path = route.path.replace(":id", String(me.id)).replace(":mid", "1").replace(":user_id", String(me.id));
      const method = route.method.toUpperCase();
      const json = route.body === undefined ? undefined : {};
      const attempts: Array<Record<string, string>> = [
        {},
        { authorization: "Bearer not-a-real-token" },
        { authorization: `Bearer ${revoked}` },
        { authorization: `Basic ${Buffer.from(`${me.email}:${PASSWORD}`).toString("base64")}` },
        { authorization: "Bearer" },
        { authorization: `Bearer ${me.token} trailing` },
      ];
      for (const headers of attempts) {
        const res = await call(app, mode, method, path, { headers, ...(json === undefined ? {} : { json }) });
        t.is(res.status, 401, `${method} ${path} with ${JSON.stringify(headers)}`);
        assertUnauthorized(t, res);
      }
    }
  });
}

test("POST /sessions validates its body", async (t) => {
  assertProblem(t, await app.request("POST", "/sessions", { json: { email: me.email } }), 422);
  assertProblem(
    t,
    await app.request("POST", "/sessions", { json: { email: me.email, password: PASSWORD, extra: 1 } }),
    422,
  );
});
