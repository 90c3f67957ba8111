/**
 * The processes `bench:cluster` owns: a redis-server on a free loopback port (no persistence), a
 * fresh PostgreSQL database (created, migrated with `cli.ts migrate`, dropped afterwards) and
 * Hypercast nodes started exactly as an operator would, `node --import tsx lib/bin/cli.ts serve`.
 * Every child is registered in a group that can SIGKILL them all, by pid, on any exit path.
 *
 *     const group = createProcessGroup()
 *     const redis = await startRedis(group)
 *     const db = await createDatabase("postgres://postgres@127.0.0.1:5432/test")
 *     const n1 = await startNode(group, { name: "n1", env: { REDIS_URL: redis.url, DATABASE_URL: db.url, … } })
 *     await stopNode(n1); group.killAll(); await db.drop()
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import pg from "pg";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = "lib/bin/cli.ts";

export interface ProcessGroup {
  add(child: ChildProcess): ChildProcess;
  /** SIGKILL every child still running (synchronous, so it is safe in an `exit` handler). */
  killAll(): void;
}

export function createProcessGroup(): ProcessGroup {
  const children = new Set<ChildProcess>();
  return {
    add(child) {
      children.add(child);
      child.once("exit", () => children.delete(child));
      return child;
    },
    killAll() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export interface OwnedRedis {
  readonly url: string;
  readonly pid: number;
}

/** `redis-server --port <free> --bind 127.0.0.1 --save '' --appendonly no`, answering PING. */
export async function startRedis(group: ProcessGroup, pin: string[] = []): Promise<OwnedRedis> {
  const port = await freePort();
  const command = [...pin, "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const child = group.add(spawn(command[0]!, command.slice(1), { stdio: "ignore" }));
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once("spawn", () => resolve(undefined));
    child.once("error", resolve);
  });
  if (spawned !== undefined) throw new Error(`cannot start redis-server (${spawned.message}); install Redis 7 or put redis-server on PATH`);
  await until(
    async () => {
      if (exited(child)) throw new Error(`redis-server exited with ${child.exitCode ?? child.signalCode}`);
      const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on("error", () => {});
      try {
        await probe.connect();
        return (await probe.ping()) === "PONG" ? true : undefined;
      } catch {
        return undefined;
      } finally {
        probe.disconnect();
      }
    },
    10_000,
    `redis-server on port ${port}`,
  );
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid! };
}

export interface OwnedDatabase {
  /** The base URL with the fresh database's name in its path. */
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

/** A fresh database next to the one `baseUrl` names (two processes cannot share one schema option yet). */
export async function createDatabase(baseUrl: string): Promise<OwnedDatabase> {
  const name = `bench_cluster_${randomBytes(5).toString("hex")}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: baseUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`create database "${name}"`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      // FORCE (PostgreSQL 13+) ends connections a killed node may have left behind.
      await admin(`drop database if exists "${name}" with (force)`);
    },
  };
}

/** `node --import tsx lib/bin/cli.ts migrate` against `databaseUrl`, as an operator runs it once per cluster. */
export async function migrateDatabase(group: ProcessGroup, databaseUrl: string): Promise<void> {
  const child = group.add(spawn(process.execPath, ["--import", "tsx", CLI, "migrate"], { cwd: ROOT, env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" }, stdio: ["ignore", "ignore", "pipe"] }));
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  if (code !== 0) throw new Error(`migrate exited with ${code}: ${stderr.trim()}`);
}

export interface Node {
  readonly name: string;
  readonly pid: number;
  readonly httpUrl: string;
  readonly socketUrl: string;
  readonly child: ChildProcess;
}

export interface NodeOptions {
  name: string;
  /** Environment on top of this process's own (REDIS_URL, DATABASE_URL, SECRET_KEY_BASE, …). */
  env: Record<string, string>;
  /** A command prefix that pins the node to cores, e.g. ["taskset", "-c", "0"] (default none). */
  pin?: string[];
}

/** Starts one Hypercast node on free ports; resolves once it has printed both URLs. */
export async function startNode(group: ProcessGroup, options: NodeOptions): Promise<Node> {
  const [port, socketPort] = [await freePort(), await freePort()];
  const env = { ...process.env, ...options.env, NODE_NAME: options.name, HOST: "127.0.0.1", PORT: String(port), SOCKET_PORT: String(socketPort) };
  // stdout carries the JSON log (LOG_LEVEL=warn keeps it near silent) and the two URL lines.
  const command = [...(options.pin ?? []), process.execPath, "--import", "tsx", CLI, "serve"];
  const child = group.add(spawn(command[0]!, command.slice(1), { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] }));
  let stdout = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.length > 1 << 20) stdout = stdout.slice(-4096);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line.trim() !== "") process.stderr.write(`[${options.name}] ${line}\n`);
  });
  await until(
    async () => {
      if (exited(child)) throw new Error(`node ${options.name} exited with ${child.exitCode ?? child.signalCode}: ${stdout.slice(-2000)}`);
      return stdout.includes("Hypercast socket") ? true : undefined;
    },
    60_000,
    `node ${options.name} to start`,
  );
  return { name: options.name, pid: child.pid!, httpUrl: `http://127.0.0.1:${port}`, socketUrl: `ws://127.0.0.1:${socketPort}`, child };
}

/** SIGTERM (the node drains), then SIGKILL after `graceMs`. */
export async function stopNode(node: Node, graceMs = 10_000): Promise<void> {
  if (exited(node.child)) return;
  const done = new Promise((resolve) => node.child.once("exit", resolve));
  node.child.kill("SIGTERM");
  const timer = setTimeout(() => node.child.kill("SIGKILL"), graceMs);
  await done;
  clearTimeout(timer);
}
