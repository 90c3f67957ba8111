import test from "ava";
import type { Knex } from "knex";
import { createAccounts } from "../../lib/accounts/index.ts";
import type { AccessTokenRow, UserRow } from "../../lib/db/rows.ts";
import { Conflict, Forbidden, NotFound, Unauthorized } from "../../lib/errors.ts";
import { createTestDeps, type TestDeps } from "../helpers/deps.ts";

let deps: TestDeps;
let seq = 0;
const PASSWORD = "correct horse battery";

test.before(async () => {
  deps = await createTestDeps();
});
test.after.always(async () => {
  await deps?.dispose();
});

function register(name = "User", favoriteSports?: string[]) {
  const email = `${name.toLowerCase()}-${++seq}@accounts.example.com`;
  return deps.accounts.registerUser({ name, email, password: PASSWORD, favoriteSports });
}

/** The SQL the database received while `fn` ran (use in serial tests: it sees every query). */
async function queriesDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (query: Knex.Sql) => seen.push(query.sql);
  deps.db.on("query", listener);
  try {
    await fn();
  } finally {
    deps.db.off("query", listener);
  }
  return seen;
}

test("registerUser stores an scrypt hash, never the password", async (t) => {
  const user = await register("Hashed");
  const row = await deps.db<UserRow>("users").where({ id: user.id }).first();
  t.regex(row!.password_hash, /^scrypt\$10\$8\$1\$[\w-]+\$[\w-]+$/, "PASSWORD_HASH_COST=10 in tests");
  t.false(JSON.stringify(row).includes(PASSWORD));
  t.deepEqual(user.favoriteSports, []);
  t.true(user.insertedAt instanceof Date);
});

test("registerUser refuses an e-mail address already taken in any case", async (t) => {
  const user = await register("Taken");
  const error = await t.throwsAsync(
    deps.accounts.registerUser({ name: "Copy", email: user.email.toUpperCase(), password: PASSWORD }),
    {
      instanceOf: Conflict,
    },
  );
  t.deepEqual(error?.errors, [{ pointer: "/email", detail: "is already taken" }]);
});

test("authenticate: right password in; wrong password and unknown e-mail out, alike", async (t) => {
  const user = await register("Auth");
  t.is((await deps.accounts.authenticate(user.email, PASSWORD)).id, user.id);
  t.is(
    (await deps.accounts.authenticate(user.email.toUpperCase(), PASSWORD)).id,
    user.id,
    "e-mail case does not matter",
  );
  const wrong = await t.throwsAsync(deps.accounts.authenticate(user.email, "wrong password"), {
    instanceOf: Unauthorized,
  });
  const unknown = await t.throwsAsync(deps.accounts.authenticate("nobody@accounts.example.com", PASSWORD), {
    instanceOf: Unauthorized,
  });
  t.is(wrong?.message, unknown?.message);
});

test("bearer tokens are stored only as hashes", async (t) => {
  const user = await register("Tokens");
  const session = await deps.accounts.createSession(user.email, PASSWORD);
  t.regex(session.token, /^[\w-]{43}$/);
  const rows = await deps.db<AccessTokenRow>("access_tokens").where({ user_id: user.id });
  t.is(rows.length, 1);
  t.regex(rows[0]!.token_hash, /^[0-9a-f]{64}$/);
  t.not(rows[0]!.token_hash, session.token);
  const everything = JSON.stringify(await deps.db("access_tokens").select("*"));
  t.false(everything.includes(session.token), "the raw token is nowhere in access_tokens");
  t.is((await deps.accounts.findUserByToken(session.token))?.id, user.id);
  t.is(await deps.accounts.findUserByToken(rows[0]!.token_hash), undefined, "the stored hash is not itself a token");
});

test("revokeToken kills that token at once and leaves the user's others", async (t) => {
  const user = await register("Revoke");
  const a = await deps.accounts.createSession(user.email, PASSWORD);
  const b = await deps.accounts.createSession(user.email, PASSWORD);
  t.not(a.token, b.token);
  await deps.accounts.revokeToken(a.token);
  t.is(await deps.accounts.findUserByToken(a.token), undefined);
  t.is((await deps.accounts.findUserByToken(b.token))?.id, user.id);
  await deps.accounts.revokeToken(a.token); // revoking twice is harmless
});

test("deleteUser is self-only and takes the user's tokens with it", async (t) => {
  const user = await register("Deleted");
  const other = await register("Bystander");
  const session = await deps.accounts.createSession(user.email, PASSWORD);
  await t.throwsAsync(deps.accounts.deleteUser(other.id, user.id), { instanceOf: Forbidden });
  await t.throwsAsync(deps.accounts.deleteUser(user.id, 999999), { instanceOf: NotFound });
  await deps.accounts.deleteUser(user.id, user.id);
  t.is(await deps.accounts.findUser(user.id), undefined);
  await t.throwsAsync(deps.accounts.getUser(user.id), { instanceOf: NotFound });
  t.is(await deps.accounts.findUserByToken(session.token), undefined);
  t.is((await deps.db("access_tokens").where({ user_id: user.id })).length, 0);
});

test("updateUser is self-only", async (t) => {
  const user = await register("Owner");
  const other = await register("Intruder");
  await t.throwsAsync(deps.accounts.updateUser(other.id, user.id, { name: "x" }), { instanceOf: Forbidden });
  await t.throwsAsync(deps.accounts.updateUser(user.id, 999999, { name: "x" }), { instanceOf: NotFound });
  t.is((await deps.accounts.updateUser(user.id, user.id, { name: "Renamed" })).name, "Renamed");
});

test("favoriteSports replaces the list; firstFavoriteSport replaces or removes only the first", async (t) => {
  const user = await register("Sporty", ["Soccer", "Tennis", "Chess"]);
  const update = (changes: Parameters<typeof deps.accounts.updateUser>[2]) =>
    deps.accounts.updateUser(user.id, user.id, changes);
  t.deepEqual((await update({ firstFavoriteSport: "Rugby" })).favoriteSports, ["Rugby", "Tennis", "Chess"]);
  t.deepEqual((await update({ firstFavoriteSport: null })).favoriteSports, ["Tennis", "Chess"]);
  t.deepEqual((await update({ name: "Still Sporty" })).favoriteSports, ["Tennis", "Chess"]);
  t.deepEqual((await update({ favoriteSports: ["Golf"] })).favoriteSports, ["Golf"]);
  t.deepEqual((await update({ firstFavoriteSport: null })).favoriteSports, []);
  t.deepEqual(
    (await update({ firstFavoriteSport: null })).favoriteSports,
    [],
    "removing from an empty list keeps it empty",
  );
  t.deepEqual((await update({ firstFavoriteSport: "Chess" })).favoriteSports, ["Chess"]);
});

test.serial("the first-favourite-sport update is a single statement computed from the stored list", async (t) => {
  const user = await register("Atomic", ["Soccer", "Tennis"]);
  // Another writer changes the rest of the list after this caller last read it...
  await deps
    .db("users")
    .where({ id: user.id })
    .update({ favorite_sports: ["Soccer", "Tennis", "Chess", "Go"] });
  let updated: Awaited<ReturnType<typeof deps.accounts.updateUser>> | undefined;
  const sql = await queriesDuring(async () => {
    updated = await deps.accounts.updateUser(user.id, user.id, { firstFavoriteSport: "Rugby" });
  });
  // ...and nothing of theirs is lost, because the new list is computed by the UPDATE itself.
  t.deepEqual(updated?.favoriteSports, ["Rugby", "Tennis", "Chess", "Go"]);
  const writes = sql.filter((q) => /^\s*update\b/i.test(q));
  t.is(writes.length, 1, sql.join("\n"));
  t.regex(writes[0]!, /"favorite_sports" = array_prepend\(.*favorite_sports\[2:\]\)/);
  t.false(
    sql.some((q) => /^\s*(begin|select .* for update)/i.test(q)),
    "no read-modify-write transaction",
  );

  const removeSql = await queriesDuring(() => deps.accounts.updateUser(user.id, user.id, { firstFavoriteSport: null }));
  const removes = removeSql.filter((q) => /^\s*update\b/i.test(q));
  t.is(removes.length, 1);
  t.regex(removes[0]!, /"favorite_sports" = favorite_sports\[2:\]/);
});

test.serial("socket tokens: issued for a user, verified without touching the database", async (t) => {
  const user = await register("Socket");
  const session = await deps.accounts.createSession(user.email, PASSWORD);
  const fresh = await deps.accounts.issueSocketToken(user.id, session.sessionId);
  for (const token of [session.socketToken, fresh]) {
    let result: Awaited<ReturnType<typeof deps.accounts.verifySocketToken>> | undefined;
    const sql = await queriesDuring(async () => {
      result = await deps.accounts.verifySocketToken(token);
    });
    t.like(result, { ok: true, userId: user.id });
    t.deepEqual(sql, [], "no database read");
  }
});

test("socket tokens: expired, foreign and tampered tokens are refused", async (t) => {
  const user = await register("Refused");
  const options = { secretKeyBase: deps.config.secretKeyBase, passwordHashCost: 10 };
  // A lifetime in the past gives an already-expired token without waiting.
  const expired = await createAccounts(
    deps.db,
    { ...options, socketTokenTtlSeconds: -1 },
    deps.pubsub,
  ).issueSocketToken(user.id, 1);
  t.deepEqual(await deps.accounts.verifySocketToken(expired), { ok: false, reason: "expired" });
  const foreign = await createAccounts(
    deps.db,
    { ...options, secretKeyBase: "x".repeat(48), socketTokenTtlSeconds: 60 },
    deps.pubsub,
  ).issueSocketToken(user.id, 1);
  t.deepEqual(await deps.accounts.verifySocketToken(foreign), { ok: false, reason: "invalid" });
  const token = await deps.accounts.issueSocketToken(user.id, 1);
  const [header, payload, signature] = token.split(".") as [string, string, string];
  const forged = Buffer.from(
    JSON.stringify({ ...JSON.parse(Buffer.from(payload, "base64url").toString()), sub: "1" }),
  ).toString("base64url");
  t.deepEqual(await deps.accounts.verifySocketToken(`${header}.${forged}.${signature}`), {
    ok: false,
    reason: "invalid",
  });
  const bearer = (await deps.accounts.createSession(user.email, PASSWORD)).token;
  t.deepEqual(
    await deps.accounts.verifySocketToken(bearer),
    { ok: false, reason: "invalid" },
    "a bearer token is not a socket token",
  );
});

test.serial("listUsers pages by ascending id, forward and backward", async (t) => {
  const ids = [(await register("P1")).id, (await register("P2")).id, (await register("P3")).id];
  const after = await deps.accounts.listUsers({ direction: "forward", from: ids[0]! - 1, limit: 2 });
  t.deepEqual(
    after.rows.map((u) => u.id),
    ids.slice(0, 2),
  );
  t.true(after.more);
  const before = await deps.accounts.listUsers({ direction: "backward", from: ids[2]!, limit: 2 });
  t.deepEqual(
    before.rows.map((u) => u.id),
    ids.slice(0, 2),
    "backward pages still come in ascending order",
  );
});
