/**
 * The statement deadline (lib/db/deadline.ts), no mocks: knex on PostgreSQL reaches its database
 * through a TCP proxy (tests/helpers/tcp-proxy.ts) that can hold one connection mid-statement, the
 * way a peer that vanished without closing looks from here. With DATABASE_URL the proxy fronts
 * that server; without it, an in-memory PGlite served over TCP.
 */
import test from "ava";
import { openDatabase, type Db } from "../../lib/db/index.ts";
import { isDatabaseUnavailable } from "../../lib/db/errors.ts";
import { startProxiedDatabase, type ProxiedDatabase } from "../helpers/proxied-database.ts";

const DEADLINE_MS = 400;

let database: ProxiedDatabase;
let db: Db;
const warnings: string[] = [];

test.before(async () => {
  database = await startProxiedDatabase();
  db = await openDatabase({
    databaseUrl: database.databaseUrl,
    statementDeadlineMs: DEADLINE_MS,
    poolMax: 3,
    log: { warn: (m) => warnings.push(m), error: () => {}, debug: () => {} },
  });
});

test.after.always(async () => {
  database?.proxy.resume();
  await db?.destroy();
  await database?.close();
});

test.serial(
  "a statement whose answer never comes fails as 'database unavailable' soon after the deadline",
  async (t) => {
    const held = database.proxy.holdOn("held_statement");
    const started = performance.now();
    // Bounded, so a missing deadline fails this test instead of hanging it.
    const error = await t.throwsAsync(within(DEADLINE_MS * 10, db.raw("select 1 as held_statement")));
    const ms = performance.now() - started;
    await held;
    t.true(isDatabaseUnavailable(error), String(error));
    // Within one check interval (a quarter of the deadline here) of the deadline, and never before it.
    t.true(ms >= DEADLINE_MS - DEADLINE_MS / 4 && ms < DEADLINE_MS * 3, `${Math.round(ms)} ms`);
    t.true(
      warnings.some((w) => w.includes(`deadline ${DEADLINE_MS} ms`)),
      warnings.join("\n"),
    );
    database.proxy.resume();
  },
);

function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

test.serial("the pool drops the closed connection and the next statements run", async (t) => {
  const rows = await Promise.all([1, 2, 3, 4].map((n) => db.raw("select ?::int as n", [n])));
  t.deepEqual(
    rows.map((r: { rows: Array<{ n: number }> }) => r.rows[0]?.n),
    [1, 2, 3, 4],
  );
});

test.serial("statements that answer in time are never cut, however long the connection lives", async (t) => {
  const before = warnings.length;
  // Busy connections for well past the deadline, each statement answering quickly.
  const until = performance.now() + DEADLINE_MS * 3;
  let statements = 0;
  await Promise.all(
    [0, 1, 2].map(async () => {
      while (performance.now() < until) {
        await db.raw("select 1");
        statements++;
      }
    }),
  );
  t.true(statements > 10, `${statements} statements`);
  // Idle connections, also past the deadline.
  await new Promise((resolve) => setTimeout(resolve, DEADLINE_MS * 2));
  t.is((await db.raw("select 2 as two")).rows[0].two, 2);
  t.is(warnings.length, before, warnings.join("\n"));
});

test.serial(
  "inside a transaction, time the application spends between statements is not the statement's",
  async (t) => {
    const before = warnings.length;
    const value = await db.transaction(async (trx) => {
      await trx.raw("select 1");
      await new Promise((resolve) => setTimeout(resolve, DEADLINE_MS * 2)); // idle in transaction
      return (await trx.raw("select 3 as three")).rows[0].three as number;
    });
    t.is(value, 3);
    t.is(warnings.length, before, warnings.join("\n"));
  },
);
