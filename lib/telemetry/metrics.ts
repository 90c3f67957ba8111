/**
 * Prometheus metrics as a telemetry handler. Each app gets its own prom-client Registry (never
 * the global one), so several apps can live in one process (tests) without sharing counters.
 * Counters and histograms are fed by catalogue events; the database pool gauges are read from
 * knex's tarn pool when Prometheus scrapes.
 *
 *     const metrics = createMetrics({ db })
 *     telemetry.attach(metrics.handle)
 *     ctx.type = metrics.contentType; ctx.body = await metrics.render()
 *
 * Label values are bounded on purpose: `route` is the route pattern (`/users/:id`) or
 * `unmatched`, never a raw path, so a scanner probing random URLs cannot grow the series;
 * `api_version` and `pinned_version` are one of the versions or `none`.
 *
 * The series every request feeds (request duration and counts, query duration) are looked up by a
 * cheap key instead of prom-client hashing a labels object per observation (series.ts), and the
 * realtime ones (sockets, joins, frames, deliveries) are plain numbers handed over at scrape time;
 * what a scrape shows is the same.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { Db } from "../db/index.ts";
import { API_VERSIONS } from "../versions.ts";
import type { TelemetryEvent } from "./events.ts";
import type { TelemetryHandler } from "./index.ts";
import { SeriesHistogram, Tally } from "./series.ts";

export interface Metrics {
  readonly registry: Registry;
  /** `text/plain; version=0.0.4; charset=utf-8`, the Prometheus exposition format. */
  readonly contentType: string;
  /** The telemetry handler that feeds the metrics: `telemetry.attach(metrics.handle)`. */
  readonly handle: TelemetryHandler;
  /** The exposition text for a scrape. */
  render(): Promise<string>;
}

export interface MetricsOptions {
  /** Pool gauges read its tarn pool (absent: no pool gauges). */
  db?: Db;
  /** Process metrics (CPU, memory, event-loop lag, GC) of prom-client; default true. */
  processMetrics?: boolean;
  /** Clustered: whether Redis answers now, read at scrape time (absent: no Redis gauge). */
  redisUp?: () => boolean;
  /** Prefix of every Hypercast metric name; default `hypercast_`. */
  prefix?: string;
}

/** `route` label of a request that matched no route (404s, preflights answered by CORS). */
export const UNMATCHED_ROUTE = "unmatched";
/** `api_version` label when no version was negotiated. */
export const NO_VERSION = "none";

const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DB_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const p = options.prefix ?? "hypercast_";
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });

  const httpDuration = new SeriesHistogram({
    name: `${p}http_request_duration_seconds`,
    help: "HTTP request duration, by route pattern, method, status and API version.",
    labelNames: ["route", "method", "status", "api_version"] as const,
    buckets: HTTP_BUCKETS,
    registers,
  });
  const requestsByVersion = new Tally<"api_version">();
  const httpRequests = new Counter({
    name: `${p}http_requests_total`,
    help: "HTTP requests answered, by API version served (none: no version negotiated). What decides when v1 can be sunset.",
    labelNames: ["api_version"] as const,
    registers,
    collect() {
      requestsByVersion.addTo(this);
    },
  });
  const requestsByPin = new Tally<"pinned_version">();
  const pinnedRequests = new Counter({
    name: `${p}http_requests_by_pinned_version_total`,
    help: "HTTP requests answered, by the caller's pinned API version (none: no live bearer token). Who a sunset of that version would break if they stopped naming a version.",
    labelNames: ["pinned_version"] as const,
    registers,
    collect() {
      requestsByPin.addTo(this);
    },
  });
  const goneRequests = new Counter({
    name: `${p}http_requests_version_gone_total`,
    help: "HTTP requests refused with 410 because they asked for a withdrawn version (past its sunset or inside a brownout), by that version.",
    labelNames: ["api_version"] as const,
    registers,
  });
  const dbDuration = new SeriesHistogram({
    name: `${p}db_query_duration_seconds`,
    help: "Database query duration on its connection (pool wait excluded), by knex method and outcome.",
    labelNames: ["method", "outcome"] as const,
    buckets: DB_BUCKETS,
    registers,
  });
  const pool = poolOf(options.db);
  if (pool !== undefined) {
    new Gauge({
      name: `${p}db_pool_connections`,
      help: "Database pool connections by state: used (checked out) or free (idle in the pool).",
      labelNames: ["state"] as const,
      registers,
      collect() {
        this.set({ state: "used" }, pool.numUsed());
        this.set({ state: "free" }, pool.numFree());
      },
    });
    new Gauge({
      name: `${p}db_pool_pending_acquires`,
      help: "Requests waiting for a database pool connection.",
      registers,
      collect() {
        this.set(pool.numPendingAcquires());
      },
    });
  }
  // Unlabelled, so it reads 0 from the start; the log line of each drop names adapter and reason.
  const publishDrops = new Counter({
    name: `${p}cluster_publish_dropped_total`,
    help: "Publishes to other cluster nodes that were dropped (local delivery still happened).",
    registers,
  });
  const invalidMessages = new Counter({
    name: `${p}cluster_messages_invalid_total`,
    help: "Messages on cluster Redis channels that were malformed or foreign, dropped (source: pubsub or presence).",
    labelNames: ["source"] as const,
    registers,
  });
  invalidMessages.inc({ source: "pubsub" }, 0);
  invalidMessages.inc({ source: "presence" }, 0);
  const redisUp = options.redisUp;
  if (redisUp !== undefined) {
    new Gauge({
      name: `${p}cluster_redis_up`,
      help: "1 while this node's Redis connections answer and its presence lease is renewed, else 0.",
      registers,
      collect() {
        this.set(redisUp() ? 1 : 0);
      },
    });
  }
  // The realtime series are fed by every join, frame and delivery: they count in plain numbers
  // and tallies here and hand them to prom-client when it is scraped (series.ts), so an event
  // costs no labels object and no hashing.
  let openSockets = 0;
  const openByVersion = new Map<number, number>();
  let presenceCount = 0;
  let inCount = 0;
  let outCount = 0;
  let fanoutCount = 0;
  const joinOutcomes = new Tally<"outcome">();
  const leaveReasons = new Tally<"reason">();
  new Gauge({
    name: `${p}realtime_sockets_open`,
    help: "Realtime sockets open now.",
    registers,
    collect() {
      this.set(openSockets);
    },
  });
  new Gauge({
    name: `${p}realtime_sockets_open_by_version`,
    help: "Realtime sockets open now, by the API version they are served in.",
    labelNames: ["api_version"] as const,
    registers,
    collect() {
      for (const [version, open] of openByVersion) this.set({ api_version: String(version) }, open);
    },
  });
  const joins = new Counter({
    name: `${p}realtime_channel_joins_total`,
    help: "Channel joins answered, by outcome (ok or error).",
    labelNames: ["outcome"] as const,
    registers,
    collect() {
      joinOutcomes.addTo(this);
    },
  });
  new Counter({
    name: `${p}realtime_channel_leaves_total`,
    help: "Channel leaves (leave, close or crash).",
    labelNames: ["reason"] as const,
    registers,
    collect() {
      leaveReasons.addTo(this);
    },
  });
  new Counter({
    name: `${p}realtime_messages_in_total`,
    help: "Client events received on joined topics.",
    registers,
    collect() {
      this.inc(inCount);
      inCount = 0;
    },
  });
  new Counter({
    name: `${p}realtime_messages_out_total`,
    help: "Frames sent to one socket (replies and pushes), fan-out excluded.",
    registers,
    collect() {
      this.inc(outCount);
      outCount = 0;
    },
  });
  new Counter({
    name: `${p}realtime_fanout_deliveries_total`,
    help: "Broadcast frames delivered to local subscribers.",
    registers,
    collect() {
      this.inc(fanoutCount);
      fanoutCount = 0;
    },
  });
  new Gauge({
    name: `${p}realtime_presence_entries`,
    help: "Presence entries tracked on this node (one per socket and topic).",
    registers,
    collect() {
      this.set(presenceCount);
    },
  });
  // Registered at zero so dashboards and alerts see the series before the first event.
  httpRequests.labels({ api_version: NO_VERSION }).inc(0);
  for (const version of API_VERSIONS) {
    httpRequests.labels({ api_version: String(version) }).inc(0);
    pinnedRequests.labels({ pinned_version: String(version) }).inc(0);
    goneRequests.labels({ api_version: String(version) }).inc(0);
    openByVersion.set(version, 0);
  }
  pinnedRequests.labels({ pinned_version: NO_VERSION }).inc(0);
  joins.inc({ outcome: "ok" }, 0);
  joins.inc({ outcome: "error" }, 0);

  function addOpen(version: number, change: number): void {
    openByVersion.set(version, (openByVersion.get(version) ?? 0) + change);
  }

  function handle(e: TelemetryEvent): void {
    switch (e.event) {
      case "http.request.stop": {
        const { route, method, status, api_version, pinned_version } = e.metadata;
        httpDuration
          .series(`${route} ${method} ${status} ${api_version}`, () => ({
            route: route ?? UNMATCHED_ROUTE,
            method,
            status: String(status),
            api_version: versionLabel(api_version),
          }))
          .observe(e.measurements.duration_ms / 1000);
        requestsByVersion.add(api_version ?? NO_VERSION, () => ({ api_version: versionLabel(api_version) }));
        requestsByPin.add(pinned_version ?? NO_VERSION, () => ({ pinned_version: versionLabel(pinned_version) }));
        if (e.metadata.gone_version !== undefined) goneRequests.inc({ api_version: String(e.metadata.gone_version) });
        return;
      }
      case "db.query.stop": {
        const { method, outcome } = e.metadata;
        dbDuration
          .series(`${method} ${outcome}`, () => ({ method, outcome }))
          .observe(e.measurements.duration_ms / 1000);
        return;
      }
      case "socket.open":
        openSockets++;
        addOpen(e.metadata.api_version, 1);
        return;
      case "socket.close":
        openSockets--;
        addOpen(e.metadata.api_version, -1);
        return;
      case "channel.join.stop": {
        const { outcome } = e.metadata;
        joinOutcomes.add(outcome, () => ({ outcome }));
        return;
      }
      case "channel.leave": {
        const { reason } = e.metadata;
        leaveReasons.add(reason, () => ({ reason }));
        return;
      }
      case "channel.message.in":
        inCount++;
        return;
      case "channel.message.out":
        outCount += e.measurements.count;
        return;
      case "broadcast.fanout":
        fanoutCount += e.measurements.deliveries;
        return;
      case "presence.change":
        presenceCount += e.measurements.joins - e.measurements.leaves;
        return;
      case "cluster.publish.dropped":
        publishDrops.inc(e.measurements.count);
        return;
      case "cluster.message.invalid":
        invalidMessages.inc({ source: e.metadata.source }, e.measurements.count);
        return;
    }
  }

  return {
    registry,
    contentType: registry.contentType,
    handle,
    render: () => registry.metrics(),
  };
}

function versionLabel(version: number | undefined): string {
  return version === undefined ? NO_VERSION : String(version);
}

/** The pool counters the metrics and the dashboard read. */
export interface PoolStats {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/** knex's tarn pool, if it has one (PostgreSQL: up to poolMax; PGlite: its single connection). */
export function poolOf(db: Db | undefined): PoolStats | undefined {
  const pool = db?.client.pool as Partial<PoolStats> | undefined;
  if (
    pool === undefined ||
    typeof pool.numUsed !== "function" ||
    typeof pool.numFree !== "function" ||
    typeof pool.numPendingAcquires !== "function"
  ) {
    return undefined;
  }
  return pool as PoolStats;
}
