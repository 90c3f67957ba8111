/**
 * One statement on a connection of knex's pool, held for that statement only, with knex's query
 * events around it the way knex's runner emits them for a raw query: same pool and acquire timeout,
 * same events (method `raw`), so metrics and tracing (lib/db/index.ts `observeQueries`) see it.
 * Shared by the statements sent straight through pg and through PGlite (./prepared.ts).
 *
 *     const rows = await onPooledConnection(db.client, sql, values, (connection) => run(connection))
 */
import type { Knex } from "knex";

/** The fields of knex's query events that observers read; `sql` in pg's `$1` form. */
interface QueryEvent {
  __knexUid: string | undefined;
  __knexQueryUid: string;
  method: "raw";
  sql: string;
  bindings: readonly unknown[];
}

let sent = 0;

export async function onPooledConnection<Connection, Row>(
  client: Knex.Client,
  sql: string,
  bindings: readonly unknown[],
  run: (connection: Connection) => Promise<{ rows: Row[] }>,
): Promise<Row[]> {
  const connection = (await client.acquireConnection()) as Connection & { __knexUid?: string };
  const event: QueryEvent = {
    __knexUid: connection.__knexUid,
    __knexQueryUid: `hypercast.statement.${++sent}`,
    method: "raw",
    sql,
    bindings,
  };
  try {
    client.emit("query", event);
    const result = await run(connection);
    client.emit("query-response", result, event);
    return result.rows;
  } catch (error) {
    client.emit("query-error", error, event);
    throw error;
  } finally {
    await client.releaseConnection(connection);
  }
}
