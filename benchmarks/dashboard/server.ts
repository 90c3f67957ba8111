/**
 * The server side of `npm run bench:dashboard`: the realtime tier (with the dashboard feed at
 * DASHBOARD_INTERVAL_MS from the parent's environment, 0 = off) on an embedded in-memory database
 * in its own process, so its CPU is measured alone; one room, a user's and an operator's socket
 * tokens reported to the parent over IPC, and, when asked, how many sockets it holds, what the
 * dashboard's ticks have cost so far (lib/dashboard/feed.ts `cost()`), or to broadcast a message
 * to the room `perSecond` times a second (a fanout to every socket; 0 stops it).
 */
import "../../lib/bin/v8-flags.ts"; // first, as in lib/bin/cli.ts
import { randomBytes } from "node:crypto";
import { loadConfig } from "../../lib/config.ts";
import type { TickCost } from "../../lib/dashboard/feed.ts";
import { createDeps } from "../../lib/deps.ts";
import { startRealtime } from "../../lib/realtime/index.ts";

export interface DashboardServerReady {
  kind: "ready";
  port: number;
  token: string;
  operatorToken: string;
  topic: string;
}

export type DashboardServerMessage =
  DashboardServerReady | { kind: "connections"; count: number } | { kind: "cost"; cost: TickCost };

export type DashboardServerRequest = { kind: "connections" } | { kind: "cost" } | { kind: "fanout"; perSecond: number };

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
let fanout: NodeJS.Timeout | undefined;
let sent = 0;
process.on("message", (message: DashboardServerRequest) => {
  if (message.kind === "connections")
    process.send?.({ kind: "connections", count: realtime.connections() } satisfies DashboardServerMessage);
  if (message.kind === "cost")
    process.send?.({ kind: "cost", cost: deps.dashboard.cost() } satisfies DashboardServerMessage);
  if (message.kind === "fanout") {
    clearInterval(fanout);
    fanout = undefined;
    if (message.perSecond > 0)
      fanout = setInterval(() => {
        // Straight onto the PubSub, as rooms.createMessage publishes after its insert: the fanout without the database.
        deps.pubsub.broadcast(ready.topic, "message.created", {
          id: ++sent,
          roomId: room.id,
          body: "fanout",
          insertedAt: new Date(),
          author: { id: user.id, name: "bench" },
        });
      }, 1000 / message.perSecond);
  }
});
process.on("disconnect", () => {
  void realtime.shutdown().finally(() => process.exit(0));
});
