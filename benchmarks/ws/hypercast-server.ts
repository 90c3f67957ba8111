/**
 * The Hypercast side of the benchmark when no --url is given: the realtime tier on an embedded
 * in-memory database in its own process (so its CPU and memory are measured alone), with one
 * user, one public room and a socket token, reported to the parent over IPC.
 */
import { randomBytes } from "node:crypto";
import { loadConfig } from "../../lib/config.ts";
import { createDeps } from "../../lib/deps.ts";
import { startRealtime } from "../../lib/realtime/index.ts";
import type { ServerReady } from "./shared.ts";

const config = loadConfig({
  ...process.env,
  SECRET_KEY_BASE: randomBytes(32).toString("hex"),
  LOG_LEVEL: "warn",
  NODE_ENV: "test",
  PASSWORD_HASH_COST: "10",
  // The publisher socket sends faster than the interactive default allows.
  SOCKET_RATE_LIMIT: "100000",
  SOCKET_RATE_BURST: "100000",
  // Every benchmark socket is the same user.
  SOCKETS_PER_USER: "1000000",
  DATABASE_URL: "",
});
const deps = await createDeps(config, { inMemory: true });
const email = `bench${Date.now()}@example.com`;
const user = await deps.accounts.registerUser({ name: "bench", email, password: "benchmark password" });
const session = await deps.accounts.createSession(email, "benchmark password");
const room = await deps.rooms.createRoom(user.id, { name: "bench" });
const realtime = await startRealtime(deps, { host: "127.0.0.1", port: 0 });
const ready: ServerReady = { kind: "ready", port: realtime.port, token: session.socketToken, topic: `room:${room.id}` };
process.send?.(ready);
process.on("message", (message: { kind: string }) => {
  if (message.kind === "gc") {
    globalThis.gc?.();
    process.send?.({ kind: "gc-done" });
  }
});
process.on("disconnect", () => {
  void realtime.shutdown().finally(() => process.exit(0));
});
