/**
 * A cluster on one machine for the multi-process tests: a redis-server the test owns, one fresh PostgreSQL schema shared by every node, and
 * Hypercast processes started as operators start them (`node --import tsx lib/bin/cli.ts serve`)
 * with short test timings. The test owns every pid: it can SIGKILL, SIGSTOP, SIGTERM and
 * restart a node, and `stop()` ends them all (call it from `test.after.always`).
 *
 *     const why = await clusterUnavailable()          // a reason to skip, or undefined
 *     const cluster = await startCluster(["n1", "n2", "n3"])
 *     const alice = await cluster.user("alice")
 *     const a = await cluster.join(cluster.node("n1"), alice, "room:1")
 *     await cluster.stop()
 *
 * Clients are the real `phoenix` client (over `ws`) with its `Presence`; every wait is bounded.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import type { TestFn } from "ava";
import pg from "pg";
import { Presence as PhoenixPresence, Socket, type Channel } from "phoenix";
import WebSocket from "ws";
import { migrate, openDatabase } from "../../lib/db/index.ts";
import { testEnv } from "../helpers/deps.ts";
import {
  startRedisServer,
  startServe,
  within,
  type OwnedRedis,
  type RedisServerOptions,
  type ServeProcess,
} from "../helpers/processes.ts";

export { within };

export const DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

/** The test timings of the README's cluster section (production: 5000 / 15000 / 5000 / 30000 / 30000). */
export const TIMINGS = { heartbeatMs: 200, leaseMs: 1000, reapMs: 250, reapLockMs: 2000, lingerMs: 0 } as const;

/** Every wait is bounded by this unless a case states a tighter bound. */
export const WAIT_MS = 15_000;

/**
 * Why the cluster suite cannot run here (no redis-server binary, no PostgreSQL), or undefined.
 * Under `CI=true` a missing service throws instead: CI must run the suite, never skip it.
 */
export async function clusterUnavailable(): Promise<string | undefined> {
  const why = await missingService();
  if (why !== undefined && process.env["CI"] === "true")
    throw new Error(`CI=true, so the cluster suite must run, but there is ${why}`);
  return why;
}

async function missingService(): Promise<string | undefined> {
  if (spawnSync("redis-server", ["--version"]).status !== 0) return "no redis-server binary on PATH";
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("select 1");
  } catch (error) {
    return `no PostgreSQL at ${DATABASE_URL.replace(/:[^:@/]*@/, ":***@")} (${(error as Error).message}); the nodes must share one database`;
  } finally {
    await client.end().catch(() => {});
  }
  return undefined;
}

/** The cluster a test file's cases share; see `clusterForFile`. */
export interface FileCluster {
  /** Why the cluster cannot run here (the file registers one skip saying so), or undefined. */
  readonly why: string | undefined;
  /** The running cluster: read it inside a test, once the file's `test.before` has started it. */
  readonly cluster: Cluster;
  /** The users registered on it, in the order of `userNames`. */
  readonly users: User[];
}

/**
 * One cluster for every case of a test file: `clusterUnavailable()` at once; then, unless it gave a
 * reason, the file's `test.before` starts the nodes `names` and registers the users `userNames`, and
 * its `test.after.always` stops the cluster. `test` is the file's own (the harness never imports ava).
 *
 *     const shared = await clusterForFile(test, ["n1", "n2", "n3"], ["u0", "u1"])
 *     if (shared.why !== undefined) test.skip(`… (skipped: ${shared.why})`, () => {})
 *     else test.serial("…", async (t) => { const c = shared.cluster; … })
 */
export async function clusterForFile(test: TestFn, names: string[], userNames: string[]): Promise<FileCluster> {
  const why = await clusterUnavailable();
  let cluster: Cluster | undefined;
  let users: User[] = [];
  test.before(async () => {
    if (why !== undefined) return;
    cluster = await startCluster(names);
    users = await Promise.all(userNames.map((name) => cluster!.user(name)));
  });
  test.after.always(async () => {
    await cluster?.stop();
  });
  return {
    why,
    get cluster() {
      return cluster ?? fail("no cluster: clusterForFile's cluster is started by the file's test.before");
    },
    get users() {
      return users;
    },
  };
}

/** A node: `serve` as tests/helpers/processes.ts starts it; `api` is its HTTP URL. */
export interface Node extends ServeProcess {
  readonly api: string;
}

export interface User {
  id: number;
  key: string;
  token: string;
  socketToken: string;
}

export interface Diff {
  at: number;
  joins: Record<string, { metas: Array<{ phx_ref: string }> }>;
  leaves: Record<string, { metas: Array<{ phx_ref: string }> }>;
}

export interface Client {
  readonly node: Node;
  readonly user: User;
  readonly socket: Socket;
  readonly channel: Channel;
  readonly presence: PhoenixPresence;
  /** The first presence_state this channel received. */
  readonly state: Record<string, { metas: Array<{ phx_ref: string }> }>;
  readonly diffs: Diff[];
  readonly states: Array<{ at: number; state: Record<string, { metas: Array<{ phx_ref: string }> }> }>;
  readonly messages: Array<{ at: number; payload: { id: number; body: string } }>;
  readonly closes: Array<{ at: number; code: number }>;
  /** Presence.list as `{key: metaCount}`. */
  keys(): Record<string, number>;
  push(event: string, payload: object): Promise<{ status: string; response: Record<string, unknown> }>;
  disconnect(): void;
}

export interface Cluster {
  readonly redis: OwnedRedis;
  readonly nodes: Node[];
  node(name: string): Node;
  user(name: string): Promise<User>;
  room(owner: User, name: string): Promise<string>;
  join(node: Node, user: User, topic: string, payload?: object): Promise<Client>;
  /** A Redis command on the test's redis-server. */
  redisCommand(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startCluster(
  names: string[],
  env: Record<string, string> = {},
  redisOptions: RedisServerOptions = {},
): Promise<Cluster> {
  const redis = await startRedisServer(redisOptions);
  const schema = `hc_cluster_${randomBytes(5).toString("hex")}`;
  const dataDir = mkdtempSync(joinPath(tmpdir(), "hypercast-cluster-"));
  const secret = randomBytes(32).toString("hex");
  const clients = new Set<Client>();
  const nodes: Node[] = [];
  const cluster: Cluster = {
    redis,
    nodes,
    node: (name) => nodes.find((n) => n.name === name) ?? fail(`no node ${name}`),
    user: (name) => register(nodes[0]!, name),
    room: async (owner, name) => {
      const room = await post(`${nodes[0]!.api}/rooms`, { name }, owner.token);
      return `room:${room["id"] as number}`;
    },
    async join(node, user, topic, payload = {}) {
      const client = await joinRoom(node, user, topic, payload);
      clients.add(client);
      return client;
    },
    redisCommand: (...args) => redisCli(redis.port, args),
    async stop() {
      for (const client of clients) client.disconnect();
      await Promise.all(nodes.map((node) => hardStop(node)));
      await redis.remove();
      const db = await openDatabase({ databaseUrl: DATABASE_URL });
      try {
        await db.raw("drop schema if exists ?? cascade", [schema]);
      } finally {
        await db.destroy();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    const db = await openDatabase({ databaseUrl: DATABASE_URL, schema });
    try {
      await migrate(db);
    } finally {
      await db.destroy();
    }
    // The nodes share one secret (a socket token from one is verified by another): testEnv makes one for all.
    const nodeEnv = testEnv({
      DATABASE_URL,
      DATABASE_SCHEMA: schema,
      REDIS_URL: redis.url,
      SECRET_KEY_BASE: secret,
      LOG_LEVEL: "warn",
      DATA_DIR: dataDir,
      SOCKET_RATE_LIMIT: "100000",
      SOCKET_RATE_BURST: "100000",
      API_RATE_LIMIT: "100000",
      CLUSTER_HEARTBEAT_MS: String(TIMINGS.heartbeatMs),
      CLUSTER_LEASE_MS: String(TIMINGS.leaseMs),
      CLUSTER_REAP_MS: String(TIMINGS.reapMs),
      CLUSTER_REAP_LOCK_MS: String(TIMINGS.reapLockMs),
      CLUSTER_UNSUBSCRIBE_LINGER_MS: String(TIMINGS.lingerMs),
      ...env,
    });
    nodes.push(...(await Promise.all(names.map(async (name) => startNode(name, nodeEnv)))));
    return cluster;
  } catch (error) {
    await cluster.stop().catch(() => {});
    throw error;
  }
}

async function startNode(name: string, env: Record<string, string>): Promise<Node> {
  const serve = await startServe({ name, env });
  return Object.assign(serve, { api: serve.httpUrl });
}

async function hardStop(node: Node): Promise<void> {
  if (!node.alive()) return;
  node.signal("SIGKILL"); // ends a SIGSTOPped process too
  await within(10_000, `node ${node.name} to exit`, node.exited).catch(() => {});
}

async function register(node: Node, name: string): Promise<User> {
  const email = `${name}.${randomBytes(4).toString("hex")}@example.com`;
  const user = await post(`${node.api}/users`, { name, email, password: "correct horse battery" });
  const session = await post(`${node.api}/sessions`, { email, password: "correct horse battery" });
  return {
    id: user["id"] as number,
    key: String(user["id"]),
    token: session["token"] as string,
    socketToken: session["socket_token"] as string,
  };
}

export async function post(url: string, body: unknown, token?: string): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  const res = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`POST ${url} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

export async function get(url: string, token?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(WAIT_MS),
  });
  return { status: res.status, text: await res.text() };
}

/** The value of one series of a node's `/metrics`: `line` is the series as printed, labels included. */
export async function metric(node: Node, line: string): Promise<number> {
  const { text } = await get(`${node.api}/metrics`);
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  if (found === undefined) throw new Error(`no ${line} in /metrics of ${node.name}`);
  return Number(found.split(" ").at(-1));
}

/** A client's presence list as sorted `[key, metaCount]` pairs in JSON, for comparing views. */
export const clientShape = (client: Client) => JSON.stringify(Object.entries(client.keys()).sort());

async function joinRoom(node: Node, user: User, topic: string, payload: object): Promise<Client> {
  const socket = new Socket(`ws://127.0.0.1:${node.socketPort}/socket`, {
    transport: WebSocket,
    params: { token: user.socketToken },
    timeout: WAIT_MS,
    heartbeatIntervalMs: 30_000,
    reconnectAfterMs: () => 100,
    rejoinAfterMs: () => 100,
  } as ConstructorParameters<typeof Socket>[1]);
  const diffs: Diff[] = [];
  const states: Client["states"] = [];
  const messages: Client["messages"] = [];
  const closes: Client["closes"] = [];
  socket.onClose((event: { code: number }) => void closes.push({ at: performance.now(), code: event.code }));
  await within(
    WAIT_MS,
    "socket open",
    new Promise<void>((resolve, reject) => {
      socket.onOpen(() => resolve());
      socket.onError((e: unknown) => reject(new Error(`socket error ${String(e)}`)));
      socket.connect();
    }),
  );
  const channel = socket.channel(topic, () => payload);
  const presence = new PhoenixPresence(channel);
  channel.on("presence_diff", (diff: Omit<Diff, "at">) => void diffs.push({ at: performance.now(), ...diff }));
  channel.on("presence_state", (state: Client["state"]) => void states.push({ at: performance.now(), state }));
  channel.on(
    "message:new",
    (message: { id: number; body: string }) => void messages.push({ at: performance.now(), payload: message }),
  );
  await within(
    WAIT_MS,
    `join ${topic} on ${node.name}`,
    new Promise<void>((resolve, reject) => {
      channel
        .join()
        .receive("ok", () => resolve())
        .receive("error", (r: unknown) => reject(new Error(`join refused: ${JSON.stringify(r)}`)));
    }),
  );
  if ((payload as { presence?: boolean }).presence !== false)
    await until(`presence_state on ${node.name}`, () => states.length > 0);
  return {
    node,
    user,
    socket,
    channel,
    presence,
    get state() {
      return states[0]?.state ?? {};
    },
    diffs,
    states,
    messages,
    closes,
    keys: () =>
      Object.fromEntries(
        presence.list((key: string, p: { metas: unknown[] }) => [key, p.metas.length]) as Array<[string, number]>,
      ),
    push: (event, body) =>
      within(
        WAIT_MS,
        `push ${event}`,
        new Promise((resolve, reject) => {
          channel
            .push(event, body, WAIT_MS)
            .receive("ok", (response: Record<string, unknown>) => resolve({ status: "ok", response }))
            .receive("error", (response: Record<string, unknown>) => resolve({ status: "error", response }))
            .receive("timeout", () => reject(new Error(`push ${event} timed out`)));
        }),
      ),
    disconnect: () => socket.disconnect(),
  };
}

/** `redis-cli`-like: one command over a short-lived connection, the reply as text (arrays joined by newlines). */
async function redisCli(port: number, args: string[]): Promise<string> {
  const { Redis } = await import("ioredis");
  const redis = new Redis({
    port,
    host: "127.0.0.1",
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
    const reply = (await redis.call(args[0]!, ...args.slice(1))) as unknown;
    return Array.isArray(reply) ? reply.join("\n") : String(reply ?? "");
  } finally {
    redis.disconnect();
  }
}

/**
 * Ends an "exactly once" or "no second leave" case without a fixed sleep: `marker` joins `topic`
 * once on each given node; when every observer lists all of those sockets, every presence diff
 * published before them (by any node: Redis delivers a channel's messages in the order it ran the
 * PUBLISHes, and a node relays them in that order) has reached the observers. Then the markers
 * leave again and the observers are waited for until they no longer list the marker.
 */
export async function presenceMarker(
  cluster: Cluster,
  topic: string,
  marker: User,
  observers: Client[],
  nodes: Node[],
): Promise<void> {
  const markers = await Promise.all(nodes.map((node) => cluster.join(node, marker, topic)));
  await until("every observer lists the markers", () => observers.every((x) => x.keys()[marker.key] === nodes.length));
  for (const m of markers) m.disconnect();
  await until("every observer drops the markers", () => observers.every((x) => !(marker.key in x.keys())));
}

/** Every presence ref mentioned by a diff's side. */
export function refsOf(side: Diff["joins"], key?: string): string[] {
  return Object.entries(side).flatMap(([k, p]) =>
    key === undefined || k === key ? p.metas.map((m) => m.phx_ref) : [],
  );
}

/** Resolves with the elapsed ms once `check()` holds, polling every 5 ms; rejects after `ms`. */
export async function until(what: string, check: () => boolean, ms = WAIT_MS): Promise<number> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
  return performance.now() - start;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fail(message: string): never {
  throw new Error(message);
}
