/**
 * The Hypercast side of `bench:ws`: the realtime tier in its own process (pinned by the caller),
 * with one user, one public room and a socket token, on an embedded in-memory database — or, with
 * `BENCH_DATABASE_URL`, on that PostgreSQL in a fresh schema. Prints one JSON line
 * `{"ready":true,"port":…,"token":…,"topic":…}` on stdout once it listens; stops on SIGTERM.
 */
import "../../lib/bin/v8-flags.ts"; // first, as in lib/bin/cli.ts
import { randomBytes } from "node:crypto";
import { loadConfig } from "../../lib/config.ts";
import { createDeps } from "../../lib/deps.ts";
import { startRealtime } from "../../lib/realtime/index.ts";

const databaseUrl = process.env["BENCH_DATABASE_URL"] ?? "";
const config = loadConfig({
  ...process.env,
  SECRET_KEY_BASE: randomBytes(32).toString("hex"),
  LOG_LEVEL: "warn",
  NODE_ENV: "test",
  PASSWORD_HASH_COST: "10",
  // The publisher socket sends faster than the interactive default allows, and one user holds
  // every socket (SOCKETS_PER_USER and RATE_LIMITS are ignored by versions that lack them).
  SOCKET_RATE_LIMIT: "1000000",
  SOCKET_RATE_BURST: "1000000",
  SOCKETS_PER_USER: "1000000",
  RATE_LIMITS: "off",
  DATABASE_URL: databaseUrl,
});
const schema = databaseUrl === "" ? undefined : `bench_ws_${process.pid}`;
const deps = await createDeps(config, databaseUrl === "" ? { inMemory: true } : { schema: schema!, migrate: true });
const email = `bench${Date.now()}@example.com`;
const user = await deps.accounts.registerUser({ name: "bench", email, password: "benchmark password" });
const session = await deps.accounts.createSession(email, "benchmark password");
const room = await deps.rooms.createRoom(user.id, { name: "bench" });
const realtime = await startRealtime(deps, { host: "127.0.0.1", port: 0 });
console.log(JSON.stringify({ ready: true, port: realtime.port, token: session.socketToken, topic: `room:${room.id}` }));
process.on("SIGTERM", () => {
  void realtime
    .shutdown()
    .then(async () => {
      if (schema !== undefined) await deps.db.raw(`drop schema if exists "${schema}" cascade`);
    })
    .finally(() => process.exit(0));
});
