/**
 * Named statements (lib/db/prepared.ts) on a real server, over pg's wire protocol: the PostgreSQL
 * of DATABASE_URL or, without it, an in-memory PGlite served over TCP. The pool holds one
 * connection, so the session asked for its prepared statements is the one that ran the queries.
 */
import { randomBytes } from "node:crypto";
import test from "ava";
import { createAccounts, type Accounts, type User } from "../../lib/accounts/index.ts";
import { migrate, observeQueries, openDatabase, type Db, type QueryStop } from "../../lib/db/index.ts";
import { statement } from "../../lib/db/prepared.ts";
import { createLocalPubSub } from "../../lib/pubsub/index.ts";
import { createRooms, type Rooms } from "../../lib/rooms/index.ts";
import { startProxiedDatabase, type ProxiedDatabase } from "../helpers/proxied-database.ts";

const schema = `test_${randomBytes(6).toString("hex")}`;
const ACCOUNT_OPTIONS = {
  secretKeyBase: randomBytes(32).toString("hex"),
  socketTokenTtlSeconds: 60,
  passwordHashCost: 10,
};
let database: ProxiedDatabase;
let db: Db;
let accounts: Accounts;
let rooms: Rooms;

test.before(async () => {
  database = await startProxiedDatabase();
  db = await openDatabase({ databaseUrl: database.databaseUrl, schema, poolMax: 1 });
  await migrate(db);
  accounts = createAccounts(db, ACCOUNT_OPTIONS, createLocalPubSub());
  rooms = createRooms(db, createLocalPubSub());
});

test.after.always(async () => {
  await db?.raw("drop schema if exists ?? cascade", [schema]);
  await db?.destroy();
  await database?.close();
});

async function preparedNames(on: Db = db): Promise<string[]> {
  const result = (await on.raw("select name from pg_prepared_statements order by name")) as {
    rows: Array<{ name: string }>;
  };
  return result.rows.map((row) => row.name);
}

/** A user signed up and logged in through `on`, with a unique e-mail address. */
async function signUp(on: Accounts, name: string): Promise<{ user: User; token: string }> {
  const email = `${name.toLowerCase()}-${schema}@example.com`;
  const user = await on.registerUser({ name, email, password: "a long password" });
  const { token } = await on.createSession(email, "a long password");
  return { user, token };
}

// First: on PGlite every connection shares one server session, so this must run before any other prepares.
test.serial("with preparedStatements: false (DATABASE_PREPARED_STATEMENTS=off) nothing is prepared", async (t) => {
  const unprepared = await openDatabase({
    databaseUrl: database.databaseUrl,
    schema,
    poolMax: 2,
    preparedStatements: false,
  });
  try {
    const theirs = createAccounts(unprepared, ACCOUNT_OPTIONS, createLocalPubSub());
    const { user: zoe, token } = await signUp(theirs, "Zoe");
    // Two connections at once, as many times as it takes for both to have answered.
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => theirs.findSessionByToken(token).then((session) => session?.user.id)),
    );
    t.deepEqual(answers, Array(6).fill(zoe.id));
    t.is((await theirs.findUser(zoe.id))?.name, "Zoe");
    t.deepEqual(await preparedNames(unprepared), []);
  } finally {
    await unprepared.destroy();
  }
});

test.serial("the lookups of every request and of a join are prepared once per connection", async (t) => {
  t.deepEqual(await preparedNames(), []);
  const { user: ada, token } = await signUp(accounts, "Ada");
  const room = await rooms.createRoom(ada.id, { name: "lobby", private: true });
  for (let i = 0; i < 3; i++) {
    t.is((await accounts.findSessionByToken(token))?.user.id, ada.id);
    t.is((await accounts.findUser(ada.id))?.name, "Ada");
    t.true((await rooms.authorizeJoin(ada.id, room.id)).ok);
  }
  t.deepEqual(await preparedNames(), [
    "hypercast.accounts.session",
    "hypercast.accounts.user",
    "hypercast.rooms.membership",
    "hypercast.rooms.room",
  ]);
});

test.serial("a prepared statement keeps no result: changes, revocations and removals are seen at once", async (t) => {
  const { user: bob, token } = await signUp(accounts, "Bob");
  const { user: carol } = await signUp(accounts, "Carol");
  const room = await rooms.createRoom(carol.id, { name: "private", private: true });
  await rooms.addMember(carol.id, room.id, bob.id);
  t.is((await accounts.findUser(bob.id))?.name, "Bob");
  t.true((await rooms.authorizeJoin(bob.id, room.id)).ok);

  await db("users").where({ id: bob.id }).update({ name: "Robert" });
  t.is((await accounts.findUser(bob.id))?.name, "Robert");
  t.is((await accounts.findSessionByToken(token))?.user.name, "Robert");

  await rooms.removeMember(carol.id, room.id, bob.id);
  t.deepEqual(await rooms.authorizeJoin(bob.id, room.id), { ok: false, reason: "unauthorized" });

  await accounts.revokeToken(token);
  t.is(await accounts.findSessionByToken(token), undefined);
  await rooms.deleteRoom(carol.id, room.id);
  t.deepEqual(await rooms.authorizeJoin(carol.id, room.id), { ok: false, reason: "not_found" });
});

test.serial("a column added by a later migration leaves the prepared statements working", async (t) => {
  const { user: dana, token } = await signUp(accounts, "Dana");
  const room = await rooms.createRoom(dana.id, { name: "open", private: false });
  const star = () => db("users").where({ id: dana.id }).first().options({ name: "test.users.star" });
  await star();
  t.is((await accounts.findUser(dana.id))?.name, "Dana");
  t.is((await accounts.findSessionByToken(token))?.user.id, dana.id);
  t.true((await rooms.authorizeJoin(dana.id, room.id)).ok);

  await db.raw("alter table users add column nickname text");
  await db.raw("alter table rooms add column topic text");

  // What naming the columns avoids: a prepared `select *` is refused once its result type changed.
  await t.throwsAsync(star(), { message: /cached plan must not change result type/ });
  t.is((await accounts.findUser(dana.id))?.name, "Dana");
  t.is((await accounts.findSessionByToken(token))?.user.id, dana.id);
  t.true((await rooms.authorizeJoin(dana.id, room.id)).ok);
});

test.serial("a statement is compiled once and sends each call's values in their places", async (t) => {
  const { user: eve } = await signUp(accounts, "Eve");
  const { user: finn } = await signUp(accounts, "Finn");
  const room = await rooms.createRoom(eve.id, { name: "pair", private: true });
  let compiled = 0;
  // The parameters in the opposite order to the bindings, and a constant (the limit) among them.
  const member = statement<[number, number], { user_id: number; room_id: number }>(
    db,
    "test.member",
    (userId, roomId) => {
      compiled++;
      return db("memberships").where({ room_id: roomId }).andWhere({ user_id: userId }).first("user_id", "room_id");
    },
  );
  t.deepEqual(await member(eve.id, room.id), [{ user_id: eve.id, room_id: room.id }]);
  t.deepEqual(await member(finn.id, room.id), []);
  await rooms.addMember(eve.id, room.id, finn.id);
  t.deepEqual(await member(finn.id, room.id), [{ user_id: finn.id, room_id: room.id }]);
  t.is(compiled, 1);
  t.true((await preparedNames()).includes("hypercast.test.member"));
});

test.serial(
  "a statement goes out on a connection of knex's pool with knex's query events, and gives it back after an error",
  async (t) => {
    const { user: gina } = await signUp(accounts, "Gina");
    const stops: QueryStop[] = [];
    const started: Array<{ __knexQueryUid?: string; method?: string; bindings?: unknown[] }> = [];
    const onQuery = (query: (typeof started)[number]) => started.push(query);
    db.on("query", onQuery);
    const stopObserving = observeQueries(db, (stop) => stops.push(stop));
    try {
      const byName = statement<[string], { id: number }>(db, "test.by_name", (name) =>
        db("users").where({ name }).first("id"),
      );
      // A name that is not an integer fails in PostgreSQL, not in our code.
      const byId = statement<[string], { id: number }>(db, "test.by_id", (id) => db("users").where({ id }).first("id"));
      t.deepEqual(await byName("Gina"), [{ id: gina.id }]);
      await t.throwsAsync(byId("not a number"), { message: /invalid input syntax for type integer/ });
      // The pool holds one connection: each call after the error can only run if it was given back.
      t.deepEqual(await Promise.all([byName("Gina"), byName("nobody"), byName("Gina")]), [
        [{ id: gina.id }],
        [],
        [{ id: gina.id }],
      ]);
    } finally {
      stopObserving();
      db.off("query", onQuery);
    }
    t.deepEqual(
      stops.map(({ method, operation, outcome }) => `${method} ${operation} ${outcome}`),
      ["raw SELECT ok", "raw SELECT error", "raw SELECT ok", "raw SELECT ok", "raw SELECT ok"],
    );
    t.deepEqual(started[0]?.bindings, ["Gina", 1]); // the limit of `first` is a binding too
    t.is(new Set(started.map((query) => query.__knexQueryUid)).size, 5);
  },
);

/** The types of the frontend messages in `bytes` (pg's protocol after the startup message): "P", "B", "D", "E", "S"… */
function messageTypes(bytes: Buffer): string[] {
  const types: string[] = [];
  for (let at = 0; at + 5 <= bytes.length; at += 1 + bytes.readInt32BE(at + 1))
    types.push(String.fromCharCode(bytes[at]!));
  return types;
}

const count = (types: string[], type: string) => types.filter((each) => each === type).length;

test.serial(
  "a named statement is parsed and described once per connection, then only bound and executed",
  async (t) => {
    const { user: hana } = await signUp(accounts, "Hana");
    const byId = statement<[number], { id: number; name: string }>(db, "test.described", (id) =>
      db("users").where({ id }).first("id", "name"),
    );
    const sent = database.proxy.record();
    for (let i = 0; i < 3; i++) t.deepEqual(await byId(hana.id), [{ id: hana.id, name: "Hana" }]);
    const types = messageTypes(sent());
    t.deepEqual(
      ["P", "B", "D", "E", "S"].map((type) => count(types, type)),
      [1, 3, 1, 3, 3],
      `messages sent: ${types.join(" ")}`,
    );
  },
);

test.serial("rows read by a statement's kept description are the rows pg's own query reads", async (t) => {
  const sql = `select ?::int as id, ?::int8 as big, 'x'::text as text, '2026-12-05T01:02:03.456Z'::timestamptz as at,
    null::int as nothing, true as yes, '{1,2}'::int[] as list, '{"k":[1,"é"]}'::jsonb as doc, 1.5::numeric as amount,
    '\\x0102'::bytea as bytes, 2 as id`;
  const typed = statement<[number, number], Record<string, unknown>>(db, "test.types", (id, big) =>
    db.raw(sql, [id, big]),
  );
  const expected = ((await db.raw(sql, [7, 9007199254740991])) as { rows: Record<string, unknown>[] }).rows;
  t.deepEqual(await typed(7, 9007199254740991), expected); // described
  t.deepEqual(await typed(7, 9007199254740991), expected); // by the kept description
  t.deepEqual(expected[0]?.["id"], 2, "a repeated column name: the last one wins, as in pg");
});

test.serial(
  "a statement whose result type a migration changed is refused, never read with its old description",
  async (t) => {
    await db.raw("create table described_shape (id int primary key, level int)");
    await db("described_shape").insert({ id: 1, level: 5 });
    const level = statement<[number], { level: unknown }>(db, "test.shape", (id) =>
      db("described_shape").where({ id }).first("level"),
    );
    t.deepEqual(await level(1), [{ level: 5 }]);
    t.deepEqual(await level(1), [{ level: 5 }]);
    await db.raw("alter table described_shape alter column level type text");
    await t.throwsAsync(level(1), { message: /cached plan must not change result type/ });
    // The connection is given back and still works.
    t.deepEqual(await db("described_shape").where({ id: 1 }).first("level"), { level: "5" });
  },
);

test("a statement refuses a parameter that does not reach its SQL as a binding unchanged", (t) => {
  t.throws(
    () =>
      statement<[string], unknown>(db, "test.lowered", (email) => db("users").where({ email: email.toLowerCase() })),
    {
      message: /statement test.lowered: parameter 0 does not reach the SQL as a binding/,
    },
  );
  t.throws(
    () => statement<[string], unknown>(db, "test.identifier", (table) => db("users").whereRaw("?? = 1", [table])),
    {
      message: /statement test.identifier: /,
    },
  );
});
