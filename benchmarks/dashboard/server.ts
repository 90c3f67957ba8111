/**
 * The server side of `npm run bench:dashboard`: the realtime tier (with the dashboard feed at
 * DASHBOARD_INTERVAL_MS from the parent's environment, 0 = off) on an embedded in-memory database
 * in its own process, so its CPU is measured alone; one room, a user's and an operator's socket
 * tokens reported to the parent over IPC, and, when asked, how many sockets it holds.
 */
import { randomBytes } from "node:crypto";
import { loadConfig } from "../../lib/config.ts";
import { createDeps } from "../../lib/deps.ts";
import { startRealtime } from "../../lib/realtime/index.ts";

export interface DashboardServerReady {
  kind: "ready";
  port: number;
  token: string;
  operatorToken: string;
  topic: string;
}

export type DashboardServerMessage = DashboardServerReady | { kind: "connections"; count: number };

const operator = `ops-${randomBytes(4).toString("hex")}@example.com`;
const config = loadConfig({
  ...process.env,
  SECRET_KEY_BASE: randomBytes(32).toString("hex"),
  LOG_LEVEL: "warn",
  NODE_ENV: "test",
  PASSWORD_HASH_COST: "10",
  ADMIN_EMAILS: operator,
  DATABASE_URL: "",
  // One user's token opens every socket of the run.
  SOCKETS_PER_USER: "100000",
});
const deps = await createDeps(config, { inMemory: true });
const user = await deps.accounts.registerUser({
  name: "bench",
  email: `bench-${operator}`,
  password: "benchmark password",
});
const ops = await deps.accounts.registerUser({ name: "ops", email: operator, password: "benchmark password" });
const room = await deps.rooms.createRoom(user.id, { name: "bench" });
const realtime = await startRealtime(deps, { host: "127.0.0.1", port: 0 });
const ready: DashboardServerReady = {
  kind: "ready",
  port: realtime.port,
  token: (await deps.accounts.createSession(user.email, "benchmark password")).socketToken,
  operatorToken: (await deps.accounts.createSession(ops.email, "benchmark password")).socketToken,
  topic: `room:${room.id}`,
};
process.send?.(ready);
process.on("message", (message: { kind?: string }) => {
  if (message.kind === "connections")
    process.send?.({ kind: "connections", count: realtime.connections() } satisfies DashboardServerMessage);
});
process.on("disconnect", () => {
  void realtime.shutdown().finally(() => process.exit(0));
});
