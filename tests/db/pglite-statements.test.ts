/**
 * Named statements on the embedded PGlite, in process (lib/db/pglite-statements.ts): the database
 * `npm start` runs on, whatever DATABASE_URL says. One in-memory database, its tables named per test.
 */
import test from "ava";
import { migrate, observeQueries, openDatabase, type Db, type QueryStop } from "../../lib/db/index.ts";
import { embeddedPglite } from "../../lib/db/pglite-statements.ts";
import { statement } from "../../lib/db/prepared.ts";

let db: Db;

test.before(async () => {
  db = await openDatabase({ databaseUrl: undefined });
  await migrate(db);
});

test.after.always(() => db?.destroy());

/** A fresh table of its own for a test. */
async function things(table: string): Promise<void> {
  await db.raw(
    `create table ?? (id serial primary key, name text not null, big bigint, flag boolean, at timestamptz,
       doc jsonb, tags text[], counts int[], note text)`,
    [table],
  );
}

async function preparedNames(): Promise<string[]> {
  const result = (await db.raw("select name from pg_prepared_statements order by name")) as {
    rows: Array<{ name: string }>;
  };
  return result.rows.map((row) => row.name);
}

test.serial(
  "a statement is parsed once under its name, then each call is one call into the database with its values",
  async (t) => {
    await things("calls");
    await db("calls").insert([{ name: "a" }, { name: "b" }]);
    const pglite = embeddedPglite(db)!;
    const calls: string[] = [];
    const execProtocol = pglite.execProtocol.bind(pglite);
    t.teardown(() => {
      pglite.execProtocol = execProtocol;
    });
    pglite.execProtocol = (message, options) => {
      // The first byte of each message in the call: P(arse), D(escribe), B(ind), E(xecute), S(ync).
      const kinds: string[] = [];
      for (let at = 0; at < message.length;) {
        kinds.push(String.fromCharCode(message[at]!));
        at += 1 + new DataView(message.buffer, message.byteOffset + at + 1, 4).getInt32(0);
      }
      calls.push(kinds.join(""));
      return execProtocol(message, options);
    };
    const byName = statement<[string], { id: number }>(db, "test.calls", (name) =>
      db("calls").where({ name }).first("id"),
    );
    t.deepEqual(await byName("a"), [{ id: 1 }]);
    t.deepEqual(await byName("b"), [{ id: 2 }]);
    t.deepEqual(await byName("c"), []);
    t.deepEqual(calls, ["PDS", "BES", "BES", "BES"]);
    t.true((await preparedNames()).includes("hypercast.test.calls"));
  },
);

test.serial("its rows are the ones PGlite's own query returns, type for type", async (t) => {
  await things("typed");
  await db("typed").insert({
    name: "typed",
    big: "9007199254740993",
    flag: true,
    at: new Date("2026-12-03T10:00:00.123Z"),
    doc: JSON.stringify({ a: [1, "x"], b: null }),
    tags: ["x", "y,z", 'quote"d'],
    counts: [1, 2, 3],
    note: null,
  });
  const columns = ["id", "name", "big", "flag", "at", "doc", "tags", "counts", "note"];
  const byName = statement<[string], Record<string, unknown>>(db, "test.typed", (name) =>
    db("typed").where({ name }).select(columns),
  );
  const expected = (
    (await db.raw(`select ${columns.join(", ")} from typed where name = ?`, ["typed"])) as { rows: unknown[] }
  ).rows;
  const rows = await byName("typed");
  t.deepEqual(rows, expected as Array<Record<string, unknown>>);
  t.true(rows[0]!["at"] instanceof Date);
  t.deepEqual(rows[0]!["tags"], ["x", "y,z", 'quote"d']);
  // Parameters are serialized by their types too: an array and a timestamp, read back.
  const tagged = statement<[string[], Date], { name: string }>(db, "test.tagged", (tags, at) =>
    db("typed").whereRaw("tags = ?::text[] and at = ?::timestamptz", [tags, at]).select("name"),
  );
  t.deepEqual(await tagged(["x", "y,z", 'quote"d'], new Date("2026-12-03T10:00:00.123Z")), [{ name: "typed" }]);
});

test.serial("knex's query events go out for each call, and the connection is given back after an error", async (t) => {
  await things("failing");
  await db("failing").insert({ name: "a" });
  const stops: QueryStop[] = [];
  const stop = observeQueries(db, (q) => stops.push(q));
  const byId = statement<[string], { id: number }>(db, "test.by_id", (id) => db("failing").where({ id }).first("id"));
  await t.throwsAsync(byId("not a number"), { message: /invalid input syntax for type integer/ });
  // knex holds one PGlite connection: these run only if the failed call gave it back.
  t.deepEqual(await Promise.all([byId("1"), byId("2"), byId("1")]), [[{ id: 1 }], [], [{ id: 1 }]]);
  stop();
  t.deepEqual(
    stops.map(({ method, operation, outcome }) => `${method} ${operation} ${outcome}`),
    ["raw SELECT error", "raw SELECT ok", "raw SELECT ok", "raw SELECT ok"],
  );
});

test.serial(
  "a statement never runs inside another caller's transaction: it waits for the transaction's end",
  async (t) => {
    await things("txn");
    const byName = statement<[string], { id: number }>(db, "test.txn", (name) => db("txn").where({ name }).first("id"));
    await byName("warm");
    let lookup: Promise<Array<{ id: number }>> | undefined;
    await db
      .transaction(async (trx) => {
        await trx("txn").insert({ name: "uncommitted" });
        // PGlite has one session: run inside this transaction, the lookup would see the row.
        lookup = byName("uncommitted");
        await new Promise((resolve) => setTimeout(resolve, 50));
        throw new Error("rolled back on purpose");
      })
      .catch(() => undefined);
    t.deepEqual(await lookup, []);
  },
);

test.serial(
  "a statement the database refused is prepared again once it can be; one name shares its statement",
  async (t) => {
    const build = (name: string) => db("later").where({ name }).first("id");
    const byName = statement<[string], { id: number }>(db, "test.later", build);
    await t.throwsAsync(byName("x"), { message: /relation "later" does not exist/ });
    await db.raw("create table later (id serial primary key, name text)");
    await db("later").insert({ name: "x" });
    t.deepEqual(await byName("x"), [{ id: 1 }]);
    // A second function of the same name and text (a context made twice on one database) shares it.
    t.deepEqual(await statement<[string], { id: number }>(db, "test.later", build)("x"), [{ id: 1 }]);
    // Another text under the same name is refused, as PostgreSQL refuses it.
    const other = statement<[string], { id: number }>(db, "test.later", (name) =>
      db("later").where({ name }).first("name"),
    );
    await t.throwsAsync(other("x"), { message: /statement hypercast.test.later was prepared with another text/ });
  },
);

test.serial("the migrated schema's hot statements are named on the embedded database", async (t) => {
  const { createAccounts } = await import("../../lib/accounts/index.ts");
  const { createLocalPubSub } = await import("../../lib/pubsub/index.ts");
  const accounts = createAccounts(
    db,
    { secretKeyBase: "x".repeat(64), socketTokenTtlSeconds: 60, passwordHashCost: 10 },
    createLocalPubSub(),
  );
  const user = await accounts.registerUser({ name: "Ada", email: "ada@example.com", password: "a long password" });
  t.is((await accounts.findUser(user.id))?.name, "Ada");
  t.true((await preparedNames()).includes("hypercast.accounts.user"));
});
