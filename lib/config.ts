/**
 * Configuration: read from the environment once at boot, validated, typed and frozen.
 * A bad value stops the boot with a message naming the variable; no secret has a default.
 *
 * Every variable is one row of `SETTINGS`: the JSON Schema its text must match (ajv checks every
 * row at once), its default, where its value lands in `Config`, and its line in the README's
 * configuration table (tests/config.test.ts renders the rows and compares). The env schema, the
 * types and the mapping are derived from the rows; what involves several variables (the secret,
 * tracing, the version policy, the cluster's lease) is the short list of rules in `loadConfig`.
 * Validation writes nothing: the development secret is `serve`'s (lib/bin/development-secret.ts).
 *
 *     const config = loadConfig(process.env)
 *     config.port            // 4000 (PORT)
 *     config.cluster.leaseMs // 15000 (CLUSTER_LEASE_MS)
 */
import { isIP } from "node:net";
import { resolve } from "node:path";
import { Ajv } from "ajv";
import { parseIntervals, versionPolicy, type VersionPolicy } from "./version-policy.ts";

/** One environment variable. */
interface Setting {
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

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
// grpc is the other standard value; Hypercast ships only the HTTP exporters.
const OTLP_PROTOCOLS = ["http/protobuf", "http/json"] as const;

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

type Settings = typeof SETTINGS;
type Name = keyof Settings;

/** What ajv hands over for a setting: its type, or `undefined` when unset without a default. */
type Checked<S> =
  | (S extends { enum: readonly (infer W)[] } ? W : S extends { type: "integer" } ? number : string)
  | (S extends { default: unknown } ? never : undefined);
/** What a setting is in `Config`: what its `parse` returns, else the checked value. */
type Value<S> = S extends { parse: (value: never) => infer T } ? T : Checked<S>;
/** The settings' values by variable name: what the rules of loadConfig read. */
type Values = { readonly [N in Name]: Value<Settings[N]> };
type Target<N extends Name> = Settings[N] extends { to: infer T extends string } ? T : never;
// Distributive over `T`, so a row without `to` (never) lands nowhere.
type TopField<T> = T extends `${string}.${string}` ? never : T;
type GroupOf<T> = T extends `${infer G}.${string}` ? G : never;
type FieldIn<T, G extends string> = T extends `${G}.${infer F}` ? F : never;
type Fields = { readonly [N in Name as TopField<Target<N>>]: Value<Settings[N]> };
type Groups = {
  readonly [G in GroupOf<{ [N in Name]: Target<N> }[Name]>]: {
    readonly [N in Name as FieldIn<Target<N>, G>]: Value<Settings[N]>;
  };
};

// Each `parse` must accept what ajv hands over for its row (its type; `undefined` too without a
// default): when one does not, the next line fails to compile, naming the variable.
type MisfitParser = {
  [N in Name]: Settings[N] extends { parse: (value: infer P) => unknown }
    ? [Checked<Settings[N]>] extends [P]
      ? never
      : N
    : never;
}[Name];
const noMisfitParser: [MisfitParser] extends [never] ? true : MisfitParser = true;
void noMisfitParser;

/** The configuration: one field per row of `SETTINGS` (`cluster.*` grouped), and what the rules derive from several rows. */
export interface Config extends Fields, Groups {
  /** SECRET_KEY_BASE, or the development secret `serve` keeps under DATA_DIR. */
  readonly secretKeyBase: string;
  /** Set when an OTLP endpoint is: export traces there (README "Tracing"). Unset: no tracing code is loaded. */
  readonly tracing: TracingConfig | undefined;
  /** Each version's status, deprecation, sunset (`V1_SUNSET`), brownouts (`V1_BROWNOUTS`) and changes. */
  readonly versions: VersionPolicy;
}

export type NodeEnv = Config["nodeEnv"];
export type LogLevel = Config["logLevel"];
export type ClusterTimings = Config["cluster"];
/** Which reverse proxies may name the client in `X-Forwarded-For`: a number of hops, a CIDR list, or none (unset). */
export type TrustProxy = { readonly hops: number } | { readonly cidrs: readonly string[] } | undefined;

export interface TracingConfig {
  /** Where spans are POSTed: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, or OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`. */
  readonly url: string;
  readonly protocol: (typeof OTLP_PROTOCOLS)[number];
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface LoadOptions {
  /**
   * Where SECRET_KEY_BASE comes from when it is unset outside production: `serve` and `migrate`
   * pass `developmentSecret` (lib/bin/development-secret.ts), which keeps one under DATA_DIR.
   * Without it an unset SECRET_KEY_BASE stops the boot.
   */
  developmentSecret?: (dataDir: string) => string;
}

const ROWS = Object.entries(SETTINGS) as [Name, Setting][];
const KEYWORDS = ["type", "enum", "minimum", "maximum", "minLength", "pattern", "default"] as const;
const validateEnv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true }).compile({
  type: "object",
  properties: Object.fromEntries(
    ROWS.map(([name, setting]) => [
      name,
      Object.fromEntries(KEYWORDS.flatMap((k) => (setting[k] === undefined ? [] : [[k, setting[k]]]))),
    ]),
  ),
});

/** Validates `env` and returns the frozen configuration, or throws a ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv, options: LoadOptions = {}): Config {
  const values = read(env);
  // A lease must outlive a few missed heartbeats, or a busy node is declared dead while alive.
  if (values.CLUSTER_LEASE_MS < 2 * values.CLUSTER_HEARTBEAT_MS) {
    throw new ConfigError(
      `invalid configuration: CLUSTER_LEASE_MS must be at least twice CLUSTER_HEARTBEAT_MS (got ${values.CLUSTER_LEASE_MS} and ${values.CLUSTER_HEARTBEAT_MS}; the default is 15000 for 5000)`,
    );
  }
  // Each row's value to its field: `port`, or `cluster.leaseMs` inside the frozen `cluster` group.
  const fields: Record<string, unknown> = {};
  const groups: Record<string, Record<string, unknown>> = {};
  for (const [name, setting] of ROWS) {
    const [first, second] = setting.to?.split(".") ?? [];
    if (second !== undefined) (groups[first!] ??= {})[second] = values[name];
    else if (first !== undefined) fields[first] = values[name];
  }
  for (const [group, members] of Object.entries(groups)) fields[group] = Object.freeze(members);
  return Object.freeze({
    ...(fields as Fields & Groups),
    secretKeyBase: secretKeyBase(values, options),
    tracing: tracingConfig(values),
    versions: versionPolicy({ 1: { sunset: values.V1_SUNSET, brownouts: values.V1_BROWNOUTS } }),
  });
}

/** Every row checked (ajv, then its `parse`), every failure named in one ConfigError. */
function read(env: NodeJS.ProcessEnv): Values {
  // Empty strings mean "unset", as in most shells' `FOO= cmd`.
  const input: Record<string, unknown> = {};
  for (const [name] of ROWS) {
    const value = env[name];
    if (value !== undefined && value !== "") input[name] = value;
  }
  // ajv's coercion reads numbers as Number() does ("0x50", "1e3", " 80 "); a setting is decimal digits.
  const notDecimal = ROWS.filter(
    ([name, setting]) => setting.type === "integer" && typeof input[name] === "string" && !/^-?\d+$/.test(input[name]),
  ).map(([name]) => name);
  const problems = notDecimal.map((name) => `${name} must be a decimal integer ${shown(env, name)}`);
  if (!validateEnv(input) || notDecimal.length > 0) {
    for (const e of validateEnv.errors ?? []) {
      const name = e.instancePath.slice(1);
      if (!(notDecimal as string[]).includes(name))
        problems.push(`${name} ${e.message ?? "is invalid"} ${shown(env, name as Name)}`);
    }
  } else {
    for (const [name, setting] of ROWS) {
      if (setting.parse === undefined) continue;
      try {
        input[name] = (setting.parse as (value: unknown) => unknown)(input[name]);
      } catch (error) {
        problems.push(`${name} ${(error as Error).message}`);
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  return input as unknown as Values;
}

/** Required in production; elsewhere, when unset, the caller's development secret (none: the boot stops). */
function secretKeyBase(values: Values, options: LoadOptions): string {
  if (values.SECRET_KEY_BASE !== undefined) return values.SECRET_KEY_BASE;
  if (values.NODE_ENV === "production")
    throw new ConfigError("invalid configuration: SECRET_KEY_BASE is required when NODE_ENV=production");
  if (options.developmentSecret === undefined) {
    throw new ConfigError(
      "invalid configuration: SECRET_KEY_BASE is required (outside production, `serve` generates one under DATA_DIR)",
    );
  }
  return options.developmentSecret(values.DATA_DIR);
}

/** The OpenTelemetry specification's rules: the signal-specific variable wins; the generic endpoint gets `/v1/traces`. */
function tracingConfig(values: Values): TracingConfig | undefined {
  const generic = values.OTEL_EXPORTER_OTLP_ENDPOINT;
  const url =
    values.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (generic === undefined ? undefined : `${generic.replace(/\/+$/, "")}/v1/traces`);
  if (url === undefined) return undefined;
  return Object.freeze({
    url,
    protocol: values.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? values.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf",
  });
}

/** `2027-06-30` → midnight UTC of that day. */
function parseSunset(day: string): Date {
  const date = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) throw new Error("is not a date");
  return date;
}

/** Comma-separated ISO 8601 intervals (`2027-05-04T16:00:00Z/PT1H` or `start/end`); unset: none. */
function parseBrownouts(text: string | undefined) {
  return Object.freeze(parseIntervals(text ?? ""));
}

/** 0 (the feed off) or at least 100 ms. */
function parseDashboardInterval(ms: number): number {
  if (ms > 0 && ms < 100) throw new Error(`must be 0 (feed off) or at least 100 (got ${ms})`);
  return ms;
}

/** `2` → 2 hops; `10.0.0.0/8, ::1` → those proxies; anything else names the expected forms. */
function parseTrustProxy(text: string | undefined): TrustProxy {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text.trim())) return Object.freeze({ hops: Number(text.trim()) });
  const cidrs = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  for (const cidr of cidrs) {
    const [address = "", prefix, extra] = cidr.split("/");
    const family = isIP(address);
    const bits = family === 6 ? 128 : 32;
    if (
      family === 0 ||
      extra !== undefined ||
      (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits))
    ) {
      throw new Error(
        `must be a number of proxy hops (e.g. 1) or a comma-separated list of proxy addresses or CIDR ranges (e.g. 10.0.0.0/8, 192.168.1.7) (got ${JSON.stringify(cidr)})`,
      );
    }
  }
  return Object.freeze({ cidrs: Object.freeze(cidrs) });
}

/** `https://app.example.com, http://localhost:5173` → the list; each must be a bare origin, or `*` alone. */
function parseCorsOrigins(text: string | undefined): readonly string[] {
  const entries = (text ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 1 && entries[0] === "*") return Object.freeze(["*"]);
  for (const entry of entries) {
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      origin = undefined;
    }
    // Browsers send the serialized origin (scheme://host[:port], no path, no trailing slash); we compare exactly.
    if (origin === undefined || origin === "null" || origin !== entry) {
      throw new Error(
        `must be a comma-separated list of origins like https://app.example.com (scheme, host, optional port; no path), or * alone (got ${JSON.stringify(entry)}${origin === undefined || origin === "null" ? "" : `; did you mean ${JSON.stringify(origin)}?`})`,
      );
    }
  }
  return Object.freeze(entries);
}

/** `ops@example.com, Ada@Example.com` → the set of lower-cased addresses; each must look like an address. */
function parseAdminEmails(text: string | undefined): ReadonlySet<string> {
  const entries = (text ?? "")
    .split(",")
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== "");
  const bad = entries.find((entry) => !/^[^\s@,]+@[^\s@,]+$/.test(entry));
  if (bad !== undefined)
    throw new Error(
      `must be a comma-separated list of e-mail addresses like ops@example.com (got ${JSON.stringify(bad)})`,
    );
  return new Set(entries);
}

// Boot errors end up in logs: never echo a secret or a URL that may carry a password.
function shown(env: NodeJS.ProcessEnv, name: Name): string {
  return (SETTINGS[name] as Setting).hidden === true ? "(value not shown)" : `(got ${JSON.stringify(env[name])})`;
}
