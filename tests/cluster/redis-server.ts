/**
 * Test helpers for the cluster: a redis-server the test owns (free port, no persistence) that it
 * can kill and restart, a unique key prefix per run with its cleanup, and a bounded `eventually`.
 *
 *     const server = await startRedisServer()   // redis://127.0.0.1:<port>
 *     await server.kill(); await server.restart() // same port, empty data
 *     server.signal("SIGSTOP"); server.signal("SIGCONT") // hung, then back with its data
 *     test.after.always(() => server.kill())
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "../helpers/ports.ts";

export const SHARED_REDIS_URL = process.env["TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";

export function uniquePrefix(label: string): string {
  return `test-${label}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** Deletes every key under `rt:<prefix>:` (and `<prefix>` itself for rate-limit keys). */
export async function cleanupPrefix(url: string, pattern: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}


export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface OwnedRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** `kill`, and delete its data directory (persisting servers). */
  remove(): Promise<void>;
  /** Start again on the same port (data is gone, unless started with `persist`). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that keeps its connections open and answers nothing, then resumes with its data. */
  signal(signal: "SIGSTOP" | "SIGCONT"): void;
}

export interface RedisServerOptions {
  /** Keep the data across `kill` + `restart` (an append-only file fsynced at every write, in a temporary directory). */
  persist?: boolean;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<OwnedRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const dir = options.persist === true ? mkdtempSync(join(tmpdir(), "hypercast-redis-")) : undefined;
  const storage = dir === undefined ? ["--appendonly", "no"] : ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir];

  async function start(): Promise<void> {
    const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...storage], { stdio: "ignore" });
    child = proc;
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
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
      5000,
      `redis-server on port ${port}`,
    );
  }

  async function kill(): Promise<void> {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill("SIGKILL");
    await exited;
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    async remove() {
      await kill();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
    restart: start,
    signal(signal) {
      if (child === undefined || child.exitCode !== null) throw new Error("redis-server is not running");
      child.kill(signal);
    },
  };
}
