/**
 * Test helpers for the realtime tier: a real database (PGlite in memory, or a fresh schema on
 * DATABASE_URL), a real uWebSockets.js server on port 0, the real `phoenix` client over `ws`, and a
 * raw `ws` client for frame-level tests. Every wait has a timeout.
 */
import { randomBytes } from "node:crypto";
import { Presence as PhoenixPresence, Socket, type Channel } from "phoenix";
import WebSocket from "ws";
import { startRealtime, type RealtimeOptions, type RealtimeServer } from "../../lib/realtime/index.ts";
import { createTestDeps, testConfig, type TestDeps } from "../helpers/deps.ts";
import { eventually, freePort, within } from "../helpers/processes.ts";

export { within };

export { PhoenixPresence };

export interface World {
  deps: TestDeps;
  realtime: RealtimeServer;
  url(query?: string): string;
  endpoint(): string;
  /** Registers a user, logs in, and returns its id, socket token, bearer token and session id. */
  user(name?: string): Promise<{ id: number; token: string; bearer: string; sessionId: number }>;
  /** Stops the realtime server and starts a new one on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

let users = 0;

/** Guards on every wait: generous, since test files run in parallel on small machines; waits end on events, never on these. */
export const WAIT_MS = 15000;

export interface WorldOptions extends Partial<RealtimeOptions> {
  env?: Record<string, string>;
  /** The presence coalescing window (default 10 ms, shorter than production's to keep tests quick). */
  presenceWindowMs?: number;
}

export async function createWorld(options: WorldOptions = {}): Promise<World> {
  const { env, presenceWindowMs = 10, ...realtimeOptions } = options;
  const deps = await createTestDeps(testConfig(env), { presenceWindowMs });
  // An explicit port rather than 0: uSockets sets SO_REUSEADDR only for explicit ports, and
  // without it the TIME_WAIT of closed connections blocks a restart on the same port.
  let realtime = await startRealtime(deps, { host: "127.0.0.1", port: await freePort(), ...realtimeOptions });
  const sockets = new Set<Socket>();
  const world: World = {
    deps,
    get realtime() {
      return realtime;
    },
    url: (query = "") => `ws://127.0.0.1:${realtime.port}/socket/websocket?vsn=2.0.0${query === "" ? "" : `&${query}`}`,
    endpoint: () => `ws://127.0.0.1:${realtime.port}/socket`,
    async user(name = "user") {
      const n = ++users;
      const email = `${name}${n}.${randomBytes(4).toString("hex")}@example.com`;
      const user = await deps.accounts.registerUser({ name: `${name}${n}`, email, password: "correct horse battery" });
      const session = await deps.accounts.createSession(email, "correct horse battery");
      return { id: user.id, token: session.socketToken, bearer: session.token, sessionId: session.sessionId };
    },
    async restart() {
      const port = realtime.port;
      await realtime.shutdown();
      realtime = await startRealtime(deps, { host: "127.0.0.1", port, ...realtimeOptions });
    },
    async close() {
      for (const socket of sockets) socket.disconnect();
      await realtime.shutdown();
      await deps.dispose();
    },
  };
  trackSockets = sockets;
  return world;
}

let trackSockets: Set<Socket> | undefined;

/** A connected phoenix client (resolves on open). */
export async function connect(
  world: World,
  token: string,
  params: Record<string, string> = {},
  options: { authToken?: boolean } = {},
): Promise<Socket> {
  const socket = new Socket(world.endpoint(), {
    transport: WebSocket,
    ...(options.authToken === true ? { authToken: token, params } : { params: { token, ...params } }),
    timeout: WAIT_MS,
    heartbeatIntervalMs: 30000,
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 100,
  } as ConstructorParameters<typeof Socket>[1]);
  trackSockets?.add(socket);
  await within(
    WAIT_MS,
    "socket open",
    new Promise<void>((resolve, reject) => {
      socket.onOpen(() => resolve());
      socket.onError((e: unknown) => reject(new Error(`socket error ${String(e)}`)));
      socket.connect();
    }),
  );
  return socket;
}

export interface JoinReply {
  status: "ok" | "error";
  response: Record<string, unknown>;
}

/** Joins and resolves with the reply (ok or error); an error join is left so the client stops retrying. */
export function join(channel: Channel): Promise<JoinReply> {
  return within(
    WAIT_MS,
    `join ${channel.topic}`,
    new Promise<JoinReply>((resolve) => {
      channel
        .join()
        .receive("ok", (response: Record<string, unknown>) => resolve({ status: "ok", response }))
        .receive("error", (response: Record<string, unknown>) => {
          channel.leave();
          resolve({ status: "error", response });
        });
    }),
  );
}

export function push(channel: Channel, event: string, payload: object): Promise<JoinReply> {
  return within(
    WAIT_MS,
    `push ${event}`,
    new Promise<JoinReply>((resolve, reject) => {
      channel
        .push(event, payload)
        .receive("ok", (response: Record<string, unknown>) => resolve({ status: "ok", response }))
        .receive("error", (response: Record<string, unknown>) => resolve({ status: "error", response }))
        .receive("timeout", () => reject(new Error(`push ${event} timed out`)));
    }),
  );
}

/** The next `event` on the channel satisfying `accept`. */
export function nextEvent<T = Record<string, unknown>>(
  channel: Channel,
  event: string,
  accept: (payload: T) => boolean = () => true,
  ms = WAIT_MS,
): Promise<T> {
  return within(
    ms,
    `event ${event} on ${channel.topic}`,
    new Promise<T>((resolve) => {
      const ref = channel.on(event, (payload: T) => {
        if (!accept(payload)) return;
        channel.off(event, ref);
        resolve(payload);
      });
    }),
  );
}

/** Resolves when `check()` holds, polling every 5 ms. */
export async function until(what: string, check: () => boolean, ms = WAIT_MS): Promise<void> {
  await eventually(() => check() || undefined, ms, what, 5);
}
