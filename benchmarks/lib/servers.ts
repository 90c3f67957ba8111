/**
 * Child-process entry for the HTTP benchmark (forked by `server-process.ts`, never run by
 * hand): builds Hypercast's real dependencies (in-memory PGlite, or a fresh schema on
 * PostgreSQL), seeds a viewer with a bearer token among a thousand other users and tokens, then
 * serves Hypercast (`startServer`, exactly as `npm start` does) and the baseline on two
 * loopback ports over the one knex instance. Stops, drops its schema and exits when told to
 * or when the parent goes away.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadConfig } from "../../lib/config.ts";
import { closeDeps, createDeps, type Deps } from "../../lib/deps.ts";
import { startServer, type RunningServer } from "../../lib/server.ts";
import { buildBaselineApp } from "./baseline.ts";
import type { FromChild, ServerInfo, ServerProcessOptions, ToChild } from "./server-process.ts";

const OTHER_USERS = 1000;

function send(message: FromChild): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? "{}") as ServerProcessOptions;
  const schema = options.databaseUrl === undefined ? undefined : `bench_${randomBytes(6).toString("hex")}`;
  const config = loadConfig({
    NODE_ENV: "production",
    LOG_LEVEL: options.logLevel,
    SECRET_KEY_BASE: randomBytes(32).toString("hex"),
    PASSWORD_HASH_COST: "10", // only the seed's one sign-up hashes a password
    HOST: "127.0.0.1",
    PORT: "0",
    SOCKET_PORT: "0",
    DATABASE_URL: options.databaseUrl,
    // The limiter still runs on every request (its cost is measured), but one token's load must
    // not turn into 429s.
    API_RATE_LIMIT: "1000000000",
    // Tracing is measured by running the benchmark with OTEL_EXPORTER_OTLP_ENDPOINT set (README "Tracing").
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith("OTEL_"))),
  });
  const deps = await createDeps(config, { schema, inMemory: true, migrate: true });
  let hypercast: RunningServer | undefined;
  let baseline: Server | undefined;
  let stopping: Promise<void> | undefined;

  const stop = () =>
    (stopping ??= (async () => {
      await hypercast?.stop();
      if (baseline !== undefined) await closeServer(baseline);
      await settleQueries(deps);
      if (schema !== undefined) await deps.db.raw("drop schema if exists ?? cascade", [schema]);
      await closeDeps(deps);
      process.disconnect?.();
    })());

  process.on("message", (message: ToChild) => {
    if (message.type === "cpu") {
      const { user, system } = process.cpuUsage();
      send({ type: "cpu", id: message.id, micros: user + system });
    } else if (message.type === "stop") {
      stop().catch(fail);
    }
  });
  process.once("disconnect", () => void stop().catch(fail));

  const { token, userId } = await seed(deps);
  hypercast = await startServer(deps, { host: "127.0.0.1", port: 0 });
  baseline = createServer(buildBaselineApp(deps.db).callback());
  baseline.keepAliveTimeout = 5000; // as startServer sets it
  await new Promise<void>((resolve) => baseline!.listen(0, "127.0.0.1", resolve));
  const info: ServerInfo = {
    hypercastUrl: hypercast.httpUrl,
    baselineUrl: `http://127.0.0.1:${(baseline.address() as AddressInfo).port}`,
    token,
    userId,
    database: await describeDatabase(deps, schema),
  };
  send({ type: "ready", info });
}

/** One viewer with a live token; every request fetches another user, among many rows and tokens. */
async function seed(deps: Deps): Promise<{ token: string; userId: number }> {
  const email = "viewer@bench.invalid";
  await deps.accounts.registerUser({ name: "Bench Viewer", email, password: "bench-password", favoriteSports: ["rowing"] });
  const { token } = await deps.accounts.createSession(email, "bench-password");
  const others = await deps
    .db("users")
    .insert(
      Array.from({ length: OTHER_USERS }, (_, i) => ({
        name: `User ${i}`,
        email: `user${i}@bench.invalid`,
        password_hash: "not-a-hash", // nobody signs in as them
        favorite_sports: ["chess", "football", "sailing"],
      })),
    )
    .returning("id");
  await deps.db("access_tokens").insert(
    others.map((row: { id: number }) => ({ user_id: row.id, token_hash: randomBytes(32).toString("hex") })),
  );
  await deps.db.raw("analyze users, access_tokens");
  const target = others[Math.floor(others.length / 2)] as { id: number };
  return { token, userId: target.id };
}

async function describeDatabase(deps: Deps, schema: string | undefined): Promise<string> {
  const result = (await deps.db.raw("show server_version")) as { rows: Array<{ server_version: string }> };
  const server = result.rows[0]?.server_version ?? "?";
  if (schema !== undefined) return `PostgreSQL ${server} (${redact(deps.config.databaseUrl ?? "")}, schema ${schema})`;
  const manifest = new URL("../../node_modules/@electric-sql/pglite/package.json", import.meta.url);
  const version = (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
  return `PGlite ${version} in memory (PostgreSQL ${server})`;
}

/** A URL without its password. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "PostgreSQL";
  }
}

/**
 * autocannon ends a run by destroying its sockets, so handlers of abandoned requests may still
 * be querying after the servers close; dropping the schema under them would log errors.
 */
async function settleQueries(deps: Deps): Promise<void> {
  const pool = (deps.db.client as { pool?: { numUsed(): number; numPendingAcquires(): number } }).pool;
  const deadline = Date.now() + 5000;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    const busy = pool !== undefined && (pool.numUsed() > 0 || pool.numPendingAcquires() > 0);
    if (busy) quietSince = Date.now();
    else if (Date.now() - quietSince >= 100) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

function fail(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  send({ type: "failed", message });
  process.stderr.write(`bench server: ${message}\n`);
  process.exitCode = 1;
  process.disconnect?.();
  // An open pool must not keep a broken child alive.
  setTimeout(() => process.exit(1), 1000).unref();
}

main().catch(fail);
