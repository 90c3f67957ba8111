/**
 * Named statements: a query that every request sends is parsed and planned by PostgreSQL once per
 * connection, then only bound and executed (pg's named prepared statements, through knex's
 * `.options()`), as Ecto does for every query. What is kept is the plan, never a result: every
 * execution reads the tables as they are. PGlite in process ignores the name.
 *
 *     db("users").where({ id }).first("id", "name").options(prepared(db, "accounts.user"))
 *
 * Two rules for such a query:
 * - its columns are named, never `*`: once a migration adds a column, PostgreSQL refuses a
 *   prepared `select *` ("cached plan must not change result type") on every connection that
 *   prepared it, that is on every node still running (tests/db/prepared.test.ts);
 * - its SQL text never varies (no lists of varying length): pg refuses one name for two texts.
 *
 * A prepared statement belongs to a server session. Where several connections share one (PgBouncer
 * in transaction mode before 1.21, PGlite served over TCP), the second connection to prepare a name
 * is refused: `openDatabase({ preparedStatements: false })` (DATABASE_PREPARED_STATEMENTS=off)
 * sends every statement unprepared.
 */
import type { Knex } from "knex";

export function prepared(db: Knex, name: string): { name?: string } {
  return db.userParams["preparedStatements"] === false ? {} : { name: `hypercast.${name}` };
}
