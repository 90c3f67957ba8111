/**
 * Every environment variable Hypercast reads, one row each: the JSON Schema its text must match,
 * its default, where its value lands in `Config` (lib/config.ts) and its line in the README's
 * configuration table (tests/config.test.ts renders the rows and compares). A row's `parse` turns
 * the checked text into the configured value (lib/setting-parsers.ts).
 *
 *     SETTINGS.PORT  // { type: "integer", minimum: 0, maximum: 65535, default: 4000, to: "port", doc: "HTTP API port (`0` = any free port)" }
 */
import { resolve } from "node:path";
import {
  parseAdminEmails,
  parseBrownouts,
  parseCorsOrigins,
  parseDashboardInterval,
  parseSunset,
  parseTrustProxy,
} from "./setting-parsers.ts";

/** One environment variable. */
export interface Setting {
  /** JSON Schema of its text: an `integer` (decimal digits, coerced), a `string`, or one of an `enum`'s words. */
  readonly type?: "integer" | "string";
  readonly enum?: readonly string[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly pattern?: string;
  /** Used when the variable is unset or empty; without one, the value is `undefined`. */
  readonly default?: number | string;
  /** Where the value lands: a field of `Config` (`port`) or of one of its groups (`cluster.leaseMs`). Absent: a rule of loadConfig reads it. */
  readonly to?: string;
  /** Turns the checked value into the configured one; throws an Error whose message follows the variable's name ("must be …"). */
  readonly parse?: (value: never) => unknown;
  /** Never echoed in an error message: secrets, and URLs that may carry a password. */
  readonly hidden?: true;
  /** The README's "meaning" column. */
  readonly doc: string;
  /** The README's "default" column when it is not the default itself (`the host name`, `unset (CORS off)`). */
  readonly byDefault?: string;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
// grpc is the other standard value; Hypercast ships only the HTTP exporters.
export const OTLP_PROTOCOLS = ["http/protobuf", "http/json"] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** Every environment variable Hypercast reads, in the order of the README's table. */
export const SETTINGS = {
  HOST: { type: "string", minLength: 1, default: "127.0.0.1", to: "host", doc: "interface both listeners bind" },
  PORT: {
    type: "integer",
    minimum: 0,
    maximum: 65535,
    default: 4000,
    to: "port",
    doc: "HTTP API port (`0` = any free port)",
  },
  SOCKET_PORT: {
    type: "integer",
    minimum: 0,
    maximum: 65535,
    default: 4001,
    to: "socketPort",
    doc: "realtime socket port",
  },
  DATABASE_URL: {
    type: "string",
    pattern: "^postgres(ql)?://",
    to: "databaseUrl",
    hidden: true,
    doc: "`postgres://…`; unset = embedded PGlite under `DATA_DIR`",
  },
  DATABASE_SCHEMA: {
    type: "string",
    pattern: "^[a-z_][a-z0-9_]{0,62}$",
    to: "databaseSchema",
    doc: "the PostgreSQL schema to work in (created if missing); unset = the server's `search_path`",
  },
  DATABASE_PREPARED_STATEMENTS: {
    enum: ["on", "off"],
    default: "on",
    to: "preparedStatements",
    parse: (switched: "on" | "off") => switched === "on",
    doc: "`off` sends every statement unprepared, for a server session shared by several connections: PgBouncer in transaction mode before 1.21, PGlite over TCP; see [Running against PostgreSQL](#running-against-postgresql)",
  },
  REDIS_URL: {
    type: "string",
    pattern: "^rediss?://",
    to: "redisUrl",
    hidden: true,
    doc: "`redis://…`; unset = single node (in-process pub/sub and presence). Set, the process is a node of the cluster of every process on that Redis: broadcasts, presence and rate limits are shared ([Running a cluster](#running-a-cluster))",
  },
  NODE_NAME: {
    type: "string",
    pattern: "^[A-Za-z0-9._-]{1,64}$",
    to: "nodeName",
    byDefault: "the host name",
    doc: "this node's name in the cluster (logs, Redis client names)",
  },
  CLUSTER_HEARTBEAT_MS: {
    type: "integer",
    minimum: 10,
    default: 5000,
    to: "cluster.heartbeatMs",
    doc: "how often a node renews its lease; like every `CLUSTER_*` timing, used only with `REDIS_URL` ([Running a cluster](#running-a-cluster))",
  },
  CLUSTER_LEASE_MS: {
    type: "integer",
    minimum: 20,
    default: 15000,
    to: "cluster.leaseMs",
    doc: "how long a lease lasts: a node silent this long is dead (hidden from snapshots, then reaped); at least twice `CLUSTER_HEARTBEAT_MS`",
  },
  CLUSTER_REAP_MS: {
    type: "integer",
    minimum: 0,
    default: 5000,
    to: "cluster.reapMs",
    doc: "how often each node looks for dead nodes to reap (`0` = never; read-time filtering still hides them)",
  },
  CLUSTER_REAP_LOCK_MS: {
    type: "integer",
    minimum: 100,
    default: 30000,
    to: "cluster.reapLockMs",
    doc: "how long one node holds the lock on reaping a dead node",
  },
  CLUSTER_UNSUBSCRIBE_LINGER_MS: {
    type: "integer",
    minimum: 0,
    default: 30000,
    to: "cluster.unsubscribeLingerMs",
    doc: "how long a topic stays subscribed on Redis after its last local subscriber left",
  },
  SECRET_KEY_BASE: {
    type: "string",
    minLength: 32,
    hidden: true,
    byDefault: "generated by `serve` in development",
    doc: "≥ 32 characters; signs socket tokens. **Required** when `NODE_ENV=production`. Outside production `serve` (and `migrate`) generate a random one once and keep it in `DATA_DIR/secret_key_base`, with a warning",
  },
  LOG_LEVEL: {
    enum: LOG_LEVELS,
    default: "info",
    to: "logLevel",
    doc: "`fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent` (JSON lines on stdout)",
  },
  NODE_ENV: {
    enum: ["development", "test", "production"],
    default: "development",
    to: "nodeEnv",
    doc: "`development`, `test`, `production`",
  },
  DATA_DIR: {
    type: "string",
    minLength: 1,
    default: "./.data",
    to: "dataDir",
    parse: (dir: string) => resolve(dir),
    doc: "PGlite files and the development secret",
  },
  BODY_LIMIT_BYTES: {
    type: "integer",
    minimum: 1,
    default: 1048576,
    to: "bodyLimitBytes",
    byDefault: "`1048576` (1 MiB)",
    doc: "largest request body; larger → 413",
  },
  SOCKET_TOKEN_TTL_SECONDS: {
    type: "integer",
    minimum: 1,
    default: 86400,
    to: "socketTokenTtlSeconds",
    doc: "lifetime of socket tokens",
  },
  PASSWORD_HASH_COST: {
    type: "integer",
    minimum: 10,
    maximum: 20,
    default: 17,
    to: "passwordHashCost",
    doc: "log2 of scrypt's N (10–20); 17 is scrypt N=2^17, r=8, p=1, OWASP's current minimum (128 MiB and ~0.3 s per hash here: [what a login costs](#what-a-login-costs))",
  },
  PASSWORD_HASH_CONCURRENCY: {
    type: "integer",
    minimum: 1,
    maximum: 64,
    default: 2,
    to: "passwordHashConcurrency",
    doc: "password hashes computed at once",
  },
  PASSWORD_HASH_QUEUE: {
    type: "integer",
    minimum: 0,
    default: 16,
    to: "passwordHashQueue",
    doc: "password hashes that may wait for a turn (past it 503)",
  },
  PASSWORD_HASH_PER_ADDRESS: {
    type: "integer",
    minimum: 1,
    default: 2,
    to: "passwordHashPerAddress",
    doc: "places among those (running or waiting) one client address may hold (past it 429)",
  },
  SHUTDOWN_TIMEOUT_MS: {
    type: "integer",
    minimum: 0,
    default: 10000,
    to: "shutdownTimeoutMs",
    doc: "how long a drain waits for in-flight requests",
  },
  V1_SUNSET: {
    type: "string",
    pattern: "^\\d{4}-\\d{2}-\\d{2}$",
    default: "2027-06-30",
    parse: parseSunset,
    doc: "version 1's sunset date (`YYYY-MM-DD`, midnight UTC): announced in its `Sunset` header, and enforced: from then on v1 is not served (410, [sunset](#pinned-versions-sunset-and-brownouts))",
  },
  V1_BROWNOUTS: {
    type: "string",
    parse: parseBrownouts,
    doc: "comma-separated ISO 8601 intervals (`2027-05-04T16:00:00Z/PT1H`, or `start/end`; durations in W, D, H, M, S) in which v1 behaves as after its sunset: rehearsals ([brownouts](#pinned-versions-sunset-and-brownouts))",
  },
  SOCKET_RATE_LIMIT: {
    type: "integer",
    minimum: 1,
    default: 100,
    to: "socketRateLimit",
    doc: "inbound channel events per second per socket",
  },
  SOCKET_RATE_BURST: {
    type: "integer",
    minimum: 1,
    default: 200,
    to: "socketRateBurst",
    doc: "the burst of inbound channel events a socket may send above that rate",
  },
  SOCKETS_PER_USER: {
    type: "integer",
    minimum: 1,
    default: 50,
    to: "socketsPerUser",
    doc: "open sockets one user may have across the cluster; the next upgrade gets HTTP 429 (stays on with `RATE_LIMITS=off`: set it high for load tests)",
  },
  API_RATE_LIMIT: {
    type: "integer",
    minimum: 1,
    default: 600,
    to: "apiRateLimit",
    doc: "requests per authenticated user (all their tokens together) per `API_RATE_WINDOW_SECONDS` ([rate limiting](#rate-limiting))",
  },
  API_RATE_WINDOW_SECONDS: {
    type: "integer",
    minimum: 1,
    default: 60,
    to: "apiRateWindowSeconds",
    doc: "the window of `API_RATE_LIMIT`",
  },
  ANONYMOUS_RATE_LIMIT: {
    type: "integer",
    minimum: 1,
    default: 300,
    to: "anonymousRateLimit",
    doc: "requests without a valid bearer token (none, or an invalid one) per client address per `ANONYMOUS_RATE_WINDOW_SECONDS`; `/health`, `/ready`, `/metrics` are never limited",
  },
  ANONYMOUS_RATE_WINDOW_SECONDS: {
    type: "integer",
    minimum: 1,
    default: 60,
    to: "anonymousRateWindowSeconds",
    doc: "the window of `ANONYMOUS_RATE_LIMIT`",
  },
  LOGIN_FAILURES_PER_EMAIL: {
    type: "integer",
    minimum: 1,
    default: 5,
    to: "loginFailuresPerEmail",
    doc: "failed logins allowed per e-mail address per `LOGIN_WINDOW_SECONDS`",
  },
  LOGIN_FAILURES_PER_ADDRESS: {
    type: "integer",
    minimum: 1,
    default: 20,
    to: "loginFailuresPerAddress",
    doc: "failed logins allowed per client address per `LOGIN_WINDOW_SECONDS`",
  },
  LOGIN_WINDOW_SECONDS: {
    type: "integer",
    minimum: 1,
    default: 900,
    to: "loginWindowSeconds",
    doc: "the window of both login limits",
  },
  ADMIN_EMAILS: {
    type: "string",
    to: "adminEmails",
    parse: parseAdminEmails,
    byDefault: "unset (nobody)",
    doc: "comma-separated e-mail addresses of the operators, who may open the [dashboard](#dashboard) (matched without regard to case)",
  },
  DASHBOARD_INTERVAL_MS: {
    type: "integer",
    minimum: 0,
    default: 1000,
    to: "dashboardIntervalMs",
    parse: parseDashboardInterval,
    doc: "how often each node publishes its dashboard snapshot; `0` turns the feed off (no handlers, no timer); else at least `100`",
  },
  SIGNUPS_PER_ADDRESS: {
    type: "integer",
    minimum: 1,
    default: 20,
    to: "signUpsPerAddress",
    doc: "sign-ups per client address per `SIGNUP_WINDOW_SECONDS`",
  },
  SIGNUP_WINDOW_SECONDS: {
    type: "integer",
    minimum: 1,
    default: 3600,
    to: "signUpWindowSeconds",
    doc: "the window of `SIGNUPS_PER_ADDRESS`",
  },
  RATE_LIMITS: {
    enum: ["on", "off"],
    default: "on",
    to: "rateLimits",
    parse: (switched: "on" | "off") => switched === "on",
    doc: "`off` turns every request and login limit above off (load tests in a lab), with a warning at boot, also in production; socket limits stay",
  },
  TRUST_PROXY: {
    type: "string",
    to: "trustProxy",
    parse: parseTrustProxy,
    byDefault: "unset (trust none)",
    doc: "which reverse proxies may name the client in `X-Forwarded-For`: a number of hops (`1`: one load balancer in front) or a comma-separated list of proxy addresses / CIDR ranges (`10.0.0.0/8, 192.168.1.7`). Unset, the client address is the TCP peer and `X-Forwarded-For` is ignored. Every per-address limit uses the address derived from it",
  },
  CORS_ORIGINS: {
    type: "string",
    to: "corsOrigins",
    parse: parseCorsOrigins,
    byDefault: "unset (CORS off)",
    doc: "comma-separated browser origins allowed to call the API (`https://app.example.com,http://localhost:5173`), or `*`; see [CORS](#cors-and-security-headers)",
  },
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    type: "string",
    pattern: "^https?://",
    hidden: true,
    byDefault: "unset (tracing off)",
    doc: "export OpenTelemetry traces over OTLP/HTTP to this collector (spans go to `<it>/v1/traces`); with the other `OTEL_*` variables in [Tracing](#tracing)",
  },
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {
    type: "string",
    pattern: "^https?://",
    hidden: true,
    doc: "the full traces URL, used as is (wins over `OTEL_EXPORTER_OTLP_ENDPOINT`)",
  },
  OTEL_EXPORTER_OTLP_PROTOCOL: {
    enum: OTLP_PROTOCOLS,
    byDefault: "`http/protobuf`",
    doc: "or `http/json`; `grpc` is refused at boot",
  },
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: {
    enum: OTLP_PROTOCOLS,
    doc: "the same for traces only (wins over `OTEL_EXPORTER_OTLP_PROTOCOL`)",
  },
} as const satisfies Record<string, Setting>;
