/**
 * The one wiring seam: every long-lived service the process needs, built once from the
 * configuration and passed by argument to whoever uses it. Tests build their own with a fresh
 * database schema.
 *
 * With `REDIS_URL` the process is a cluster node: PubSub and Presence are the Redis-backed ones,
 * dropped cross-node publishes become `cluster.publish.dropped` telemetry, malformed messages on
 * their channels `cluster.message.invalid`, and `cluster.redis()` feeds /health's body and the
 * `hypercast_cluster_redis_up` gauge (never /ready); the rate-limit counters live in Redis too, over
 * a connection made here like the others. Without it, all of these are in-process.
 *
 * The web tiers are given the narrow parts they use (lib/http/deps.ts, lib/realtime/deps.ts); a
 * Deps satisfies both.
 *
 * With an OTLP endpoint configured, tracing (telemetry/tracing.ts) is imported here, and only
 * here, dynamically: without one no OpenTelemetry SDK module is loaded.
 *
 *     const deps = await createDeps(loadConfig(process.env))
 *     ...
 *     await closeDeps(deps)
 */
import type { DestinationStream } from "pino";
import { createAccounts, type Accounts } from "./accounts/index.ts";
import { systemClock, type Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { createDashboardFeed, type DashboardFeed } from "./dashboard/feed.ts";
import { migrate, observeQueries, openDatabase, type Db } from "./db/index.ts";
import { createLimiterStore, type LimiterStore } from "./http/rate-limit-store.ts";
import { createIdempotency, type Idempotency } from "./idempotency/index.ts";
import { createLocalPresence, type Presence } from "./presence/index.ts";
import { createRedisPresence } from "./presence/redis.ts";
import { createLocalPubSub, type PubSub } from "./pubsub/index.ts";
import { CLOSE } from "./realtime/close-codes.ts";
import { createRedisPubSub } from "./pubsub/redis.ts";
import { createRooms, type Rooms } from "./rooms/index.ts";
import { createLocalSocketQuota, type SocketQuota } from "./socket-quota/index.ts";
import { createRedisSocketQuota } from "./socket-quota/redis.ts";
import { createTelemetry, type Telemetry } from "./telemetry/index.ts";
import { logEvents } from "./telemetry/log-handler.ts";
import { createLogger, type Logger } from "./telemetry/logger.ts";
import { createMetrics, type Metrics } from "./telemetry/metrics.ts";
import type { Tracing } from "./telemetry/tracing.ts";

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
  /** Open sockets per user (`SOCKETS_PER_USER`), counted cluster-wide when clustered. */
  readonly socketQuota: SocketQuota;
  /** Where rate-limit counters live: memory, or one Redis connection shared by every policy when clustered. */
  readonly limiter: LimiterStore;
  /** Set when clustered (`REDIS_URL`). */
  readonly cluster: ClusterLink | undefined;
  /** The wall clock (version sunsets and brownouts); tests inject one they move by hand. */
  readonly clock: Clock;
  /** Set when traces are exported (`OTEL_EXPORTER_OTLP_ENDPOINT`). */
  readonly tracing: Tracing | undefined;
  /** This node's dashboard snapshots, published every DASHBOARD_INTERVAL_MS, and the history heard from every node. */
  readonly dashboard: DashboardFeed;
}

/** What the rest of the process needs to know about its cluster membership. */
export interface ClusterLink {
  /** The PubSub node id (`<name>:<pid>:<startMs>:<rand>`); presence incarnations start from the same name. */
  readonly nodeId: string;
  /** "ok" while the Redis connections are up and the presence lease is renewed: for /health and metrics. */
  redis(): "ok" | "unavailable";
  /** Resolves when Redis answers PING on the PubSub's connections (the dashboard times it once per tick). */
  ping(): Promise<void>;
}

export interface DepsOptions {
  /** Work in this PostgreSQL schema (tests give each file its own). */
  schema?: string;
  /** Keep the embedded database in memory instead of under DATA_DIR (tests). */
  inMemory?: boolean;
  /** Apply pending migrations at start (always on for the embedded database). */
  migrate?: boolean;
  logger?: Logger;
  /** How long the in-process presence collects changes into one diff (default 30 ms); tests shorten it. Not with REDIS_URL. */
  presenceWindowMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
  /** Where the logger built here writes (tests read its lines); ignored with `logger`. */
  logDestination?: DestinationStream;
}

export async function createDeps(config: Config, options: DepsOptions = {}): Promise<Deps> {
  const tracing =
    config.tracing === undefined
      ? undefined
      : await (await import("./telemetry/tracing.ts")).startTracing(config.tracing, config.nodeName);
  try {
    return await assemble(config, options, tracing);
  } catch (error) {
    // What failed to open is closed already; tracing stops too (its exporter flushed).
    await tracing?.shutdown();
    throw error;
  }
}

/** Everything after tracing: each part opened is closed again if a later one fails to open. */
async function assemble(config: Config, options: DepsOptions, tracing: Tracing | undefined): Promise<Deps> {
  const logger = options.logger ?? createLogger(config.logLevel, options.logDestination, tracing?.logFields);
  const telemetry = createTelemetry({
    onHandlerError: (error) => logger.error({ err: error }, "a telemetry handler threw and was detached"),
  });
  if (tracing !== undefined) telemetry.trace(tracing.tracer);
  telemetry.attach(logEvents(logger));
  if (!config.rateLimits) {
    logger.warn(
      { RATE_LIMITS: "off" },
      "RATE_LIMITS=off: every request and login limit is off; use this only for load tests in a lab",
    );
  }
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: options.inMemory === true ? undefined : config.dataDir,
    schema: options.schema ?? config.databaseSchema,
    preparedStatements: config.preparedStatements,
    log: {
      warn: (message) => logger.warn({ component: "knex" }, message),
      error: (message) => logger.error({ component: "knex" }, message),
      debug: (message) => logger.debug({ component: "knex" }, message),
    },
  });
  if (config.databaseUrl === undefined || options.migrate === true) {
    const applied = await migrate(db).catch(async (error: unknown) => {
      await db.destroy();
      throw error;
    });
    if (applied.length > 0) logger.info({ migrations: applied }, "database migrated");
  }
  const { pubsub, presence, socketQuota, limiter, cluster } = await connectCluster(
    config,
    logger,
    telemetry,
    options.presenceWindowMs,
  ).catch(async (error: unknown) => {
    await db.destroy();
    throw error;
  });
  const accounts = createAccounts(db, config, pubsub);
  // Subscribed first (createAccounts), then loaded: a revocation or pin change published meanwhile is not missed.
  await Promise.all([accounts.loadRevocations(), accounts.loadPinChanges()]).catch(async (error: unknown) => {
    await limiter.close();
    await socketQuota.close();
    await pubsub.close();
    await presence.close();
    await db.destroy();
    throw error;
  });
  const metrics = createMetrics({ db, ...(cluster === undefined ? {} : { redisUp: () => cluster.redis() === "ok" }) });
  telemetry.attach(metrics.handle);
  observeQueries(db, (q) =>
    telemetry.emit(
      "db.query.stop",
      { duration_ms: q.durationMs },
      { method: q.method, outcome: q.outcome, operation: q.operation },
    ),
  );
  return {
    config,
    logger,
    db,
    pubsub,
    presence,
    socketQuota,
    limiter,
    cluster,
    accounts,
    rooms: createRooms(db, pubsub, { traced: telemetry.tracing }),
    telemetry,
    metrics,
    idempotency: createIdempotency(db),
    clock: options.clock ?? systemClock,
    tracing,
    dashboard: createDashboardFeed({
      telemetry,
      pubsub,
      db,
      presence,
      cluster,
      nodeName: config.nodeName,
      intervalMs: config.dashboardIntervalMs,
      slowConsumerCode: CLOSE.SLOW_CONSUMER,
      deprecatedVersions: config.versions.deprecated,
    }),
  };
}

export async function closeDeps(deps: Deps): Promise<void> {
  deps.dashboard.close();
  // Presence first: its leave diffs travel over Redis while the connections are still open.
  await deps.presence.close();
  await deps.socketQuota.close();
  await deps.limiter.close();
  await deps.pubsub.close();
  await deps.db.destroy();
  await deps.tracing?.shutdown();
}

interface ClusterParts {
  pubsub: PubSub;
  presence: Presence;
  socketQuota: SocketQuota;
  limiter: LimiterStore;
  cluster: ClusterLink | undefined;
}

async function connectCluster(
  config: Config,
  logger: Logger,
  telemetry: Telemetry,
  presenceWindowMs: number | undefined,
): Promise<ClusterParts> {
  const url = config.redisUrl;
  if (url === undefined) {
    return {
      pubsub: createLocalPubSub(telemetry),
      presence: createLocalPresence(presenceWindowMs === undefined ? {} : { windowMs: presenceWindowMs }),
      socketQuota: createLocalSocketQuota(config.socketsPerUser),
      limiter: await createLimiterStore(config),
      cluster: undefined,
    };
  }
  const name = config.nodeName;
  const timings = config.cluster;
  const pubsub = await createRedisPubSub({
    url,
    name,
    lingerMs: timings.unsubscribeLingerMs,
    telemetry,
    onDrop: (reason) => telemetry.emit("cluster.publish.dropped", { count: 1 }, { adapter: "redis", reason }),
    onError: throttled((error) => logger.warn({ err: error, component: "pubsub" }, "Redis connection error")),
    onInvalid: (_channel, reason) =>
      telemetry.emit("cluster.message.invalid", { count: 1 }, { source: "pubsub", reason }),
  });
  try {
    const presence = await createRedisPresence({
      url,
      name,
      heartbeatMs: timings.heartbeatMs,
      leaseMs: timings.leaseMs,
      reapMs: timings.reapMs,
      reapLockMs: timings.reapLockMs,
      onError: throttled((error, where) =>
        logger.warn({ err: error, component: "presence", where }, "presence: Redis command failed"),
      ),
      onInvalid: (_channel, reason) =>
        telemetry.emit("cluster.message.invalid", { count: 1 }, { source: "presence", reason }),
      telemetry,
    });
    const socketQuota = await createRedisSocketQuota({
      url,
      name,
      limit: config.socketsPerUser,
      heartbeatMs: timings.heartbeatMs,
      leaseMs: timings.leaseMs,
      onError: throttled((error, where) =>
        logger.warn({ err: error, component: "socket-quota", where }, "socket quota: Redis command failed"),
      ),
      telemetry,
    }).catch(async (error: unknown) => {
      await presence.close();
      throw error;
    });
    const limiter = await createLimiterStore(config, {
      name,
      onError: throttled((error) =>
        logger.warn(
          { err: error, component: "rate-limit" },
          "rate limits: Redis connection error; counting in memory meanwhile",
        ),
      ),
      telemetry,
    }).catch(async (error: unknown) => {
      await socketQuota.close();
      await presence.close();
      throw error;
    });
    logger.info({ node: pubsub.nodeId, presence_node: presence.nodeId() }, "joined the cluster");
    return {
      pubsub,
      presence,
      socketQuota,
      limiter,
      cluster: {
        nodeId: pubsub.nodeId,
        redis: () => (pubsub.health() === "ok" && presence.health() === "ok" ? "ok" : "unavailable"),
        ping: () => pubsub.ping(),
      },
    };
  } catch (error) {
    await pubsub.close();
    throw error;
  }
}

/** Connection errors repeat every retry while Redis is away: log the first, then at most one per 5 s. */
function throttled<A extends unknown[]>(log: (...args: A) => void, everyMs = 5000): (...args: A) => void {
  let last = Number.NEGATIVE_INFINITY;
  return (...args) => {
    const now = performance.now();
    if (now - last < everyMs) return;
    last = now;
    log(...args);
  };
}
