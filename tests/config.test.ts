/**
 * lib/config.ts and lib/settings.ts: the environment is validated once; a bad value stops the boot
 * with a message naming the variable (and never echoing a secret); production needs SECRET_KEY_BASE;
 * validation writes nothing (the development secret is `serve`'s: tests/bin/development-secret.test.ts);
 * the README's configuration table is the rows of SETTINGS, rendered.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import test from "ava";
import { developmentSecret } from "../lib/bin/development-secret.ts";
import { ConfigError, loadConfig } from "../lib/config.ts";
import { SETTINGS } from "../lib/settings.ts";

const SECRET = "s".repeat(48);
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "hypercast-config-"));
  dirs.push(dir);
  return dir;
}
test.after.always(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The ConfigError message for `env` (with a valid secret unless `env` says otherwise). */
function failure(t: import("ava").ExecutionContext, env: Record<string, string>): string {
  const error = t.throws(
    () =>
      loadConfig(
        { SECRET_KEY_BASE: SECRET, ...env },
        { developmentSecret: (dir) => developmentSecret(dir, () => t.fail("no warning expected")) },
      ),
    {
      instanceOf: ConfigError,
    },
  );
  return error?.message ?? "";
}

test("defaults: 127.0.0.1:4000 for HTTP, 4001 for the socket, development, info, 1 MiB bodies", (t) => {
  const config = loadConfig({ SECRET_KEY_BASE: SECRET });
  t.is(config.host, "127.0.0.1");
  t.is(config.port, 4000);
  t.is(config.socketPort, 4001);
  t.is(config.nodeEnv, "development");
  t.is(config.logLevel, "info");
  t.is(config.bodyLimitBytes, 1024 * 1024);
  t.is(config.databaseUrl, undefined);
  t.is(config.redisUrl, undefined);
  t.is(config.dataDir, resolve("./.data"));
  t.is(config.secretKeyBase, SECRET);
  t.true(Object.isFrozen(config));
});

test("values are read and typed", (t) => {
  const config = loadConfig({
    SECRET_KEY_BASE: SECRET,
    HOST: "0.0.0.0",
    PORT: "8080",
    SOCKET_PORT: "8081",
    DATABASE_URL: "postgresql://app:pw@db.internal:5432/app",
    REDIS_URL: "redis://cache:6379",
    LOG_LEVEL: "debug",
    NODE_ENV: "production",
    BODY_LIMIT_BYTES: "2048",
  });
  t.like(config, {
    host: "0.0.0.0",
    port: 8080,
    socketPort: 8081,
    logLevel: "debug",
    nodeEnv: "production",
    bodyLimitBytes: 2048,
  });
  t.is(config.databaseUrl, "postgresql://app:pw@db.internal:5432/app");
  t.is(config.redisUrl, "redis://cache:6379");
});

test("an empty variable counts as unset", (t) => {
  const config = loadConfig({ SECRET_KEY_BASE: SECRET, PORT: "", DATABASE_URL: "", LOG_LEVEL: "" });
  t.is(config.port, 4000);
  t.is(config.databaseUrl, undefined);
  t.is(config.logLevel, "info");
});

for (const port of ["abc", "70000", "-1", "4000.5", "0x50", "1e3", " 80"]) {
  test(`PORT=${JSON.stringify(port)} stops the boot, naming PORT`, (t) => {
    const message = failure(t, { PORT: port });
    t.regex(message, /\bPORT\b/);
    t.notRegex(message, /SOCKET_PORT/);
    t.true(message.includes(JSON.stringify(port)), message);
  });
}

test("SOCKET_PORT and BODY_LIMIT_BYTES are validated too", (t) => {
  t.regex(failure(t, { SOCKET_PORT: "socket" }), /\bSOCKET_PORT\b/);
  t.regex(failure(t, { BODY_LIMIT_BYTES: "0" }), /\bBODY_LIMIT_BYTES\b/);
});

for (const url of ["mysql://db/app", "localhost:5432", "http://db/app"]) {
  test(`DATABASE_URL=${url} stops the boot, naming DATABASE_URL without echoing it`, (t) => {
    const message = failure(t, { DATABASE_URL: url });
    t.regex(message, /\bDATABASE_URL\b/);
    t.false(message.includes(url), "a database URL may carry a password");
  });
}

test("a bad REDIS_URL is refused without echoing it", (t) => {
  const message = failure(t, { REDIS_URL: "memcached://user:hunter2@cache" });
  t.regex(message, /\bREDIS_URL\b/);
  t.false(message.includes("hunter2"));
});

test("LOG_LEVEL must be a pino level", (t) => {
  const message = failure(t, { LOG_LEVEL: "loud" });
  t.regex(message, /\bLOG_LEVEL\b/);
  t.true(message.includes('"loud"'));
  for (const level of ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const) {
    t.is(loadConfig({ SECRET_KEY_BASE: SECRET, LOG_LEVEL: level }).logLevel, level);
  }
});

test("NODE_ENV must be development, test or production", (t) => {
  t.regex(failure(t, { NODE_ENV: "staging" }), /\bNODE_ENV\b/);
});

test("every bad variable is named in one message", (t) => {
  const message = failure(t, { PORT: "x", LOG_LEVEL: "loud", DATABASE_URL: "mysql://db" });
  for (const name of ["PORT", "LOG_LEVEL", "DATABASE_URL"]) t.true(message.includes(name), message);
});

test("production without SECRET_KEY_BASE stops the boot, naming it", (t) => {
  const dataDir = tempDir();
  const error = t.throws(
    () =>
      loadConfig(
        { NODE_ENV: "production", DATA_DIR: dataDir },
        { developmentSecret: (dir) => developmentSecret(dir, () => t.fail("must not generate")) },
      ),
    {
      instanceOf: ConfigError,
    },
  );
  t.regex(error?.message ?? "", /SECRET_KEY_BASE/);
  t.throws(
    () => statSync(join(dataDir, "secret_key_base")),
    { code: "ENOENT" },
    "no secret is generated in production",
  );
});

test("a short SECRET_KEY_BASE is refused without echoing it", (t) => {
  const secret = "tooshort-but-secret";
  const message = failure(t, { SECRET_KEY_BASE: secret, NODE_ENV: "production" });
  t.regex(message, /\bSECRET_KEY_BASE\b/);
  t.false(message.includes(secret));
});

test("validation writes nothing: without a development secret, an unset SECRET_KEY_BASE stops the boot, naming it", (t) => {
  const dataDir = tempDir();
  const error = t.throws(() => loadConfig({ DATA_DIR: dataDir }), { instanceOf: ConfigError });
  t.regex(
    error?.message ?? "",
    /SECRET_KEY_BASE is required \(outside production, `serve` generates one under DATA_DIR\)/,
  );
  t.throws(() => statSync(join(dataDir, "secret_key_base")), { code: "ENOENT" });
});

test("an explicit SECRET_KEY_BASE wins over a generated one and writes nothing", (t) => {
  const dataDir = tempDir();
  const config = loadConfig(
    { DATA_DIR: dataDir, SECRET_KEY_BASE: SECRET },
    { developmentSecret: (dir) => developmentSecret(dir, () => t.fail("no warning expected")) },
  );
  t.is(config.secretKeyBase, SECRET);
  t.throws(() => statSync(join(dataDir, "secret_key_base")), { code: "ENOENT" });
});

test("cluster settings: NODE_NAME, DATABASE_SCHEMA and the timings are read and validated; a lease shorter than two heartbeats is refused", (t) => {
  const defaults = loadConfig({ SECRET_KEY_BASE: SECRET });
  t.deepEqual(defaults.cluster, {
    heartbeatMs: 5000,
    leaseMs: 15000,
    reapMs: 5000,
    reapLockMs: 30000,
    unsubscribeLingerMs: 30000,
  });
  t.is(defaults.nodeName, undefined);
  t.is(defaults.databaseSchema, undefined);
  const set = loadConfig({
    SECRET_KEY_BASE: SECRET,
    NODE_NAME: "n1",
    DATABASE_SCHEMA: "hc_a1",
    CLUSTER_HEARTBEAT_MS: "200",
    CLUSTER_LEASE_MS: "1000",
    CLUSTER_REAP_MS: "250",
    CLUSTER_REAP_LOCK_MS: "2000",
    CLUSTER_UNSUBSCRIBE_LINGER_MS: "0",
  });
  t.deepEqual(set.cluster, { heartbeatMs: 200, leaseMs: 1000, reapMs: 250, reapLockMs: 2000, unsubscribeLingerMs: 0 });
  t.is(set.nodeName, "n1");
  t.is(set.databaseSchema, "hc_a1");
  t.regex(failure(t, { NODE_NAME: "n 1|x" }), /NODE_NAME/);
  t.regex(failure(t, { DATABASE_SCHEMA: "Robert'); drop" }), /DATABASE_SCHEMA/);
  t.regex(failure(t, { CLUSTER_REAP_MS: "-1" }), /CLUSTER_REAP_MS/);
  t.regex(
    failure(t, { CLUSTER_HEARTBEAT_MS: "1000", CLUSTER_LEASE_MS: "1500" }),
    /CLUSTER_LEASE_MS must be at least twice CLUSTER_HEARTBEAT_MS/,
  );
});

test("ADMIN_EMAILS: unset means no operator; a list is trimmed and lower-cased; a non-address is refused by name", (t) => {
  t.deepEqual([...loadConfig({ SECRET_KEY_BASE: SECRET }).adminEmails], []);
  t.deepEqual(
    [...loadConfig({ SECRET_KEY_BASE: SECRET, ADMIN_EMAILS: " Ops@Example.com, , b@x.io " }).adminEmails],
    ["ops@example.com", "b@x.io"],
  );
  t.regex(
    failure(t, { ADMIN_EMAILS: "ops@example.com, root" }),
    /ADMIN_EMAILS must be a comma-separated list of e-mail addresses .*"root"/,
  );
});

test("DASHBOARD_INTERVAL_MS: 1000 by default, 0 turns the feed off, below 100 is refused by name", (t) => {
  t.is(loadConfig({ SECRET_KEY_BASE: SECRET }).dashboardIntervalMs, 1000);
  t.is(loadConfig({ SECRET_KEY_BASE: SECRET, DASHBOARD_INTERVAL_MS: "0" }).dashboardIntervalMs, 0);
  t.regex(
    failure(t, { DASHBOARD_INTERVAL_MS: "50" }),
    /DASHBOARD_INTERVAL_MS must be 0 \(feed off\) or at least 100 \(got 50\)/,
  );
});

const START = "<!-- config-table: generated from SETTINGS in lib/settings.ts; tests/config.test.ts checks it -->";
const END = "<!-- /config-table -->";

/** The README's configuration table: one line per row of SETTINGS, in their order. */
function configurationTable(): string {
  const rows = Object.entries(SETTINGS).map(
    ([name, setting]: [string, { default?: unknown; byDefault?: string; doc: string }]) => {
      const byDefault =
        setting.byDefault ?? (setting.default === undefined ? "unset" : `\`${String(setting.default)}\``);
      return `| \`${name}\` | ${byDefault} | ${setting.doc} |`;
    },
  );
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

test("the README's configuration table is the rows of SETTINGS, one line per variable", (t) => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  t.true(start !== -1 && end > start, "the README keeps the config-table markers");
  const expected = configurationTable();
  const actual = readme.slice(start + START.length, end).trim();
  if (actual !== expected) t.log(`paste between the markers:\n${expected}`);
  t.is(actual, expected);
});
