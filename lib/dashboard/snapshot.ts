/**
 * The dashboard's wire format: what one node publishes every tick (`snapshot` events on the
 * `admin:dashboard` topic) and what the page (lib/dashboard/page/app.ts) draws. Types only, so
 * the browser bundle can import them. Rates are per second over the last interval; counts of
 * the interval say so; durations are in milliseconds; sizes in bytes.
 */

export interface NodeSnapshot {
  /**
   * The node's id: `<name>:<pid>:<start ms>:<random>` (lib/cluster/node-id.ts), where the name is
   * NODE_NAME, else the host name; clustered, the PubSub's node id. Unique per process incarnation.
   */
  node: string;
  /** When the snapshot was taken (epoch ms). */
  at: number;
  interval_ms: number;
  /** Hypercast's version (package.json) and Node's. */
  version: string;
  node_version: string;
  uptime_s: number;
  http: HttpFigures;
  /** Top callers of each deprecated version (lib/telemetry/version-usage.ts). */
  callers: DeprecatedCallers[];
  sockets: SocketFigures;
  topics: TopicFigures;
  db: DbFigures;
  redis: RedisFigures;
  process: ProcessFigures;
  /** How long building this snapshot took, in ms (its own cost, shown on the page). */
  build_ms: number;
}

export interface HttpFigures {
  rps: number;
  /** Requests per second by API version served (`none`: not negotiated: health, metrics, 406…). */
  by_version: Record<string, number>;
  p50_ms: number;
  p99_ms: number;
  /** 4xx and 5xx answers per second. */
  client_errors_per_s: number;
  server_errors_per_s: number;
}

export interface DeprecatedCallers {
  version: number;
  window_s: number;
  requests: number;
  anonymous: number;
  callers: { user_id: number; requests: number; error: number }[];
}

export interface SocketFigures {
  open: number;
  joins_per_s: number;
  join_errors_per_s: number;
  messages_in_per_s: number;
  deliveries_per_s: number;
  /** Sockets closed for a full send buffer during the interval (close code 4503). */
  slow_consumer_disconnects: number;
}

export interface TopicFigures {
  /** Topics with at least one local subscriber. */
  count: number;
  /** The busiest: most deliveries and client events per second, then most subscribers. */
  top: TopicRow[];
}

export interface TopicRow {
  topic: string;
  /** Sockets of this node joined to it. */
  subscribers: number;
  /**
   * Presence entries (metas) of the topic as this node's replica holds them at the tick, read from
   * the presence core: cluster-wide while a socket here receives the topic's presence (a tracked
   * join), otherwise only this node's own entries.
   */
  presences: number;
  /** Deliveries plus client events per second. */
  rate: number;
}

export interface DbFigures {
  /** Pool connections checked out, idle, and acquisitions waiting (undefined: no pool to read). */
  in_use: number | null;
  free: number | null;
  waiting: number | null;
  queries_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors_per_s: number;
}

export interface RedisFigures {
  /** `off`: single node (no REDIS_URL). */
  status: "off" | "ok" | "down";
  /**
   * Round trip of the newest PING (on the PubSub's Redis connections, one per tick, in ms); null on a
   * single node, while Redis is down, or when the PING failed or got no answer within one interval.
   */
  ping_ms: number | null;
}

export interface ProcessFigures {
  rss_bytes: number;
  heap_used_bytes: number;
  heap_total_bytes: number;
  /** Share of one core used over the interval, in percent (user + system). */
  cpu_percent: number;
  /** Event-loop delay over the interval (perf_hooks.monitorEventLoopDelay). */
  loop_p99_ms: number;
  loop_max_ms: number;
}

/** Pushed once on join: the recent snapshots of every node this node has heard from, oldest first. */
export interface DashboardHistory {
  interval_ms: number;
  nodes: Record<string, NodeSnapshot[]>;
}
