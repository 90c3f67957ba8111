/**
 * Configuration: read from the environment once at boot, validated, typed and frozen.
 * A bad value stops the boot with a message naming the variable; no secret has a default.
 *
 *     const config = loadConfig(process.env)
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { Ajv } from "ajv";
import { parseIntervals, versionPolicy, type TimeWindow, type VersionPolicy } from "./version-policy.ts";

export type NodeEnv = "development" | "test" | "production";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
/** Which reverse proxies may name the client in `X-Forwarded-For`: a number of hops, a CIDR list, or none (unset). */
export type TrustProxy = { readonly hops: number } | { readonly cidrs: readonly string[] } | undefined;

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly socketPort: number;
  /** Unset: the embedded PGlite database under `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** The PostgreSQL schema to work in (created if missing); unset: the server's search_path. */
  readonly databaseSchema: string | undefined;
  /** Set: this process is a node of the cluster of every process on the same Redis. */
  readonly redisUrl: string | undefined;
  /** This node's name in the cluster (logs, Redis client names); unset: the host name. */
  readonly nodeName: string | undefined;
  /** Cluster liveness and subscription timings (the README's "Running a cluster"); used only with `redisUrl`. */
  readonly cluster: ClusterTimings;
  readonly secretKeyBase: string;
  readonly logLevel: LogLevel;
  readonly nodeEnv: NodeEnv;
  readonly dataDir: string;
  /** Largest accepted request body in bytes (413 above it). */
  readonly bodyLimitBytes: number;
  /** Lifetime of a socket token in seconds. */
  readonly socketTokenTtlSeconds: number;
  /** log2 of scrypt's cost parameter N. */
  readonly passwordHashCost: number;
  /** How long an HTTP drain waits for in-flight requests on shutdown. */
  readonly shutdownTimeoutMs: number;
  /** Each version's status, deprecation, sunset (`V1_SUNSET`), brownouts (`V1_BROWNOUTS`) and changes. */
  readonly versions: VersionPolicy;
  /** Inbound channel events allowed per second per socket, and the burst above it. */
  readonly socketRateLimit: number;
  readonly socketRateBurst: number;
  /** Open sockets one user may have across the cluster (HTTP 429 at the upgrade above it). */
  readonly socketsPerUser: number;
  /** Origins allowed to call the API from a browser (CORS); empty = CORS off; `["*"]` = any origin. */
  readonly corsOrigins: readonly string[];
  /** API requests allowed per authenticated user (whatever the number of tokens) per window. */
  readonly apiRateLimit: number;
  readonly apiRateWindowSeconds: number;
  /** Failed logins allowed per e-mail address and per client address per window (brute-force protection). */
  readonly loginFailuresPerEmail: number;
  readonly loginFailuresPerAddress: number;
  readonly loginWindowSeconds: number;
  /** E-mail addresses (lower-cased) of the operators, who may open the dashboard; empty = nobody. */
  readonly adminEmails: ReadonlySet<string>;
  /** How often each node publishes its dashboard snapshot; 0 = the dashboard feed is off. */
  readonly dashboardIntervalMs: number;
  /** Sign-ups allowed per client address per window. */
  readonly signUpsPerAddress: number;
  readonly signUpWindowSeconds: number;
  /** Requests without a valid bearer token allowed per client address per window (probes excepted). */
  readonly anonymousRateLimit: number;
  readonly anonymousRateWindowSeconds: number;
  /** False with `RATE_LIMITS=off`: no request or login limit at all (load tests in a lab). */
  readonly rateLimits: boolean;
  /** How the client address is derived (`TRUST_PROXY`). */
  readonly trustProxy: TrustProxy;
  /** Password hashes computed at once, and how many more may wait for a turn. */
  readonly passwordHashConcurrency: number;
  readonly passwordHashQueue: number;
  /** Places in that queue (running or waiting) one client address may hold. */
  readonly passwordHashPerAddress: number;
  /** Set when an OTLP endpoint is: export traces there (README "Tracing"). Unset: no tracing code is loaded. */
  readonly tracing: TracingConfig | undefined;
}

export interface TracingConfig {
  /** Where spans are POSTed: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, or OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`. */
  readonly url: string;
  readonly protocol: "http/protobuf" | "http/json";
}

export interface ClusterTimings {
  /** How often a node renews its lease. */
  readonly heartbeatMs: number;
  /** How long a lease lasts: a node silent this long is dead (hidden from snapshots, then reaped). */
  readonly leaseMs: number;
  /** How often each node looks for dead nodes to reap (0 = never; read-time filtering still hides them). */
  readonly reapMs: number;
  /** How long one node holds the lock on reaping a dead node. */
  readonly reapLockMs: number;
  /** How long a topic stays subscribed on Redis after its last local subscriber left. */
  readonly unsubscribeLingerMs: number;
}

const ENV_SCHEMA = {
  type: "object",
  properties: {
    HOST: { type: "string", minLength: 1, default: "127.0.0.1" },
    PORT: { type: "integer", minimum: 0, maximum: 65535, default: 4000 },
    SOCKET_PORT: { type: "integer", minimum: 0, maximum: 65535, default: 4001 },
    DATABASE_URL: { type: "string", pattern: "^postgres(ql)?://" },
    DATABASE_SCHEMA: { type: "string", pattern: "^[a-z_][a-z0-9_]{0,62}$" },
    REDIS_URL: { type: "string", pattern: "^rediss?://" },
    NODE_NAME: { type: "string", pattern: "^[A-Za-z0-9._-]{1,64}$" },
    CLUSTER_HEARTBEAT_MS: { type: "integer", minimum: 10, default: 5000 },
    CLUSTER_LEASE_MS: { type: "integer", minimum: 20, default: 15000 },
    CLUSTER_REAP_MS: { type: "integer", minimum: 0, default: 5000 },
    CLUSTER_REAP_LOCK_MS: { type: "integer", minimum: 100, default: 30000 },
    CLUSTER_UNSUBSCRIBE_LINGER_MS: { type: "integer", minimum: 0, default: 30000 },
    SECRET_KEY_BASE: { type: "string", minLength: 32 },
    LOG_LEVEL: { enum: ["fatal", "error", "warn", "info", "debug", "trace", "silent"], default: "info" },
    NODE_ENV: { enum: ["development", "test", "production"], default: "development" },
    DATA_DIR: { type: "string", minLength: 1, default: "./.data" },
    BODY_LIMIT_BYTES: { type: "integer", minimum: 1, default: 1048576 },
    SOCKET_TOKEN_TTL_SECONDS: { type: "integer", minimum: 1, default: 86400 },
    PASSWORD_HASH_COST: { type: "integer", minimum: 10, maximum: 20, default: 17 },
    PASSWORD_HASH_CONCURRENCY: { type: "integer", minimum: 1, maximum: 64, default: 2 },
    PASSWORD_HASH_QUEUE: { type: "integer", minimum: 0, default: 16 },
    PASSWORD_HASH_PER_ADDRESS: { type: "integer", minimum: 1, default: 2 },
    OTEL_EXPORTER_OTLP_ENDPOINT: { type: "string", pattern: "^https?://" },
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: { type: "string", pattern: "^https?://" },
    // grpc is the other standard value; Hypercast ships only the HTTP exporters.
    OTEL_EXPORTER_OTLP_PROTOCOL: { enum: ["http/protobuf", "http/json"] },
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: { enum: ["http/protobuf", "http/json"] },
    SHUTDOWN_TIMEOUT_MS: { type: "integer", minimum: 0, default: 10000 },
    V1_SUNSET: { type: "string", pattern: "^\\d{4}-\\d{2}-\\d{2}$", default: "2027-06-30" },
    V1_BROWNOUTS: { type: "string" },
    SOCKET_RATE_LIMIT: { type: "integer", minimum: 1, default: 100 },
    SOCKET_RATE_BURST: { type: "integer", minimum: 1, default: 200 },
    SOCKETS_PER_USER: { type: "integer", minimum: 1, default: 50 },
    CORS_ORIGINS: { type: "string" },
    API_RATE_LIMIT: { type: "integer", minimum: 1, default: 600 },
    API_RATE_WINDOW_SECONDS: { type: "integer", minimum: 1, default: 60 },
    LOGIN_FAILURES_PER_EMAIL: { type: "integer", minimum: 1, default: 5 },
    LOGIN_FAILURES_PER_ADDRESS: { type: "integer", minimum: 1, default: 20 },
    LOGIN_WINDOW_SECONDS: { type: "integer", minimum: 1, default: 900 },
    ADMIN_EMAILS: { type: "string" },
    DASHBOARD_INTERVAL_MS: { type: "integer", minimum: 0, default: 1000 },
    SIGNUPS_PER_ADDRESS: { type: "integer", minimum: 1, default: 20 },
    SIGNUP_WINDOW_SECONDS: { type: "integer", minimum: 1, default: 3600 },
    ANONYMOUS_RATE_LIMIT: { type: "integer", minimum: 1, default: 300 },
    ANONYMOUS_RATE_WINDOW_SECONDS: { type: "integer", minimum: 1, default: 60 },
    RATE_LIMITS: { enum: ["on", "off"], default: "on" },
    TRUST_PROXY: { type: "string" },
  },
} as const;

const validateEnv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true }).compile(ENV_SCHEMA);

/** The environment after validation and defaults (ajv's `useDefaults` fills them in). */
interface Env {
  HOST: string;
  PORT: number;
  SOCKET_PORT: number;
  DATABASE_URL?: string;
  DATABASE_SCHEMA?: string;
  REDIS_URL?: string;
  NODE_NAME?: string;
  CLUSTER_HEARTBEAT_MS: number;
  CLUSTER_LEASE_MS: number;
  CLUSTER_REAP_MS: number;
  CLUSTER_REAP_LOCK_MS: number;
  CLUSTER_UNSUBSCRIBE_LINGER_MS: number;
  SECRET_KEY_BASE?: string;
  LOG_LEVEL: LogLevel;
  NODE_ENV: NodeEnv;
  DATA_DIR: string;
  BODY_LIMIT_BYTES: number;
  SOCKET_TOKEN_TTL_SECONDS: number;
  PASSWORD_HASH_COST: number;
  PASSWORD_HASH_CONCURRENCY: number;
  PASSWORD_HASH_QUEUE: number;
  PASSWORD_HASH_PER_ADDRESS: number;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;
  OTEL_EXPORTER_OTLP_PROTOCOL?: TracingConfig["protocol"];
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?: TracingConfig["protocol"];
  SHUTDOWN_TIMEOUT_MS: number;
  V1_SUNSET: string;
  V1_BROWNOUTS?: string;
  SOCKET_RATE_LIMIT: number;
  SOCKET_RATE_BURST: number;
  SOCKETS_PER_USER: number;
  CORS_ORIGINS?: string;
  API_RATE_LIMIT: number;
  API_RATE_WINDOW_SECONDS: number;
  LOGIN_FAILURES_PER_EMAIL: number;
  LOGIN_FAILURES_PER_ADDRESS: number;
  LOGIN_WINDOW_SECONDS: number;
  ADMIN_EMAILS?: string;
  DASHBOARD_INTERVAL_MS: number;
  SIGNUPS_PER_ADDRESS: number;
  SIGNUP_WINDOW_SECONDS: number;
  ANONYMOUS_RATE_LIMIT: number;
  ANONYMOUS_RATE_WINDOW_SECONDS: number;
  RATE_LIMITS: "on" | "off";
  TRUST_PROXY?: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Validates `env` and returns the frozen configuration, or throws a ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv, options: { warn?: (message: string) => void } = {}): Config {
  const known = Object.keys(ENV_SCHEMA.properties);
  // Empty strings mean "unset", as in most shells' `FOO= cmd`.
  const input: Record<string, unknown> = {};
  for (const name of known) {
    const value = env[name];
    if (value !== undefined && value !== "") input[name] = value;
  }
  // ajv's coercion reads numbers as Number() does ("0x50", "1e3", " 80 "); a setting is decimal digits.
  const notDecimal = known.filter((name) => isIntegerSetting(name) && typeof input[name] === "string" && !/^-?\d+$/.test(input[name]));
  if (!validateEnv(input) || notDecimal.length > 0) {
    const problems = notDecimal.map((name) => `${name} must be a decimal integer ${shown(env, name)}`);
    for (const e of validateEnv.errors ?? []) {
      const name = e.instancePath.slice(1) || String(e.params["missingProperty"] ?? "");
      if (!notDecimal.includes(name)) problems.push(`${name} ${e.message ?? "is invalid"} ${shown(env, name)}`);
    }
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  const v = input as unknown as Env;
  const nodeEnv = v.NODE_ENV;
  const dataDir = resolve(v.DATA_DIR);
  const sunset = new Date(`${v.V1_SUNSET}T00:00:00Z`);
  if (Number.isNaN(sunset.getTime())) throw new ConfigError(`invalid configuration: V1_SUNSET is not a date`);
  const v1Brownouts = brownouts(v.V1_BROWNOUTS);
  // A lease must outlive a few missed heartbeats, or a busy node is declared dead while alive.
  if (v.CLUSTER_LEASE_MS < 2 * v.CLUSTER_HEARTBEAT_MS) {
    throw new ConfigError(
      `invalid configuration: CLUSTER_LEASE_MS must be at least twice CLUSTER_HEARTBEAT_MS (got ${v.CLUSTER_LEASE_MS} and ${v.CLUSTER_HEARTBEAT_MS}; the default is 15000 for 5000)`,
    );
  }
  if (v.DASHBOARD_INTERVAL_MS > 0 && v.DASHBOARD_INTERVAL_MS < 100) {
    throw new ConfigError(`invalid configuration: DASHBOARD_INTERVAL_MS must be 0 (feed off) or at least 100 (got ${v.DASHBOARD_INTERVAL_MS})`);
  }
  let secretKeyBase = v.SECRET_KEY_BASE;
  if (secretKeyBase === undefined) {
    if (nodeEnv === "production") {
      throw new ConfigError("invalid configuration: SECRET_KEY_BASE is required when NODE_ENV=production");
    }
    secretKeyBase = developmentSecret(dataDir, options.warn ?? ((m) => console.warn(m)));
  }
  return Object.freeze({
    host: v.HOST,
    port: v.PORT,
    socketPort: v.SOCKET_PORT,
    databaseUrl: v.DATABASE_URL,
    databaseSchema: v.DATABASE_SCHEMA,
    redisUrl: v.REDIS_URL,
    nodeName: v.NODE_NAME,
    cluster: Object.freeze({
      heartbeatMs: v.CLUSTER_HEARTBEAT_MS,
      leaseMs: v.CLUSTER_LEASE_MS,
      reapMs: v.CLUSTER_REAP_MS,
      reapLockMs: v.CLUSTER_REAP_LOCK_MS,
      unsubscribeLingerMs: v.CLUSTER_UNSUBSCRIBE_LINGER_MS,
    }),
    secretKeyBase,
    logLevel: v.LOG_LEVEL,
    nodeEnv,
    dataDir,
    bodyLimitBytes: v.BODY_LIMIT_BYTES,
    socketTokenTtlSeconds: v.SOCKET_TOKEN_TTL_SECONDS,
    passwordHashCost: v.PASSWORD_HASH_COST,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    versions: versionPolicy({ 1: { sunset, brownouts: v1Brownouts } }),
    socketRateLimit: v.SOCKET_RATE_LIMIT,
    socketRateBurst: v.SOCKET_RATE_BURST,
    socketsPerUser: v.SOCKETS_PER_USER,
    corsOrigins: parseCorsOrigins(v.CORS_ORIGINS),
    apiRateLimit: v.API_RATE_LIMIT,
    apiRateWindowSeconds: v.API_RATE_WINDOW_SECONDS,
    loginFailuresPerEmail: v.LOGIN_FAILURES_PER_EMAIL,
    loginFailuresPerAddress: v.LOGIN_FAILURES_PER_ADDRESS,
    loginWindowSeconds: v.LOGIN_WINDOW_SECONDS,
    adminEmails: parseAdminEmails(v.ADMIN_EMAILS),
    dashboardIntervalMs: v.DASHBOARD_INTERVAL_MS,
    signUpsPerAddress: v.SIGNUPS_PER_ADDRESS,
    signUpWindowSeconds: v.SIGNUP_WINDOW_SECONDS,
    anonymousRateLimit: v.ANONYMOUS_RATE_LIMIT,
    anonymousRateWindowSeconds: v.ANONYMOUS_RATE_WINDOW_SECONDS,
    rateLimits: v.RATE_LIMITS === "on",
    trustProxy: parseTrustProxy(v.TRUST_PROXY),
    passwordHashConcurrency: v.PASSWORD_HASH_CONCURRENCY,
    passwordHashQueue: v.PASSWORD_HASH_QUEUE,
    passwordHashPerAddress: v.PASSWORD_HASH_PER_ADDRESS,
    tracing: tracingConfig(v),
  });
}

/** The OpenTelemetry specification's rules: the signal-specific variable wins; the generic endpoint gets `/v1/traces`. */
function tracingConfig(v: Env): TracingConfig | undefined {
  const generic = v.OTEL_EXPORTER_OTLP_ENDPOINT;
  const url = v.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (generic === undefined ? undefined : `${generic.replace(/\/+$/, "")}/v1/traces`);
  if (url === undefined) return undefined;
  return Object.freeze({ url, protocol: v.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? v.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf" });
}

/** `2` → 2 hops; `10.0.0.0/8, ::1` → those proxies; anything else names the variable and the expected forms. */
function parseTrustProxy(text: string | undefined): TrustProxy {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text.trim())) return Object.freeze({ hops: Number(text.trim()) });
  const cidrs = text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
  for (const cidr of cidrs) {
    const [address = "", prefix, extra] = cidr.split("/");
    const family = isIP(address);
    const bits = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits))) {
      throw new ConfigError(
        `invalid configuration: TRUST_PROXY must be a number of proxy hops (e.g. 1) or a comma-separated list of proxy addresses or CIDR ranges (e.g. 10.0.0.0/8, 192.168.1.7) (got ${JSON.stringify(cidr)})`,
      );
    }
  }
  return Object.freeze({ cidrs: Object.freeze(cidrs) });
}

/** `https://app.example.com, http://localhost:5173` → the list; each must be a bare origin, or `*` alone. */
function parseCorsOrigins(text: string | undefined): readonly string[] {
  const entries = (text ?? "").split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
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
      throw new ConfigError(
        `invalid configuration: CORS_ORIGINS must be a comma-separated list of origins like https://app.example.com (scheme, host, optional port; no path), or * alone (got ${JSON.stringify(entry)}${origin === undefined || origin === "null" ? "" : `; did you mean ${JSON.stringify(origin)}?`})`,
      );
    }
  }
  return Object.freeze(entries);
}

/** `V1_BROWNOUTS`: comma-separated ISO 8601 intervals (`2027-05-04T16:00:00Z/PT1H` or `start/end`). */
function brownouts(text: string | undefined): readonly TimeWindow[] {
  try {
    return Object.freeze(parseIntervals(text ?? ""));
  } catch (error) {
    throw new ConfigError(`invalid configuration: V1_BROWNOUTS ${(error as Error).message}`);
  }
}

/** `ops@example.com, Ada@Example.com` → the set of lower-cased addresses; each must look like an address. */
function parseAdminEmails(text: string | undefined): ReadonlySet<string> {
  const entries = (text ?? "").split(",").map((entry) => entry.trim().toLowerCase()).filter((entry) => entry !== "");
  const bad = entries.find((entry) => !/^[^\s@,]+@[^\s@,]+$/.test(entry));
  if (bad !== undefined) {
    throw new ConfigError(`invalid configuration: ADMIN_EMAILS must be a comma-separated list of e-mail addresses like ops@example.com (got ${JSON.stringify(bad)})`);
  }
  return new Set(entries);
}

function isIntegerSetting(name: string): boolean {
  return (ENV_SCHEMA.properties as Record<string, { type?: string }>)[name]?.type === "integer";
}

// Boot errors end up in logs: never echo a secret or a URL that may carry a password.
const HIDDEN = new Set(["SECRET_KEY_BASE", "DATABASE_URL", "REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]);

function shown(env: NodeJS.ProcessEnv, name: string): string {
  return HIDDEN.has(name) ? "(value not shown)" : `(got ${JSON.stringify(env[name])})`;
}

/** Outside production a random secret is generated once and kept under DATA_DIR, so tokens survive restarts. */
function developmentSecret(dataDir: string, warn: (message: string) => void): string {
  const file = join(dataDir, "secret_key_base");
  try {
    const existing = readFileSync(file, "utf8").trim();
    if (existing.length >= 32) return existing;
  } catch {
    // not created yet
  }
  const secret = randomBytes(48).toString("base64url");
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  warn(`SECRET_KEY_BASE is not set: generated one and stored it in ${file} (set SECRET_KEY_BASE in production)`);
  return secret;
}
