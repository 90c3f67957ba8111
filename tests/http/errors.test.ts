/**
 * Every error path of the README's Errors section over real HTTP: RFC 9457 problem+json with a stable type,
 * `Vary: Accept`, the status-specific headers (Allow, WWW-Authenticate, Accept-Post), JSON
 * Pointers on 422, and never a stack trace, SQL or file path in what reaches the client.
 */
import test, { type ExecutionContext } from "ava";
import { buildRouter } from "../../lib/http/router.ts";
import type { Route } from "../../lib/http/routes.ts";
import { startTestServer, type RequestOptions, type TestResponse, type TestServer } from "../helpers/http.ts";

const V1 = "application/vnd.app.v1+json";
const V2 = "application/vnd.app.v2+json";
const PROBLEM_KEYS = new Set(["type", "title", "status", "detail", "instance", "errors", "supported_media_types"]);
// Stack frames, file paths and SQL: none of it may ever reach a client.
const INTERNALS = [
  /\n\s*at /,
  /\bat [\w.<>]+ \(/,
  /\/work\//,
  /node_modules/,
  /file:\/\//,
  /\.ts:\d+/,
  /\bselect /i,
  /\binsert into\b/i,
  /\bwhere "?\w/i,
  /\bsyntax error at\b/i,
];

let app: TestServer;
let small: TestServer;
let alice: { id: number; token: string; email: string };
let bob: { id: number; token: string; email: string };
const seen: TestResponse[] = [];

test.before(async () => {
  [app, small] = await Promise.all([startTestServer(), startTestServer({ BODY_LIMIT_BYTES: "1024" })]);
  alice = await app.signUp("alice");
  bob = await app.signUp("bob");
});
test.after.always(async () => {
  await Promise.all([app?.stop(), small?.stop()]);
});

async function send(method: string, path: string, options: RequestOptions = {}, server = app): Promise<TestResponse> {
  const res = await server.request(method, path, options);
  seen.push(res);
  return res;
}

function assertNoInternals(t: ExecutionContext, res: TestResponse): void {
  const raw = `${res.text}\n${[...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}`;
  for (const pattern of INTERNALS) t.notRegex(raw, pattern, `internals leaked (${pattern}) in ${raw}`);
}

/** Asserts an RFC 9457 problem of `status` (and `type`), returns its body. */
// biome-ignore lint: problem bodies are arbitrary JSON.
function problem(t: ExecutionContext, res: TestResponse, status: number, type: string, path?: string): any {
  t.is(res.status, status, res.text);
  t.is(res.headers.get("content-type"), "application/problem+json");
  t.regex(res.headers.get("vary") ?? "", /\bAccept\b/);
  t.is(res.body.type, `/problems/${type}`);
  t.is(typeof res.body.title, "string");
  t.is(res.body.status, status);
  if (res.body.detail !== undefined) t.is(typeof res.body.detail, "string");
  if (path !== undefined) t.is(res.body.instance, path);
  for (const key of Object.keys(res.body)) t.true(PROBLEM_KEYS.has(key), `unexpected problem member ${key}`);
  assertNoInternals(t, res);
  return res.body;
}

const newUser = (extra: Record<string, unknown> = {}) => ({
  name: "Carol",
  email: `carol-${Math.random().toString(36).slice(2)}@example.com`,
  password: "long enough",
  ...extra,
});

test("malformed JSON → 400", async (t) => {
  for (const raw of ['{"name": ', "{bad}", "nul", '{"a":1}}', "'single'"]) {
    const res = await send("POST", "/users", { raw, contentType: "application/json" });
    problem(t, res, 400, "malformed-json", "/users");
  }
});

test("a body over the configured limit → 413, whether Content-Length or chunked", async (t) => {
  const big = JSON.stringify({ name: "x".repeat(2048), email: "a@example.com", password: "long enough" });
  problem(
    t,
    await send("POST", "/users", { raw: big, contentType: "application/json" }, small),
    413,
    "payload-too-large",
    "/users",
  );
  const chunks = [big.slice(0, 1000), big.slice(1000)];
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(new TextEncoder().encode(next));
    },
  });
  const res = await fetch(`${small.url}/users`, {
    method: "POST",
    body: stream,
    headers: { "content-type": "application/json" },
    duplex: "half",
  } as RequestInit);
  const text = await res.text();
  problem(t, { status: res.status, headers: res.headers, text, body: JSON.parse(text) }, 413, "payload-too-large");
  // The small server still answers, and a body under its limit goes through to validation.
  problem(t, await send("POST", "/users", { json: { name: "x" } }, small), 422, "validation-failed");
});

test("the default body limit is 1 MiB", async (t) => {
  t.is(app.deps.config.bodyLimitBytes, 1024 * 1024);
  const room = await send("POST", "/rooms", { json: { name: "limits" }, token: alice.token });
  const envelope = '{"body":""}'.length;
  const atLimit = JSON.stringify({ body: "x".repeat(1024 * 1024 - envelope) });
  t.is(Buffer.byteLength(atLimit), 1024 * 1024);
  // Exactly 1 MiB is parsed (and then fails the 4000-character rule); one byte more is refused.
  problem(
    t,
    await send("POST", `/rooms/${room.body.id}/messages`, {
      raw: atLimit,
      contentType: "application/json",
      token: alice.token,
    }),
    422,
    "validation-failed",
  );
  const over = JSON.stringify({ body: "x".repeat(1024 * 1024 - envelope + 1) });
  problem(
    t,
    await send("POST", `/rooms/${room.body.id}/messages`, {
      raw: over,
      contentType: "application/json",
      token: alice.token,
    }),
    413,
    "payload-too-large",
  );
});

test("a Content-Type we do not read → 415 with Accept-Post", async (t) => {
  const body = JSON.stringify(newUser());
  for (const contentType of [
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/vnd.app.v3+json",
    "application/json; charset=iso-8859-1",
    "application/json; charset=utf-16",
  ]) {
    const res = await send("POST", "/users", { raw: body, contentType });
    const p = problem(t, res, 415, "unsupported-media-type", "/users");
    t.true((p.detail as string).includes("application/json"), p.detail);
    t.regex(res.headers.get("accept-post") ?? "", /application\/json/);
  }
  // A body without any Content-Type at all.
  problem(t, await send("POST", "/users", { raw: new TextEncoder().encode(body) }), 415, "unsupported-media-type");
});

test("a body declaring a different version than negotiated → 415 saying so", async (t) => {
  const cases: Array<
    [path: string, accept: string | undefined, contentType: string, declared: number, negotiated: number]
  > = [
    ["/users", undefined, V1, 1, 2],
    ["/users", V1, V2, 2, 1],
    ["/v1/users", undefined, V2, 2, 1],
    ["/v2/users", undefined, "application/vnd.app+json; version=1", 1, 2],
  ];
  for (const [path, accept, contentType, declared, negotiated] of cases) {
    const res = await send("POST", path, { json: newUser(), contentType, ...(accept === undefined ? {} : { accept }) });
    const p = problem(t, res, 415, "unsupported-media-type", path);
    t.regex(p.detail, new RegExp(`version ${declared}\\b.*version ${negotiated}\\b`), p.detail);
  }
});

test("a body whose type matches the negotiated version (or names none) is accepted", async (t) => {
  const cases: Array<[path: string, accept: string | undefined, contentType: string, version: 1 | 2]> = [
    ["/users", V1, V1, 1],
    ["/users", undefined, V2, 2],
    ["/v1/users", undefined, V1, 1],
    ["/users", V1, "application/vnd.app+json; version=1", 1],
    ["/v1/users", undefined, "application/vnd.app+json", 1],
    ["/users", V1, "application/json; charset=UTF-8", 1],
  ];
  for (const [path, accept, contentType, version] of cases) {
    const body = newUser(version === 1 ? { favorite_sport: "golf" } : { favorite_sports: ["golf"] });
    const res = await send("POST", path, { json: body, contentType, ...(accept === undefined ? {} : { accept }) });
    t.is(res.status, 201, `${path} ${contentType}: ${res.text}`);
    t.is(res.headers.get("content-type"), `application/vnd.app.v${version}+json; charset=utf-8`);
  }
});

test("schema violations → 422 with JSON Pointers", async (t) => {
  const cases: Array<[path: string, body: unknown, pointer: string, detail: RegExp]> = [
    ["/users", { name: "No Mail", password: "long enough" }, "/email", /required/],
    ["/users", newUser({ name: 5 }), "/name", /string/],
    ["/users", newUser({ admin: true }), "/admin", /not a known property/],
    ["/users", newUser({ favorite_sports: ["chess", 7] }), "/favorite_sports/1", /string/],
    ["/users", newUser({ email: "not-an-address" }), "/email", /format/],
    ["/v1/users", newUser({ favorite_sports: ["chess"] }), "/favorite_sports", /not a known property/], // the v1 schema applies
    ["/users", [1, 2], "", /object/],
  ];
  for (const [path, body, pointer, detail] of cases) {
    const p = problem(t, await send("POST", path, { json: body }), 422, "validation-failed", path);
    const match = (p.errors as Array<{ pointer: string; detail: string }>).find((e) => e.pointer === pointer);
    t.truthy(match, `${JSON.stringify(body)} → expected pointer ${pointer} in ${JSON.stringify(p.errors)}`);
    if (match !== undefined) t.regex(match.detail, detail);
  }
  const room = await send("POST", "/rooms", { json: { name: "long messages" }, token: alice.token });
  const tooLong = await send("POST", `/rooms/${room.body.id}/messages`, {
    json: { body: "x".repeat(4001) },
    token: alice.token,
  });
  t.deepEqual(
    problem(t, tooLong, 422, "validation-failed").errors.map((e: { pointer: string }) => e.pointer),
    ["/body"],
  );
  const longest = await send("POST", `/rooms/${room.body.id}/messages`, {
    json: { body: "x".repeat(4000) },
    token: alice.token,
  });
  t.is(longest.status, 201);
});

test("unknown routes → 404", async (t) => {
  for (const path of ["/nope", "/users/1/extra", "/rooms/1/messages/1/more", "/v1/nope", "/v3/users"]) {
    problem(t, await send("GET", path, { token: alice.token }), 404, "not-found", path);
  }
});

test("a path matches whatever its case, as @koa/router matches: /Users/{id} is /users/{id}", async (t) => {
  for (const path of [`/Users/${alice.id}`, `/USERS/${alice.id}`, `/v2/uSeRs/${alice.id}`]) {
    const res = await send("GET", path, { token: alice.token });
    t.is(res.status, 200, path);
    t.is(res.body.id, alice.id, path);
  }
  problem(t, await send("PUT", `/Users/${alice.id}`), 405, "method-not-allowed", `/Users/${alice.id}`);
});

test("a route whose first segment is a parameter is refused when the router is built", (t) => {
  const route = { method: "get", path: "/:id", name: "anything" } as unknown as Route;
  t.throws(() => buildRouter([{ route, steps: [], run: async () => {} }]), {
    message: "route /:id: its first segment must be literal",
  });
});

test("wrong methods → 405 with Allow", async (t) => {
  const cases: Array<[method: string, path: string, allowed: string[]]> = [
    ["PUT", `/users/${alice.id}`, ["DELETE", "GET", "PATCH"]],
    ["POST", "/", ["GET"]],
    ["DELETE", "/rooms", ["GET", "POST"]],
    ["PATCH", "/sessions", ["DELETE", "POST"]],
    ["PUT", "/v1/users", ["GET", "POST"]],
  ];
  for (const [method, path, allowed] of cases) {
    const res = await send(method, path);
    problem(t, res, 405, "method-not-allowed", path);
    const allow = (res.headers.get("allow") ?? "")
      .split(/,\s*/)
      .filter((m) => m !== "HEAD")
      .sort();
    t.deepEqual(allow, allowed, `${method} ${path}`);
  }
});

test("missing or bad bearer token → 401 with WWW-Authenticate: Bearer", async (t) => {
  const cases: Array<Record<string, string>> = [
    {},
    { authorization: "Bearer nope" },
    { authorization: "Basic YWxpY2U6c2VjcmV0" },
    { authorization: "Bearer" },
    { authorization: `Bearer ${alice.token}x` },
  ];
  for (const headers of cases) {
    const res = await send("GET", "/users", { headers });
    problem(t, res, 401, "unauthorized", "/users");
    t.regex(res.headers.get("www-authenticate") ?? "", /^Bearer\b/);
  }
  const login = await send("POST", "/sessions", { json: { email: alice.email, password: "wrong password" } });
  problem(t, login, 401, "unauthorized");
});

test("changing another user or another owner's room → 403", async (t) => {
  problem(
    t,
    await send("PATCH", `/users/${alice.id}`, { json: { name: "Mallory" }, token: bob.token }),
    403,
    "forbidden",
  );
  problem(t, await send("DELETE", `/users/${alice.id}`, { token: bob.token }), 403, "forbidden");
  const room = await send("POST", "/rooms", { json: { name: "alice's" }, token: alice.token });
  problem(
    t,
    await send("POST", `/rooms/${room.body.id}/members`, { json: { user_id: bob.id }, token: bob.token }),
    403,
    "forbidden",
  );
});

test("another user's private room → 404, like a room that does not exist", async (t) => {
  const room = await send("POST", "/rooms", { json: { name: "secret", private: true }, token: alice.token });
  t.is(room.status, 201);
  for (const path of [`/rooms/${room.body.id}`, `/rooms/${room.body.id}/messages`, `/rooms/${room.body.id}/members`]) {
    problem(t, await send("GET", path, { token: bob.token }), 404, "not-found", path);
  }
  problem(
    t,
    await send("POST", `/rooms/${room.body.id}/messages`, { json: { body: "hi" }, token: bob.token }),
    404,
    "not-found",
  );
});

test("an e-mail address already registered → 409", async (t) => {
  const p = problem(
    t,
    await send("POST", "/users", { json: newUser({ email: alice.email }) }),
    409,
    "conflict",
    "/users",
  );
  t.deepEqual(p.errors, [{ pointer: "/email", detail: "is already taken" }]);
});

test("bad pagination parameters → 400 invalid-parameter", async (t) => {
  for (const [query, parameter] of [
    ["limit=0", "limit"],
    ["limit=abc", "limit"],
    ["limit=101", "limit"],
    ["limit=-1", "limit"],
    ["limit=1.5", "limit"],
    ["cursor=garbage", "cursor"],
    ["cursor=eyJkIjoieCJ9", "cursor"],
    ["limit=1&limit=2", "limit"],
  ] as const) {
    const p = problem(
      t,
      await send("GET", `/users?${query}`, { token: alice.token }),
      400,
      "invalid-parameter",
      "/users",
    );
    t.is(p.errors[0].parameter, parameter, query);
  }
});

test("ids that are not positive integers name nothing → 404", async (t) => {
  for (const path of [
    "/users/abc",
    "/users/1.5",
    "/users/-1",
    "/users/0",
    "/users/99999999999",
    "/users/1e3",
    "/rooms/abc/messages",
    "/rooms/1/messages/abc",
  ]) {
    problem(t, await send("GET", path, { token: alice.token }), 404, "not-found");
  }
});

test("a bad request never disturbs the next one", async (t) => {
  await send("POST", "/users", { raw: "{", contentType: "application/json" });
  await send("POST", "/users", { raw: "x".repeat(4096), contentType: "application/json" }, small);
  const [root, me, smallRoot] = await Promise.all([
    send("GET", "/"),
    send("GET", `/users/${alice.id}`, { token: alice.token }),
    send("GET", "/", {}, small),
  ]);
  t.is(root.status, 200);
  t.is(me.status, 200);
  t.is(smallRoot.status, 200);
});

// Serial and last: every response any test above received, errors and successes alike.
test.after("no response carried a stack trace, SQL or file path", (t) => {
  t.true(seen.length > 50);
  for (const res of seen) assertNoInternals(t, res);
});
