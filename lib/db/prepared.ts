/**
 * Named statements: a query that every request sends is parsed and planned by PostgreSQL once per
 * connection, then only bound and executed (pg's named prepared statements, through knex's
 * `.options()`), as Ecto does for every query. What is kept is the plan, never a result: every
 * execution reads the tables as they are. On PGlite in process, knex's queries are sent unnamed (its
 * `query` ignores the name); a `statement` is named (./pglite-statements.ts).
 *
 *     db("users").where({ id }).first("id", "name").options(prepared(db, "accounts.user"))
 *
 * Two rules for such a query:
 * - its columns are named, never `*`: once a migration adds a column, PostgreSQL refuses a
 *   prepared `select *` ("cached plan must not change result type") on every connection that
 *   prepared it, that is on every node still running (tests/db/prepared.test.ts);
 * - its SQL text never varies (no lists of varying length): pg refuses one name for two texts.
 *
 * Since the text never varies, `statement` also compiles it once: knex's query builder turns a
 * query into SQL on every execution (tens of µs on the request path, more than anything else
 * knex does), and a statement built once is sent as that SQL with only its bindings new. On
 * PGlite in process it is bound and executed under its name in one call into the database. On
 * PostgreSQL it is sent on a connection of knex's pool straight through pg, and knex's `query`,
 * `query-response` and `query-error` events are emitted for it as for any query: knex's runner
 * (a raw query's own compilation, two copies of the query object per event, its promise chain)
 * cost more per request than pg's own work (benchmarks/NOTES.md, "Statements sent through pg").
 * A named one is also described once per connection, not on every execution (./described-once.ts).
 *
 * A prepared statement belongs to a server session. Where several connections share one (PgBouncer
 * in transaction mode before 1.21, PGlite served over TCP), the second connection to prepare a name
 * is refused: `openDatabase({ preparedStatements: false })` (DATABASE_PREPARED_STATEMENTS=off)
 * sends every statement unprepared.
 */
import type { Knex } from "knex";
import type { ClientBase, QueryResult } from "pg";
import { embeddedPglite, throughPglite } from "./pglite-statements.ts";
import { describedOnce } from "./described-once.ts";
import { onPooledConnection } from "./pooled-query.ts";

export function prepared(db: Knex, name: string): { name?: string } {
  return db.userParams["preparedStatements"] === false ? {} : { name: `hypercast.${name}` };
}

/**
 * A named statement compiled once. `build` shapes it with knex's query builder (or `db.raw` with `?`
 * placeholders); each of its parameters must reach the statement as a binding, unchanged (compute
 * a digest before the call, not inside `build`). `arity` is the number of parameters, when `build`
 * takes them as a rest parameter. The function returned sends the compiled SQL with the call's values in
 * their places, through the same knex instance (pool, query events, so metrics and tracing), and
 * resolves to the rows.
 *
 *     const userById = statement(db, "accounts.user", (id: number) => db("users").where({ id }).first("id", "name"))
 *     const [row] = await userById(42)
 */
export function statement<Params extends readonly Knex.Value[], Row>(
  db: Knex,
  name: string,
  build: (...params: Params) => Knex.QueryBuilder | Knex.Raw,
  arity: number = build.length,
): (...params: Params) => Promise<Row[]> {
  // Compiled with a marker in each parameter's place, to learn where each binding comes from (mixed
  // case and padded, so that a parameter lowered, raised or trimmed inside `build` is caught).
  const markers = Array.from({ length: arity }, (_, i) => ` \u0000Hypercast Parameter ${i}\u0000 `);
  const compiled = build(...(markers as unknown as Params)).toSQL();
  // Each binding: the index of the parameter it comes from, or -1 for a constant of the query's own (a limit).
  const sources = compiled.bindings.map((value) => (typeof value === "string" ? markers.indexOf(value) : -1));
  markers.forEach((marker, i) => {
    if (!compiled.bindings.includes(marker))
      throw new Error(`statement ${name}: parameter ${i} does not reach the SQL as a binding`);
  });
  // knex.raw reads `?` as a value and `??` as an identifier: the compiled text must hold exactly one `?` per binding.
  const placeholders = compiled.sql.match(/\\?\?\??/g) ?? [];
  if (placeholders.length !== sources.length || placeholders.some((p) => p !== "?"))
    throw new Error(`statement ${name}: its SQL cannot be sent as compiled (${compiled.sql})`);
  const options = prepared(db, name);
  const values = (params: Params) =>
    sources.map((parameter, i) => (parameter === -1 ? compiled.bindings[i]! : params[parameter]!));
  if (sendsThroughPg(db)) return throughPg(db.client, { ...options, text: compiled.toNative().sql }, values);
  if (options.name !== undefined && embeddedPglite(db) !== undefined)
    return throughPglite(db.client, options.name, compiled.toNative().sql, values);
  return (...params) =>
    db
      .raw(compiled.sql, values(params))
      .options(options)
      .then((result: { rows: Row[] }) => result.rows);
}

/** knex's own PostgreSQL client (named by a string), not one that reuses its dialect with another driver (PGlite's). */
function sendsThroughPg(db: Knex): boolean {
  const client = db.client as Knex.Client & { driverName?: string };
  return typeof client.config.client === "string" && client.driverName === "pg";
}

/** Sends a compiled statement through pg, on a connection of knex's pool, as knex would. */
function throughPg<Params extends readonly Knex.Value[], Row>(
  client: Knex.Client,
  query: { name?: string; text: string },
  values: (params: Params) => unknown[],
): (...params: Params) => Promise<Row[]> {
  return (...params) => {
    const bound = values(params);
    return onPooledConnection<ClientBase, Row>(client, query.text, bound, (connection) =>
      query.name === undefined
        ? (connection.query({ text: query.text, values: bound }) as Promise<QueryResult & { rows: Row[] }>)
        : describedOnce<Row>(connection, query.name, query.text, bound),
    );
  };
}
