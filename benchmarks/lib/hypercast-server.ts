/**
 * Child-process entry for the HTTP benchmark (forked by `http.ts`, never run by hand): Hypercast
 * exactly as `npm start` serves it in production (`startServer`, request log at info to stdout,
 * metrics, ETags, security headers, the rate limiter), on a fresh PostgreSQL schema that it
 * creates, migrates and seeds: one viewer with a bearer token among a thousand other users and
 * tokens. The references connect to the same schema with pools of their own. On `stop` it closes,
 * drops the schema and exits.
 *
 * Argument: JSON `{ databaseUrl, logLevel, env? }` (`env`: settings over this file's own). Ready message: `HypercastInfo`.
 */
import "../../lib/bin/v8-flags.ts"; // first, as in lib/bin/cli.ts
import { randomBytes } from "node:crypto";
import { loadConfig } from "../../lib/config.ts";
import { closeDeps, createDeps, type Deps } from "../../lib/deps.ts";
import { startServer } from "../../lib/server.ts";
import { serveUntilStopped } from "./processes.ts";
import { settle } from "./settle.ts";

export interface HypercastOptions {
  databaseUrl: string;
  logLevel: string;
  /** Settings over the ones below (bench:http:compare's `--base-env`, `--change-env`). */
  env?: Record<string, string>;
}

export interface HypercastInfo {
  url: string;
  /** The schema every server works in. */
  schema: string;
  /** A live bearer token, and the id of the (other) user every request fetches. */
  token: string;
  userId: number;
  /** e.g. `PostgreSQL 15.20`. */
  database: string;
}

const OTHER_USERS = 1000;

serveUntilStopped<HypercastInfo>(async () => {
  const options = JSON.parse(process.argv[2] ?? "{}") as HypercastOptions;
  const schema = `bench_${randomBytes(6).toString("hex")}`;
  const config = loadConfig({
    NODE_ENV: "production",
    LOG_LEVEL: options.logLevel,
    SECRET_KEY_BASE: randomBytes(32).toString("hex"),
    PASSWORD_HASH_COST: "10", // only the seed's one sign-up hashes a password
    HOST: "127.0.0.1",
    PORT: "0",
    SOCKET_PORT: "0",
    DATABASE_URL: options.databaseUrl,
    // The limiter still counts every request (its cost is measured), but one token's load must
    // not turn into 429s.
    API_RATE_LIMIT: "1000000000",
    ANONYMOUS_RATE_LIMIT: "1000000000",
    // Tracing is measured by running the benchmark with OTEL_EXPORTER_OTLP_ENDPOINT set (README "Tracing").
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith("OTEL_"))),
    ...options.env,
  });
  const deps = await createDeps(config, { schema, migrate: true });
  const { token, userId } = await seed(deps);
  const server = await startServer(deps, { host: "127.0.0.1", port: 0 });
  const version = (await deps.db.raw("show server_version")) as { rows: Array<{ server_version: string }> };
  return {
    info: {
      url: server.httpUrl,
      schema,
      token,
      userId,
      database: `PostgreSQL ${version.rows[0]?.server_version ?? "?"}`,
    },
    async stop() {
      await server.stop();
      await settle(deps.db);
      await deps.db.raw("drop schema if exists ?? cascade", [schema]);
      await closeDeps(deps);
    },
  };
});

/** One viewer with a live token; every request fetches another user, among many rows and tokens. */
async function seed(deps: Deps): Promise<{ token: string; userId: number }> {
  const email = "viewer@bench.invalid";
  await deps.accounts.registerUser({
    name: "Bench Viewer",
    email,
    password: "bench-password",
    favoriteSports: ["rowing"],
  });
  const { token } = await deps.accounts.createSession(email, "bench-password");
  const others = await deps
    .db("users")
    .insert(
      Array.from({ length: OTHER_USERS }, (_, i) => ({
        name: `User ${i}`,
        email: `user${i}@bench.invalid`,
        password_hash: "not-a-hash", // nobody signs in as them
        favorite_sports: ["chess", "football", "sailing"],
        api_version: 2,
      })),
    )
    .returning("id");
  await deps
    .db("access_tokens")
    .insert(others.map((row: { id: number }) => ({ user_id: row.id, token_hash: randomBytes(32).toString("hex") })));
  await deps.db.raw("analyze users, access_tokens");
  const target = others[Math.floor(others.length / 2)] as { id: number };
  return { token, userId: target.id };
}
