/**
 * Idempotency-Key on POST (Stripe's semantics): replay of the stored result, 422 for a reused key,
 * 409 while in flight, per-user scopes, expiry and purging, and what is (not) stored. The
 * in-flight and 5xx cases run on a second server whose database sits behind a TCP proxy
 * (tests/helpers/proxied-database.ts): the first request is really held in, or cut off from, the
 * database.
 */
import test from "ava";
import { randomUUID } from "node:crypto";
import { mediaType } from "../../lib/versions.ts";
import { assertProblem } from "../helpers/api.ts";
import { createIdempotency } from "../../lib/idempotency/index.ts";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";
import { startProxiedDatabase, type ProxiedDatabase } from "../helpers/proxied-database.ts";

let app: TestServer;
let database: ProxiedDatabase;
/** A server whose database the tests can hold or cut (serial tests only). */
let proxied: TestServer;
test.before(async () => {
  app = await startTestServer();
  database = await startProxiedDatabase();
  proxied = await startTestServer(database.env);
});
test.after.always(async () => {
  await app?.stop();
  database?.proxy.resume();
  await database?.proxy.restore();
  await proxied?.stop();
  await database?.close();
});

/** The room's INSERT on the wire: where the proxy cuts a POST /rooms. */
const ROOM_INSERT = 'insert into "rooms"';
/**
 * The action's transaction opening (knex sends it as its own query): where the proxy holds a POST
 * /rooms that has claimed its key. Held before, not inside, the transaction: PGlite's socket
 * server runs one session for all connections, and an open transaction there would stall them all.
 */
const ACTION_BEGIN = "BEGIN;";
/** How long the server may take to notice the database is back (as in database-down.test.ts). */
const RECOVERY_MS = 20_000;

const keyed = (key: string) => ({ "idempotency-key": key });
const rows = (key: string) => app.deps.db("idempotency_keys").where({ key });

test("the same key and body replays the first result: status, Location, body, and Idempotent-Replayed", async (t) => {
  const ada = await app.signUp("Ada");
  const key = randomUUID();
  const first = await app.request("POST", "/rooms", { token: ada.token, json: { name: "once" }, headers: keyed(key) });
  t.is(first.status, 201);
  t.is(first.headers.get("idempotent-replayed"), null);
  const again = await app.request("POST", "/rooms", { token: ada.token, json: { name: "once" }, headers: keyed(key) });
  t.is(again.status, 201);
  t.is(again.headers.get("idempotent-replayed"), "true");
  t.is(again.headers.get("location"), first.headers.get("location"));
  t.is(again.headers.get("content-type"), first.headers.get("content-type"));
  t.is(again.text, first.text, "byte for byte");
  const rooms = await app.request("GET", "/rooms?limit=100", { token: ada.token });
  t.is(
    rooms.body._embedded.rooms.filter((r: { name: string }) => r.name === "once").length,
    1,
    "the work was done once",
  );
});

test("the same key with a different body, path or version → 422; other users' keys are their own", async (t) => {
  const ada = await app.signUp("Ada");
  const bob = await app.signUp("Bob");
  const key = randomUUID();
  const room = await app.request("POST", "/rooms", { token: ada.token, json: { name: "a" }, headers: keyed(key) });
  t.is(room.status, 201);
  const reused = [
    await app.request("POST", "/rooms", { token: ada.token, json: { name: "b" }, headers: keyed(key) }),
    await app.request("POST", `/rooms/${room.body.id}/messages`, {
      token: ada.token,
      json: { body: "a" },
      headers: keyed(key),
    }),
    await app.request("POST", "/rooms", {
      token: ada.token,
      json: { name: "a" },
      accept: mediaType(1),
      headers: keyed(key),
    }),
  ];
  for (const res of reused) {
    assertProblem(t, res, 422);
    t.is(res.body.type, "/problems/idempotency-key-reused");
  }
  // Key order in the body does not make it another request.
  const reordered = await app.request("POST", "/rooms", {
    token: ada.token,
    raw: '{"private":false,"name":"c"}',
    contentType: "application/json",
    headers: keyed(`${key}-2`),
  });
  const same = await app.request("POST", "/rooms", {
    token: ada.token,
    raw: '{"name":"c","private":false}',
    contentType: "application/json",
    headers: keyed(`${key}-2`),
  });
  t.is(same.headers.get("idempotent-replayed"), "true");
  t.is(same.body.id, reordered.body.id);

  const bobs = await app.request("POST", "/rooms", { token: bob.token, json: { name: "b" }, headers: keyed(key) });
  t.is(bobs.status, 201, "scoped per user");
  t.is(bobs.headers.get("idempotent-replayed"), null);
  t.not(bobs.body.id, room.body.id);
});

test.serial("while the first request is in flight → 409 for the second; the first then completes, once", async (t) => {
  const ada = await proxied.signUp("Ada");
  const key = randomUUID();
  const name = `held-${key}`;
  const send = () => proxied.request("POST", "/rooms", { token: ada.token, json: { name }, headers: keyed(key) });
  const held = database.proxy.holdOn(ACTION_BEGIN);
  const first = send();
  await held; // the first request has claimed its key, and its action is held in the database
  t.like(await proxied.deps.db("idempotency_keys").where({ key }).first(), { status: null }, "claimed, no result yet");
  try {
    const during = await send();
    assertProblem(t, during, 409);
    t.is(during.body.type, "/problems/idempotency-key-in-use");
    t.is(during.headers.get("retry-after"), "1");
  } finally {
    database.proxy.resume();
  }
  const done = await first;
  t.is(done.status, 201, done.text);
  t.is(done.headers.get("idempotent-replayed"), null);
  const after = await send();
  t.is(after.status, 201);
  t.is(after.headers.get("idempotent-replayed"), "true");
  t.is(after.body.id, done.body.id);
  t.is((await proxied.deps.db("rooms").where({ name })).length, 1, "the work was done once");
});

test("a claim whose request died is taken over once the lock timeout passes", async (t) => {
  // A request that dies leaves its claim unfinished; no release, no complete. A short lock timeout
  // instead of the default 5 minutes, polled for (no sleep stands in for the timeout).
  const idempotency = createIdempotency(app.deps.db, { lockTimeoutSeconds: 1 });
  const request = { scope: "user:0", key: randomUUID(), fingerprint: "f" };
  t.deepEqual(await idempotency.claim(request), { kind: "claimed" });
  t.deepEqual(await idempotency.claim(request), { kind: "in_flight" });
  t.deepEqual(await idempotency.claim({ ...request, fingerprint: "g" }), { kind: "mismatch" });
  const deadline = Date.now() + 10_000;
  let claim = await idempotency.claim(request);
  while (claim.kind === "in_flight" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    claim = await idempotency.claim(request);
  }
  t.deepEqual(claim, { kind: "claimed" });
});

test("4xx results are kept and replayed; requests refused before the action (schema) are not", async (t) => {
  const ada = await app.signUp("Ada");
  const key = randomUUID();
  const missing = await app.request("POST", "/rooms/999999/messages", {
    token: ada.token,
    json: { body: "hi" },
    headers: keyed(key),
  });
  assertProblem(t, missing, 404);
  const replayed = await app.request("POST", "/rooms/999999/messages", {
    token: ada.token,
    json: { body: "hi" },
    headers: keyed(key),
  });
  assertProblem(t, replayed, 404);
  t.is(replayed.headers.get("idempotent-replayed"), "true");
  t.deepEqual(replayed.body, missing.body);

  const other = randomUUID();
  const invalid = await app.request("POST", "/rooms", { token: ada.token, json: { name: "" }, headers: keyed(other) });
  assertProblem(t, invalid, 422);
  t.is((await rows(other)).length, 0, "a body the schema refuses never reaches the key");
  const fixed = await app.request("POST", "/rooms", {
    token: ada.token,
    json: { name: "fixed" },
    headers: keyed(other),
  });
  t.is(fixed.status, 201);
});

test("expired keys are ignored and purged", async (t) => {
  const ada = await app.signUp("Ada");
  const key = randomUUID();
  const first = await app.request("POST", "/rooms", { token: ada.token, json: { name: "old" }, headers: keyed(key) });
  const [row] = await rows(key);
  const hours = (row.expires_at.getTime() - row.inserted_at.getTime()) / 3_600_000;
  t.true(Math.abs(hours - 24) < 0.01, "kept 24 h");

  await rows(key).update({ expires_at: app.deps.db.raw("now() - interval '1 second'") });
  const fresh = await app.request("POST", "/rooms", {
    token: ada.token,
    json: { name: "new body is fine" },
    headers: keyed(key),
  });
  t.is(fresh.status, 201);
  t.is(fresh.headers.get("idempotent-replayed"), null);
  t.not(fresh.body.id, first.body.id);

  await rows(key).update({ expires_at: app.deps.db.raw("now() - interval '1 second'") });
  const purged = await app.deps.idempotency.purgeExpired();
  t.true(purged >= 1, String(purged));
  t.is((await rows(key)).length, 0);
});

for (const moment of ["before the request", "as the room's INSERT is sent"] as const) {
  test.serial(
    `a POST cut off from the database ${moment} gets a 503; its retry after the restore runs afresh, once`,
    async (t) => {
      const ada = await proxied.signUp("Ada");
      const key = randomUUID();
      const name = `cut-${key}`;
      const send = () => proxied.request("POST", "/rooms", { token: ada.token, json: { name }, headers: keyed(key) });
      let first: TestResponse;
      try {
        if (moment === "before the request") {
          await database.proxy.cut();
          first = await send();
        } else {
          const cut = database.proxy.cutOn(ROOM_INSERT);
          first = await send();
          await cut;
        }
        assertProblem(t, first, 503);
      } finally {
        await database.proxy.restore();
      }
      const deadline = Date.now() + RECOVERY_MS;
      let retried = await send();
      while (retried.status === 503 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        retried = await send();
      }
      t.is(
        retried.status,
        201,
        `the retry runs afresh (a 409 means the failed request's claim was never released): ${retried.text}`,
      );
      t.is(retried.headers.get("idempotent-replayed"), null);
      const replayed = await send();
      t.is(replayed.headers.get("idempotent-replayed"), "true");
      t.is(replayed.body.id, retried.body.id);
      t.is((await proxied.deps.db("rooms").where({ name })).length, 1, "exactly one room");
    },
  );
}

test("public sign-up is idempotent in the anonymous scope; log-in ignores the key (its answer is a credential)", async (t) => {
  const key = randomUUID();
  const body = { name: "Cy", email: `cy-${key}@example.com`, password: "correct horse" };
  const first = await app.request("POST", "/users", { json: body, headers: keyed(key) });
  t.is(first.status, 201);
  const again = await app.request("POST", "/users", { json: body, headers: keyed(key) });
  t.is(again.status, 201);
  t.is(again.headers.get("idempotent-replayed"), "true");
  t.is(again.headers.get("location"), `/users/${first.body.id}`);
  t.deepEqual(again.body, first.body);
  const [row] = await rows(key);
  t.is(row.scope, "anonymous");
  assertProblem(t, await app.request("POST", "/users", { json: { ...body, name: "Other" }, headers: keyed(key) }), 422);

  const login = { email: body.email, password: body.password };
  const one = await app.request("POST", "/sessions", { json: login, headers: keyed(`${key}-login`) });
  const two = await app.request("POST", "/sessions", { json: login, headers: keyed(`${key}-login`) });
  t.is(two.status, 201);
  t.is(two.headers.get("idempotent-replayed"), null);
  t.not(one.body.token, two.body.token);
  t.is((await rows(`${key}-login`)).length, 0, "no credential is ever stored");
});

test("a malformed key is a 400", async (t) => {
  const ada = await app.signUp("Ada");
  for (const key of ["has space", "x".repeat(256), "é"]) {
    const res = await app.request("POST", "/rooms", {
      token: ada.token,
      json: { name: "k" },
      headers: { "idempotency-key": key },
    });
    assertProblem(t, res, 400);
  }
});
