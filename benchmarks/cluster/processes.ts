/**
 * The processes `bench:cluster` owns: a redis-server on a free loopback port (no persistence), a
 * fresh PostgreSQL database (created, migrated with `cli.ts migrate`, dropped afterwards) and
 * Hypercast nodes started exactly as an operator would, `node --import tsx lib/bin/cli.ts serve`.
 * Every child is registered in a group that can SIGKILL them all, by pid, on any exit path. The
 * processes themselves are started by the helpers the tests use (tests/helpers/processes.ts).
 *
 *     const group = createProcessGroup()
 *     const redis = await startRedis(group)
 *     const db = await createDatabase("postgres://postgres@127.0.0.1:5432/test")
 *     const n1 = await startNode(group, { name: "n1", env: { REDIS_URL: redis.url, DATABASE_URL: db.url, … } })
 *     await stopNode(n1); group.killAll(); await db.drop()
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { startRedisServer, startServe, type ServeProcess } from "../../tests/helpers/processes.ts";

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

export interface OwnedRedis {
  readonly url: string;
  readonly pid: number;
}

/** `redis-server --port <free> --bind 127.0.0.1 --save '' --appendonly no`, answering PING. */
export async function startRedis(group: ProcessGroup, pin: string[] = []): Promise<OwnedRedis> {
  const redis = await startRedisServer({ prefix: pin, onSpawn: (child) => group.add(child) });
  return { url: redis.url, pid: redis.pid };
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
  const child = group.add(
    spawn(process.execPath, ["--import", "tsx", CLI, "migrate"], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    }),
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  if (code !== 0) throw new Error(`migrate exited with ${code}: ${stderr.trim()}`);
}

export type Node = ServeProcess;

export interface NodeOptions {
  name: string;
  /** Environment on top of this process's own (REDIS_URL, DATABASE_URL, SECRET_KEY_BASE, …). */
  env: Record<string, string>;
  /** A command prefix that pins the node to cores, e.g. ["taskset", "-c", "0"] (default none). */
  pin?: string[];
  /** Run the compiled build in this directory (`npm run build` emits dist/), as production does. */
  build?: string;
  /** Flags for node itself (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
}

/** Starts one Hypercast node on free ports; resolves once it has printed its banner. Its stderr is echoed, prefixed. */
export async function startNode(group: ProcessGroup, options: NodeOptions): Promise<Node> {
  // stdout carries the JSON log (LOG_LEVEL=warn keeps it near silent) and the banner.
  return startServe({
    name: options.name,
    env: options.env,
    prefix: options.pin ?? [],
    ...(options.build === undefined ? {} : { build: options.build }),
    ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
    onSpawn: (child) => group.add(child),
    echoStderr: true,
    startTimeoutMs: 60_000,
  });
}

/** SIGTERM (the node drains), then SIGKILL after `graceMs`. */
export async function stopNode(node: Node, graceMs = 10_000): Promise<void> {
  if (!node.alive()) return;
  const done = new Promise((resolve) => node.child.once("exit", resolve));
  node.child.kill("SIGTERM");
  const timer = setTimeout(() => node.child.kill("SIGKILL"), graceMs);
  await done;
  clearTimeout(timer);
}
