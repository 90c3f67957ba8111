/**
 * Hostile input and what reaches the log: U+0000 in any string of any body (422 with its pointer,
 * `invalid` on a socket), crafted pagination cursors (400, fuzzed), a database error that carries
 * the INSERT's parameters (the 500's log line holds none of them), and idempotency fingerprints
 * keyed with the server's secret. Every test ends by scanning the captured log for its secrets.
 */
import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import { createHash, randomBytes } from "node:crypto";
import WebSocket from "ws";
import { createLogger } from "../../lib/telemetry/logger.ts";
import { assertProblem } from "../helpers/api.ts";
import { startTestServer, type TestServer } from "../helpers/http.ts";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261201), numRuns: 150 });

const PASSWORD = "correct horse battery";
let app: TestServer;
const lines: string[] = [];

test.before(async () => {
  app = await startTestServer(
    {},
    { logger: createLogger("trace", { write: (line: string) => void lines.push(line) }) },
  );
});
test.after.always(async () => {
  await app?.stop();
});

function assertNoSecrets(t: ExecutionContext, secrets: string[]): void {
  const all = lines.join("");
  for (const secret of secrets) t.false(all.includes(secret), `a secret (${secret.slice(0, 6)}…) appears in the log`);
  t.notRegex(all, /scrypt\$/, "no password hash appears in the log");
}

test.serial(
  "U+0000 in any string of a body is a 422 with its pointer, in every body and version, never a 500",
  async (t) => {
    const ada = await app.signUp("Ada");
    const room = await app.request("POST", "/rooms", { token: ada.token, json: { name: "lobby" } });
    const email = `nul-${randomBytes(4).toString("hex")}@example.com`;
    const cases: Array<[string, string, Record<string, unknown>, string, string?]> = [
      ["POST", "/users", { name: "A\u0000", email, password: PASSWORD }, "/name"],
      ["POST", "/users", { name: "A", email: `a\u0000${email}`, password: PASSWORD }, "/email"],
      ["POST", "/users", { name: "A", email, password: `${PASSWORD}\u0000` }, "/password"],
      [
        "POST",
        "/users",
        { name: "A", email, password: PASSWORD, favorite_sports: ["Chess", "Go\u0000"] },
        "/favorite_sports/1",
      ],
      ["POST", "/v1/users", { name: "A", email, password: PASSWORD, favorite_sport: "\u0000" }, "/favorite_sport"],
      ["POST", "/users", { name: "A", email, password: PASSWORD, "fav\u0000": "x" }, "/fav\u0000"],
      ["POST", "/sessions", { email: ada.email, password: `\u0000${PASSWORD}` }, "/password"],
      ["POST", "/rooms", { name: "\u0000" }, "/name", ada.token],
      ["POST", `/rooms/${room.body.id}/messages`, { body: "hello\u0000world" }, "/body", ada.token],
      ["PATCH", `/users/${ada.id}`, { name: "Ada\u0000" }, "/name", ada.token],
    ];
    for (const [method, path, json, pointer, token] of cases) {
      const res = await app.request(method, path, { json, ...(token === undefined ? {} : { token }) });
      assertProblem(t, res, 422);
      t.is(res.body.type, "/problems/validation-failed", `${method} ${path}`);
      t.true(
        res.body.errors.some((e: { pointer: string }) => e.pointer === pointer),
        `${method} ${path}: ${JSON.stringify(res.body.errors)}`,
      );
    }
    t.is(await app.deps.db("users").where({ email }).first(), undefined, "nothing was stored");
    assertNoSecrets(t, [PASSWORD, email, ada.email, ada.token]);
  },
);

test.serial(
  "U+0000 in a socket event payload is an `invalid` reply with its pointer; the socket lives on",
  async (t) => {
    const ada = await app.signUp("Nul");
    const room = await app.request("POST", "/rooms", { token: ada.token, json: { name: "nul" } });
    const topic = `room:${room.body.id}`;
    const ws = new WebSocket(
      `${app.server.socketUrl}/websocket?vsn=2.0.0&token=${encodeURIComponent(ada.socketToken)}`,
    );
    t.teardown(() => ws.terminate());
    const replies = new Map<string, unknown>();
    const waiters = new Map<string, (payload: unknown) => void>();
    ws.on("message", (data) => {
      const [, ref, , event, payload] = JSON.parse(String(data)) as [
        string | null,
        string | null,
        string,
        string,
        unknown,
      ];
      if (event === "phx_reply" && ref !== null) {
        replies.set(ref, payload);
        waiters.get(ref)?.(payload);
      }
    });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const push = (ref: string, event: string, payload: unknown) =>
      new Promise<unknown>((resolve) => {
        waiters.set(ref, resolve);
        ws.send(JSON.stringify(["1", ref, topic, event, payload]));
      });
    t.like(await push("1", "phx_join", {}), { status: "ok" });
    const refused = (await push("2", "message:new", { body: "a\u0000b" })) as {
      status: string;
      response: { reason: string; errors: Array<{ pointer: string }> };
    };
    t.is(refused.status, "error");
    t.is(refused.response.reason, "invalid");
    t.deepEqual(
      refused.response.errors.map((e) => e.pointer),
      ["/body"],
    );
    t.like(await push("3", "message:new", { body: "fine" }), { status: "ok" }, "the socket still serves");
  },
);

test.serial(
  "a database error carrying the INSERT's parameters is a 500 whose log line holds none of them",
  async (t) => {
    // A trigger makes the sign-up's INSERT fail the way drivers report it: PostgreSQL's `detail`
    // quotes the row's values, PGlite attaches the query's parameters, knex prefixes the SQL.
    await app.deps.db.raw(`
    create or replace function refuse_user() returns trigger language plpgsql as $$
    begin raise exception 'refused: "%"', new.email using detail = 'Key (email)=(' || new.email || ') hash ' || new.password_hash; end $$`);
    await app.deps.db.raw(
      "create trigger refuse_user before insert on users for each row execute function refuse_user()",
    );
    t.teardown(() => app.deps.db.raw("drop trigger if exists refuse_user on users"));
    const email = `victim-${randomBytes(4).toString("hex")}@example.com`;
    const before = lines.length;
    const res = await app.request("POST", "/users", { json: { name: "Victim", email, password: PASSWORD } });
    assertProblem(t, res, 500);
    t.notRegex(res.text, /insert|scrypt|refused|victim/i, "no internals in the answer");
    const logged = lines
      .slice(before)
      .map((l) => JSON.parse(l) as { msg: string; err?: { message?: string; code?: string; stack?: string } });
    const failure = logged.find((l) => l.msg === "request failed");
    t.truthy(failure?.err, "the 500 is logged with its error");
    t.is(failure?.err?.code, "P0001", "the SQLSTATE is kept");
    t.regex(failure?.err?.message ?? "", /insert into "users"/, "the SQL (with placeholders) is kept");
    t.regex(failure?.err?.message ?? "", /\$1/);
    assertNoSecrets(t, [email, PASSWORD]);
  },
);

test.serial("crafted pagination cursors are 400 invalid-parameter, never a 500 (fuzzed)", async (t) => {
  const ada = await app.signUp("Cursor");
  const room = await app.request("POST", "/rooms", { token: ada.token, json: { name: "cursors" } });
  const paths = ["/users", "/rooms", `/rooms/${room.body.id}/messages`];
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const cursor = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc
      .record({
        d: fc.constantFrom("f", "b", "x", 1, null),
        k: fc.oneof(
          fc.integer(),
          fc.double(),
          fc.bigInt().map(String),
          fc.constant(2 ** 31),
          fc.constant(-1),
          fc.constant(Number.MAX_SAFE_INTEGER),
          fc.string(),
        ),
      })
      .map(encode),
    fc.jsonValue().map(encode),
  );
  const statuses = new Set<number>();
  await fc.assert(
    fc.asyncProperty(cursor, fc.constantFrom(...paths), async (text, path) => {
      const res = await app.request("GET", `${path}?cursor=${encodeURIComponent(text)}`, { token: ada.token });
      statuses.add(res.status);
      if (res.status === 200) return true;
      return (
        res.status === 400 &&
        res.body.type === "/problems/invalid-parameter" &&
        res.body.errors[0].parameter === "cursor"
      );
    }),
  );
  t.true(statuses.has(400));
  t.false(statuses.has(500));
  // The cases that used to reach the database: keys outside the integer range.
  for (const k of [2 ** 31, 2 ** 40, -(2 ** 40)]) {
    const res = await app.request("GET", `/users?cursor=${encode({ d: "f", k })}`, { token: ada.token });
    assertProblem(t, res, 400);
    t.is(res.body.type, "/problems/invalid-parameter");
  }
  assertNoSecrets(t, [PASSWORD, ada.token]);
});

test.serial(
  "an idempotency fingerprint is keyed with the server's secret: the stored record cannot test password guesses",
  async (t) => {
    const other = await startTestServer();
    t.teardown(() => other.stop());
    const key = randomBytes(16).toString("hex");
    const email = `keyed-${randomBytes(4).toString("hex")}@example.com`;
    const body = { name: "Keyed", email, password: PASSWORD };
    for (const server of [app, other]) {
      t.is((await server.request("POST", "/users", { json: body, headers: { "idempotency-key": key } })).status, 201);
    }
    const [mine, theirs] = await Promise.all(
      [app, other].map((s) => s.deps.db("idempotency_keys").where({ scope: "anonymous", key }).first("fingerprint")),
    );
    t.truthy(mine?.fingerprint);
    t.not(
      mine.fingerprint,
      theirs.fingerprint,
      "two servers with different secrets fingerprint the same request differently",
    );
    // The unkeyed digest of the request (what an attacker holding the row could recompute per guess) is not what is stored.
    const parts = ["POST", "/users", 2, { email, name: "Keyed", password: PASSWORD }];
    t.not(mine.fingerprint, createHash("sha256").update(JSON.stringify(parts)).digest("base64url"));
    // The replay still works.
    const replay = await app.request("POST", "/users", { json: body, headers: { "idempotency-key": key } });
    t.is(replay.status, 201);
    t.is(replay.headers.get("idempotent-replayed"), "true");
  },
);
