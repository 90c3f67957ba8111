/**
 * Pinned versions over real HTTP and a real socket: sign-up pins the account to the version its
 * request was served in; an authenticated request that names no version (no Accept, wildcards,
 * generic JSON, the bare vendor type, no prefix) is served in the pin on every route, an
 * anonymous one in the default; v2 shows the pin to its owner and PATCH changes it; a socket
 * without api_version gets the pin as it stands when it connects; every response varies on Accept and Authorization.
 */
import test from "ava";
import { Socket, type Channel } from "phoenix";
import WebSocket from "ws";
import { createAccounts } from "../../lib/accounts/index.ts";
import { createLocalPubSub } from "../../lib/pubsub/index.ts";
import { routes } from "../../lib/http/routes.ts";
import { mediaType, type ApiVersion } from "../../lib/versions.ts";
import { assertProblem } from "../helpers/api.ts";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";

const PASSWORD = "correct horse battery";
/** Every way to name no version. */
const UNNAMED: ReadonlyArray<string | undefined> = [
  undefined,
  "*/*",
  "application/*",
  "application/json",
  "application/vnd.app+json",
  "text/html, */*;q=0.8",
];

let app: TestServer;
let counter = 0;
test.before(async () => {
  app = await startTestServer({ CORS_ORIGINS: "https://app.example" });
});
test.after.always(async () => {
  await app?.stop();
});

interface Account {
  id: number;
  token: string;
  socketToken: string;
}

/** Signs up through `prefix` / `accept` (as a client of that version would) and logs in. */
async function signUpAs(how: { prefix?: string; accept?: string }): Promise<Account> {
  const email = `pin-${process.pid}-${++counter}@example.com`;
  const created = await app.request("POST", `${how.prefix ?? ""}/users`, {
    json: { name: `Pin ${counter}`, email, password: PASSWORD },
    ...(how.accept === undefined ? {} : { accept: how.accept }),
  });
  if (created.status !== 201) throw new Error(`sign-up: ${created.status} ${created.text}`);
  const session = await app.request("POST", "/sessions", { json: { email, password: PASSWORD } });
  if (session.status !== 201) throw new Error(`log-in: ${session.status} ${session.text}`);
  return { id: created.body.id, token: session.body.token, socketToken: session.body.socket_token };
}

function servedIn(res: TestResponse): ApiVersion | undefined {
  const match = /^application\/vnd\.app\.v(\d)\+json/.exec(res.headers.get("content-type") ?? "");
  return match === null ? undefined : (Number(match[1]) as ApiVersion);
}

async function pinOf(account: Account): Promise<unknown> {
  const res = await app.request("GET", `/users/${account.id}`, { token: account.token, accept: mediaType(2) });
  return res.body.api_version;
}

test("sign-up pins the account to the version it was served in: by prefix, by Accept, or the default", async (t) => {
  t.is(await pinOf(await signUpAs({ prefix: "/v1" })), 1);
  t.is(await pinOf(await signUpAs({ accept: mediaType(1) })), 1);
  t.is(await pinOf(await signUpAs({ accept: "application/vnd.app+json; version=1" })), 1);
  t.is(await pinOf(await signUpAs({ prefix: "/v2" })), 2);
  t.is(await pinOf(await signUpAs({})), 2, "no version named, anonymous: the default");
});

test("a request naming no version gets the caller's pin on every route; a named version or a prefix wins", async (t) => {
  const v1 = await signUpAs({ prefix: "/v1" });
  const other = await signUpAs({});
  const room = await app.request("POST", "/rooms", { token: v1.token, json: { name: "pinned" } });
  t.is(room.status, 201);
  t.is(servedIn(room), 1, "POST /rooms in the pin");
  const message = await app.request("POST", `/rooms/${room.body.id}/messages`, {
    token: v1.token,
    json: { body: "hello" },
  });
  t.is(message.status, 201);
  t.is(servedIn(message), 1);
  t.true("user_id" in message.body, "the v1 representation of a message");
  const ids: Record<string, number> = { id: room.body.id, mid: message.body.id };
  // Every GET route of the table (ids filled in), so a route added later is covered too.
  const table = routes(app.deps, { socketUrl: () => "ws://unused" }).filter((r) => r.method === "get");
  t.true(table.length >= 9);
  for (const route of table) {
    const path = route.path.startsWith("/users/")
      ? `/users/${other.id}`
      : route.path.replace(/:(\w+)/g, (_, name: string) => String(ids[name]));
    for (const accept of UNNAMED) {
      const res = await app.request("GET", path, { token: v1.token, ...(accept === undefined ? {} : { accept }) });
      t.is(res.status, 200, `${path} ${accept}: ${res.text}`);
      t.is(servedIn(res), 1, `${route.name} with Accept ${accept ?? "(none)"} is served in the pin`);
      t.truthy(res.headers.get("deprecation"), "with v1's deprecation headers");
    }
    t.is(
      servedIn(await app.request("GET", path, { token: v1.token, accept: mediaType(2) })),
      2,
      `${route.name}: a named version beats the pin`,
    );
    t.is(servedIn(await app.request("GET", `/v2${path}`, { token: v1.token })), 2, `${route.name}: so does a prefix`);
  }
  const patched = await app.request("PATCH", `/users/${v1.id}`, { token: v1.token, json: { favorite_sport: "Chess" } });
  t.is(patched.status, 200, patched.text);
  t.is(patched.body.favorite_sport, "Chess", "PATCH without a version validates and renders in the pin (v1)");
  const token = await app.request("POST", "/socket-tokens", { token: v1.token });
  t.is(servedIn(token), 1);
});

test("anonymous requests and unknown tokens get the default; routes needing a user still answer 401", async (t) => {
  for (const accept of UNNAMED) {
    t.is(servedIn(await app.request("GET", "/", accept === undefined ? {} : { accept })), 2);
    t.is(
      servedIn(await app.request("GET", "/", { token: "not-a-token", ...(accept === undefined ? {} : { accept }) })),
      2,
    );
  }
  const res = await app.request("GET", "/users", { token: "not-a-token" });
  assertProblem(t, res, 401);
  t.regex(res.headers.get("www-authenticate") ?? "", /invalid_token/);
  assertProblem(t, await app.request("GET", "/users"), 401);
});

test("v2 PATCH /users/{id} {api_version} changes the pin (1 or 2 only); the owner alone sees it; v1 knows no such field", async (t) => {
  const me = await signUpAs({ prefix: "/v1" });
  const other = await signUpAs({});
  const moved = await app.request("PATCH", `/v2/users/${me.id}`, { token: me.token, json: { api_version: 2 } });
  t.is(moved.status, 200, moved.text);
  t.is(moved.body.api_version, 2);
  t.is(
    servedIn(await app.request("GET", "/", { token: me.token })),
    2,
    "requests naming no version follow the new pin",
  );
  const back = await app.request("PATCH", `/users/${me.id}`, {
    token: me.token,
    accept: mediaType(2),
    json: { api_version: 1 },
  });
  t.is(back.body.api_version, 1, "and it can move back");
  t.is(servedIn(await app.request("GET", "/", { token: me.token })), 1);

  const seen = await app.request("GET", `/v2/users/${me.id}`, { token: other.token });
  t.false("api_version" in seen.body, "another user never sees the pin");
  t.false(
    "api_version" in (await app.request("GET", `/v1/users/${me.id}`, { token: me.token })).body,
    "v1 never renders it",
  );

  for (const bad of [3, 0, "2", null]) {
    const res = await app.request("PATCH", `/v2/users/${me.id}`, { token: me.token, json: { api_version: bad } });
    assertProblem(t, res, 422);
    t.deepEqual(
      res.body.errors.map((e: { pointer: string }) => e.pointer),
      ["/api_version"],
      `api_version ${JSON.stringify(bad)}`,
    );
  }
  const v1 = await app.request("PATCH", `/v1/users/${me.id}`, { token: me.token, json: { api_version: 2 } });
  assertProblem(t, v1, 422);
  const forbidden = await app.request("PATCH", `/v2/users/${other.id}`, { token: me.token, json: { api_version: 1 } });
  assertProblem(t, forbidden, 403);
  t.is(await pinOf(other), 2, "nobody changes another user's pin");
});

test("Vary: Accept, Authorization on every response: successes, errors, probes, documents and preflights", async (t) => {
  const me = await signUpAs({});
  const responses: Array<[string, TestResponse]> = [
    ["GET /", await app.request("GET", "/")],
    ["GET / with a token", await app.request("GET", "/", { token: me.token })],
    ["401", await app.request("GET", "/users")],
    ["404", await app.request("GET", "/nowhere", { token: me.token })],
    ["406", await app.request("GET", "/", { accept: "text/html" })],
    ["/health", await app.request("GET", "/health")],
    ["/metrics", await app.request("GET", "/metrics")],
    ["/versions", await app.request("GET", "/versions")],
    ["/openapi/v2.json", await app.request("GET", "/openapi/v2.json")],
    [
      "preflight",
      await app.request("OPTIONS", "/users", {
        headers: { origin: "https://app.example", "access-control-request-method": "POST" },
      }),
    ],
  ];
  for (const [what, res] of responses) {
    const vary = (res.headers.get("vary") ?? "").split(/\s*,\s*/).map((v) => v.toLowerCase());
    t.true(vary.includes("accept") && vary.includes("authorization"), `${what}: Vary ${res.headers.get("vary")}`);
  }
});

test("a socket without api_version gets its user's pin; with api_version, the version it names", async (t) => {
  const v1 = await signUpAs({ prefix: "/v1" });
  const v2 = await signUpAs({});
  const room = await app.request("POST", "/rooms", {
    token: v2.token,
    accept: mediaType(2),
    json: { name: "socket pins" },
  });
  const topic = `room:${room.body.id}`;
  const sockets: Socket[] = [];
  async function joined(token: string, params: Record<string, string> = {}): Promise<Channel> {
    const socket = new Socket(app.server.socketUrl, {
      transport: WebSocket,
      params: { token, ...params },
    } as ConstructorParameters<typeof Socket>[1]);
    sockets.push(socket);
    socket.connect();
    const channel = socket.channel(topic, {});
    await new Promise<void>((resolve, reject) =>
      channel
        .join()
        .receive("ok", () => resolve())
        .receive("error", (e: unknown) => reject(new Error(JSON.stringify(e)))),
    );
    return channel;
  }
  try {
    const pinnedV1 = await joined(v1.socketToken);
    const pinnedV2 = await joined(v2.socketToken);
    const namedV2 = await joined(v1.socketToken, { api_version: "2" });
    const received = [pinnedV1, pinnedV2, namedV2].map(
      (channel) => new Promise<Record<string, unknown>>((resolve) => channel.on("message:new", resolve)),
    );
    const sent = await app.request("POST", `/rooms/${room.body.id}/messages`, {
      token: v2.token,
      accept: mediaType(2),
      json: { body: "which shape?" },
    });
    t.is(sent.status, 201);
    const [one, two, named] = await Promise.all(received);
    t.true("user_id" in one! && !("author" in one!), "pinned to v1: the v1 message");
    t.true("author" in two! && !("user_id" in two!), "pinned to v2: the v2 message");
    t.true("author" in named!, "api_version=2 beats the pin");
  } finally {
    for (const socket of sockets) socket.disconnect();
  }
});

test("a socket token minted before a pin change connects in the new pin, without a database read", async (t) => {
  const me = await signUpAs({ prefix: "/v1" });
  t.like(await app.deps.accounts.verifySocketToken(me.socketToken), { ok: true, pinnedVersion: 1 });
  // A restarted node (its own accounts, its own PubSub) that loads at boot, before the change.
  const restartedEarly = createAccounts(app.deps.db, app.deps.config, createLocalPubSub());
  await restartedEarly.loadPinChanges();
  const moved = await app.request("PATCH", `/v2/users/${me.id}`, { token: me.token, json: { api_version: 2 } });
  t.is(moved.status, 200);
  const queries: string[] = [];
  const listener = (q: { sql: string }) => queries.push(q.sql);
  app.deps.db.on("query", listener);
  const old = app.deps.accounts.verifySocketTokenNow(me.socketToken);
  app.deps.db.off("query", listener);
  t.like(old, { ok: true, pinnedVersion: 2 }, "the token minted under pin 1 follows the pin as it stands");
  t.deepEqual(queries, []);
  t.like(
    restartedEarly.verifySocketTokenNow(me.socketToken),
    { ok: true, pinnedVersion: 1 },
    "a node that was not told keeps the token's pin",
  );
  const restarted = createAccounts(app.deps.db, app.deps.config, createLocalPubSub());
  t.true((await restarted.loadPinChanges()) >= 1);
  t.like(restarted.verifySocketTokenNow(me.socketToken), { ok: true, pinnedVersion: 2 }, "loaded at boot");
  const fresh = await app.request("POST", "/socket-tokens", { token: me.token });
  t.like(await app.deps.accounts.verifySocketToken(fresh.body.socket_token), { ok: true, pinnedVersion: 2 });
  // Moved back: the old token follows again, and so does a socket on it.
  await app.request("PATCH", `/v2/users/${me.id}`, { token: me.token, json: { api_version: 1 } });
  t.like(app.deps.accounts.verifySocketTokenNow(fresh.body.socket_token), { ok: true, pinnedVersion: 1 });
});

test("a socket opened on a token minted before a pin change is served in the new pin", async (t) => {
  const me = await signUpAs({ prefix: "/v1" });
  const author = await signUpAs({});
  await app.request("PATCH", `/v2/users/${me.id}`, { token: me.token, json: { api_version: 2 } });
  const room = await app.request("POST", "/rooms", {
    token: author.token,
    accept: mediaType(2),
    json: { name: "pin moved" },
  });
  const socket = new Socket(app.server.socketUrl, {
    transport: WebSocket,
    params: { token: me.socketToken },
  } as ConstructorParameters<typeof Socket>[1]);
  socket.connect();
  try {
    const channel = socket.channel(`room:${room.body.id}`, {});
    await new Promise<void>((resolve, reject) =>
      channel
        .join()
        .receive("ok", () => resolve())
        .receive("error", (e: unknown) => reject(new Error(JSON.stringify(e)))),
    );
    const received = new Promise<Record<string, unknown>>((resolve) => channel.on("message:new", resolve));
    const sent = await app.request("POST", `/rooms/${room.body.id}/messages`, {
      token: author.token,
      accept: mediaType(2),
      json: { body: "which shape now?" },
    });
    t.is(sent.status, 201);
    const message = await received;
    t.true("author" in message && !("user_id" in message), "the v2 message: the pin as it stands");
  } finally {
    socket.disconnect();
  }
});
