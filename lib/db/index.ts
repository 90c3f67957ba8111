/**
 * The database: a knex instance on PostgreSQL (`DATABASE_URL`) or on the embedded PGlite
 * (file-backed under DATA_DIR), plus the migrator. Contexts receive the knex instance; nothing
 * else in the process opens connections.
 *
 *     const db = await openDatabase({ databaseUrl: undefined, dataDir: "./.data" })
 *     await migrate(db)
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import knexFactory, { type Knex } from "knex";
import pg from "pg";
import { statementDeadline } from "./deadline.ts";
import { migrationSource } from "./migrations/index.ts";

export type Db = Knex;

export interface DatabaseOptions {
  /** A PostgreSQL URL; undefined selects the embedded PGlite. */
  databaseUrl: string | undefined;
  /** Where PGlite keeps its files; undefined keeps PGlite in memory (tests). */
  dataDir?: string | undefined;
  /** A PostgreSQL schema to work in (created if missing), so test files never collide. */
  schema?: string | undefined;
  /** The pool size on PostgreSQL. */
  poolMax?: number;
  /**
   * On PostgreSQL: how long a statement may go without an answer before its connection is closed
   * and it fails as "database unavailable" (deadline.ts). Default 30 s.
   */
  statementDeadlineMs?: number;
  /**
   * On PostgreSQL: whether the hot lookups are sent as prepared statements (./prepared.ts).
   * Default true; false for a server session shared by several connections.
   */
  preparedStatements?: boolean;
  /** Where knex's own warnings go (by default it writes to the console). */
  log?: { warn(message: string): void; error(message: string): void; debug(message: string): void };
}

const STATEMENT_DEADLINE_MS = 30_000;

// PostgreSQL `bigint` (count(*), sums) would otherwise arrive as strings; our ids are `integer`.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/** Opens (and for PGlite creates) the database. */
export async function openDatabase(options: DatabaseOptions): Promise<Db> {
  if (options.databaseUrl !== undefined) {
    const schema = options.schema;
    const limitMs = options.statementDeadlineMs ?? STATEMENT_DEADLINE_MS;
    const deadline = statementDeadline(limitMs, (quietMs) =>
      options.log?.warn(
        `a statement had no answer for ${quietMs} ms (deadline ${limitMs} ms): its connection was closed`,
      ),
    );
    const db = knexFactory({
      client: "pg",
      // The connect timeout, keepAlive and the statement deadline bound how long a request can
      // hang on a connection whose peer vanished without closing it; each failure reads as
      // "database unavailable". The deadline replaces pg's query_timeout (deadline.ts says why).
      connection: { connectionString: options.databaseUrl, connectionTimeoutMillis: 5000, keepAlive: true },
      searchPath: schema === undefined ? undefined : [schema],
      pool: { min: 0, max: options.poolMax ?? 10, afterCreate: deadline.adopt },
      acquireConnectionTimeout: 10000,
      log: knexLog(options.log),
      // Error messages carry the SQL with placeholders, never the parameter values (knex inlines them by default).
      compileSqlOnError: false,
    });
    // Read by ./prepared.ts for every query it names.
    db.userParams = { preparedStatements: options.preparedStatements ?? true };
    if (schema !== undefined) await db.raw("create schema if not exists ??", [schema]);
    return db;
  }
  // Loaded only for the embedded database: a node on PostgreSQL never holds PGlite's modules.
  const { default: ClientPgLite } = await import("knex-pglite");
  if (options.dataDir === undefined) {
    return knexFactory({
      client: ClientPgLite,
      dialect: "postgres",
      connection: {} as Knex.StaticConnectionConfig,
      compileSqlOnError: false,
    });
  }
  const filename = join(options.dataDir, "pgdata");
  mkdirSync(filename, { recursive: true });
  return knexFactory({ client: ClientPgLite, dialect: "postgres", connection: { filename }, compileSqlOnError: false });
}

function knexLog(log: DatabaseOptions["log"]): Knex.Config["log"] {
  if (log === undefined) return undefined;
  const text = (message: unknown) => (message instanceof Error ? message.message : String(message));
  return {
    warn: (m: unknown) => log.warn(text(m)),
    error: (m: unknown) => log.error(text(m)),
    deprecate: (m: unknown) => log.warn(text(m)),
    debug: (m: unknown) => log.debug(text(m)),
  };
}

export interface QueryStop {
  /** Time on the connection, from sending the query to its answer. */
  durationMs: number;
  /** knex's method: select, insert, update, del, first, raw… */
  method: string;
  /** The statement's SQL verb (SELECT, INSERT, UPDATE, DELETE, WITH…), from its first word only; raw SQL included. */
  operation: string | undefined;
  outcome: "ok" | "error";
}

/**
 * Calls `onStop` after every query of `db` (and of its transactions), from knex's `query` /
 * `query-response` / `query-error` events keyed by `__knexQueryUid`. Keeps nothing of a query
 * but its method and leading SQL verb: never its SQL text or bindings. Returns the function that stops observing.
 *
 *     const stop = observeQueries(db, (q) => console.log(q.method, q.outcome, q.durationMs))
 */
export function observeQueries(db: Db, onStop: (query: QueryStop) => void): () => void {
  const started = new Map<string, { at: number; method: string; operation: string | undefined }>();
  const onQuery = (query: { __knexQueryUid?: string; method?: string; sql?: string }) => {
    if (query.__knexQueryUid === undefined) return;
    // A query whose answer never comes (its connection torn down mid-flight) must not pin memory.
    if (started.size >= MAX_QUERIES_IN_FLIGHT) started.clear();
    started.set(query.__knexQueryUid, {
      at: performance.now(),
      method: query.method ?? "raw",
      operation: sqlVerb(query.sql),
    });
  };
  const finish = (query: { __knexQueryUid?: string } | undefined, outcome: QueryStop["outcome"]) => {
    const uid = query?.__knexQueryUid;
    const start = uid === undefined ? undefined : started.get(uid);
    if (uid === undefined || start === undefined) return;
    started.delete(uid);
    onStop({ durationMs: performance.now() - start.at, method: start.method, operation: start.operation, outcome });
  };
  const onResponse = (_response: unknown, query: { __knexQueryUid?: string }) => finish(query, "ok");
  const onError = (_error: unknown, query: { __knexQueryUid?: string }) => finish(query, "error");
  db.on("query", onQuery).on("query-response", onResponse).on("query-error", onError);
  return () => {
    db.off("query", onQuery).off("query-response", onResponse).off("query-error", onError);
    started.clear();
  };
}

const SQL_VERBS: ReadonlySet<string> = new Set([
  "SELECT",
  "INSERT",
  "UPDATE",
  "DELETE",
  "BEGIN",
  "COMMIT",
  "ROLLBACK",
  "SAVEPOINT",
  "RELEASE",
  "CREATE",
  "ALTER",
  "DROP",
  "TRUNCATE",
  "SET",
  "SHOW",
  "LOCK",
]);

/**
 * `insert into …` → `INSERT`; anything else (a comment first, an unknown word) → undefined. A
 * `WITH …` statement is named by what it does: the data-modifying verb that opens a CTE's body or
 * follows the CTEs (`with inserted as (insert …) select …` → `INSERT`), else `SELECT`.
 */
function sqlVerb(sql: string | undefined): string | undefined {
  const word = sql === undefined ? undefined : /^\s*([A-Za-z]+)/.exec(sql)?.[1]?.toUpperCase();
  if (word === "WITH") return /[()]\s*(insert|update|delete)\b/i.exec(sql!)?.[1]?.toUpperCase() ?? "SELECT";
  return word !== undefined && SQL_VERBS.has(word) ? word : undefined;
}

/** More unanswered queries than any pool holds: past it the bookkeeping starts afresh. */
const MAX_QUERIES_IN_FLIGHT = 10_000;

/** Applies every pending migration (append-only, in `migrations/`). Returns the names applied. */
export async function migrate(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}
