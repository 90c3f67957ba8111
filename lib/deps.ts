/**
 * The one wiring seam: every long-lived service the process needs, built once from the
 * configuration and passed by argument to whoever uses it. Tests build their own with a fresh
 * database schema.
 *
 *     const deps = await createDeps(loadConfig(process.env))
 *     ...
 *     await closeDeps(deps)
 */
import { createAccounts, type Accounts } from "./accounts/index.ts";
import type { Config } from "./config.ts";
import { migrate, observeQueries, openDatabase, type Db } from "./db/index.ts";
import { createIdempotency, type Idempotency } from "./idempotency/index.ts";
import { createLocalPresence, type Presence } from "./presence/index.ts";
import { createLocalPubSub, type PubSub } from "./pubsub/index.ts";
import { createRooms, type Rooms } from "./rooms/index.ts";
import { createTelemetry, type Telemetry } from "./telemetry/index.ts";
import { logEvents } from "./telemetry/log-handler.ts";
import { createLogger, type Logger } from "./telemetry/logger.ts";
import { createMetrics, type Metrics } from "./telemetry/metrics.ts";

export interface Deps {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Db;
  readonly pubsub: PubSub;
  /** Who is in which topic; the realtime tier tracks, REST reads. */
  readonly presence: Presence;
  readonly accounts: Accounts;
  readonly rooms: Rooms;
  /** The telemetry event catalogue's emitter; logging and metrics are attached to it here. */
  readonly telemetry: Telemetry;
  /** The Prometheus registry fed by telemetry (served at GET /metrics). */
  readonly metrics: Metrics;
  /** Results kept for `Idempotency-Key` retries. */
  readonly idempotency: Idempotency;
}

export interface DepsOptions {
  /** Work in this PostgreSQL schema (tests give each file its own). */
  schema?: string;
  /** Keep the embedded database in memory instead of under DATA_DIR (tests). */
  inMemory?: boolean;
  /** Apply pending migrations at start (always on for the embedded database). */
  migrate?: boolean;
  logger?: Logger;
}

export async function createDeps(config: Config, options: DepsOptions = {}): Promise<Deps> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const telemetry = createTelemetry({
    onHandlerError: (error) => logger.error({ err: error }, "a telemetry handler threw and was detached"),
  });
  telemetry.attach(logEvents(logger));
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: options.inMemory === true ? undefined : config.dataDir,
    schema: options.schema,
    log: {
      warn: (message) => logger.warn({ component: "knex" }, message),
      error: (message) => logger.error({ component: "knex" }, message),
      debug: (message) => logger.debug({ component: "knex" }, message),
    },
  });
  if (config.databaseUrl === undefined || options.migrate === true) {
    const applied = await migrate(db);
    if (applied.length > 0) logger.info({ migrations: applied }, "database migrated");
  }
  const metrics = createMetrics({ db });
  telemetry.attach(metrics.handle);
  observeQueries(db, (q) => telemetry.emit("db.query.stop", { duration_ms: q.durationMs }, { method: q.method, outcome: q.outcome }));
  const pubsub = createLocalPubSub();
  return {
    config,
    logger,
    db,
    pubsub,
    presence: createLocalPresence(),
    accounts: createAccounts(db, config),
    rooms: createRooms(db, pubsub),
    telemetry,
    metrics,
    idempotency: createIdempotency(db),
  };
}

export async function closeDeps(deps: Deps): Promise<void> {
  await deps.pubsub.close();
  await deps.db.destroy();
}
