/**
 * Process helpers shared by the tests and the benchmarks, in one copy: a free port, bounded waits
 * (`eventually`, `within`), a command run to its end (`runCommand`), a redis-server the caller owns,
 * and Hypercast started as operators start it (`node --import tsx lib/bin/cli.ts serve`), resolved
 * once it prints its banner.
 *
 *     const port = await freePort()
 *     const redis = await startRedisServer()                 // redis://127.0.0.1:<port>, no persistence
 *     const node = await startServe({ name: "n1", env: { REDIS_URL: redis.url, … } })
 *     await eventually(async () => (await fetch(`${node.httpUrl}/ready`)).ok || undefined, 5000, "ready")
 *     node.signal("SIGTERM"); await node.exited; await redis.kill()
 *
 * Every wait is bounded and its error says what it waited for.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface CommandRun {
  /** The exit code; null when a signal (or `timeoutMs`) ended it. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `file args` from the repository's root to its end, with `env` over the tests' own and an
 * empty stdin; kills it after `timeoutMs` if given. Never rejects: a failing command is a result.
 *
 *     const { code, stderr } = await runCommand("npx", ["tsx", "benchmarks/ws.ts", "--bogus"])
 */
export function runCommand(
  file: string,
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CommandRun> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      {
        cwd: ROOT,
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 0,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }),
    );
    child.stdin?.end();
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1, for processes that must be told their port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** Polls `probe` every `everyMs` until it returns something other than undefined or false; throws after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5000,
  what = "condition",
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function running(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

export interface OwnedRedis {
  readonly port: number;
  readonly url: string;
  /** The current redis-server's pid. */
  readonly pid: number;
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
  /** A command prefix, e.g. `["taskset", "-c", "1"]` (benchmarks pin it to a core). */
  prefix?: string[];
  /** Called with every process started (e.g. a group that SIGKILLs them all on exit). */
  onSpawn?: (child: ChildProcess) => void;
}

/** `redis-server --port <free> --bind 127.0.0.1 --save ''` (no persistence unless asked), answering PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<OwnedRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const dir = options.persist === true ? mkdtempSync(join(tmpdir(), "hypercast-redis-")) : undefined;
  const storage =
    dir === undefined ? ["--appendonly", "no"] : ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir];

  async function start(): Promise<void> {
    const command = [
      ...(options.prefix ?? []),
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      ...storage,
    ];
    const proc = spawn(command[0]!, command.slice(1), { stdio: "ignore" });
    child = proc;
    options.onSpawn?.(proc);
    const spawned = await new Promise<Error | undefined>((resolve) => {
      proc.once("spawn", () => resolve(undefined));
      proc.once("error", resolve);
    });
    if (spawned !== undefined)
      throw new Error(`cannot start redis-server (${spawned.message}); install Redis 7 or put redis-server on PATH`);
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
        const probe = new Redis({
          port,
          host: "127.0.0.1",
          lazyConnect: true,
          retryStrategy: () => null,
          maxRetriesPerRequest: 0,
        });
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
  }

  async function kill(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!running(proc)) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill("SIGKILL");
    await exited;
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid ?? Number.NaN;
    },
    kill,
    async remove() {
      await kill();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
    restart: start,
    signal(signal) {
      if (!running(child)) throw new Error("redis-server is not running");
      child.kill(signal);
    },
  };
}

export interface ServeOptions {
  /** NODE_NAME, and how errors and echoed lines name the process. */
  name: string;
  /** Environment on top of this process's own; HOST, PORT, SOCKET_PORT and NODE_NAME are set here. */
  env: Record<string, string>;
  /** A command prefix, e.g. `["taskset", "-c", "0"]`. */
  prefix?: string[];
  /** Flags for node itself, before the entry (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Run a compiled build as production does (`node <build>/lib/bin/cli.js serve`; `npm run build` emits dist/); default: the sources through tsx. */
  build?: string;
  /** Called with every process started (e.g. a group that SIGKILLs them all on exit). */
  onSpawn?: (child: ChildProcess) => void;
  /** Copy the process's stderr lines to ours, prefixed with its name (benchmarks); default: kept in `output()` only. */
  echoStderr?: boolean;
  /** How long the banner may take (default 30 s). */
  startTimeoutMs?: number;
}

export interface ServeProcess {
  readonly name: string;
  readonly port: number;
  readonly socketPort: number;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** `ws://127.0.0.1:<socketPort>` (the socket endpoint is `${socketUrl}/socket`). */
  readonly socketUrl: string;
  /** The current process (a restart replaces it). */
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or signal) of the current process. */
  readonly exited: Promise<number | string>;
  /** The last 20,000 characters the process wrote, for failure messages. */
  output(): string;
  signal(signal: NodeJS.Signals): void;
  /** A new process on the same ports (a new incarnation). */
  restart(): Promise<void>;
  alive(): boolean;
}

/** The line `serve` prints once both listeners are up (lib/bin/cli.ts). */
const BANNER = "Hypercast socket";

/**
 * Starts `lib/bin/cli.ts serve` on free ports and resolves once it printed its banner. A port taken
 * by another process between `freePort` and the bind (other test files run at once) is retried
 * with new ports, a few times.
 */
export async function startServe(options: ServeOptions): Promise<ServeProcess> {
  let [port, socketPort] = [await freePort(), await freePort()];
  let child!: ChildProcess;
  let exited!: Promise<number | string>;
  let log = "";
  const { name } = options;

  async function start(): Promise<void> {
    log = "";
    const entry =
      options.build === undefined ? ["--import", "tsx", "lib/bin/cli.ts"] : [`${options.build}/lib/bin/cli.js`];
    const command = [...(options.prefix ?? []), process.execPath, ...(options.nodeArgs ?? []), ...entry, "serve"];
    const proc = spawn(command[0]!, command.slice(1), {
      cwd: ROOT,
      env: {
        ...process.env,
        ...options.env,
        NODE_NAME: name,
        HOST: "127.0.0.1",
        PORT: String(port),
        SOCKET_PORT: String(socketPort),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    options.onSpawn?.(proc);
    exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
    let banner = false;
    const started = new Promise<void>((resolve, reject) => {
      const collect = (chunk: Buffer) => {
        log = (log + chunk.toString()).slice(-20_000);
        if (!banner && log.includes(BANNER)) ((banner = true), resolve());
      };
      proc.stdout!.on("data", collect);
      proc.stderr!.on("data", (chunk: Buffer) => {
        collect(chunk);
        if (options.echoStderr === true)
          for (const line of chunk.toString().split("\n"))
            if (line.trim() !== "") process.stderr.write(`[${name}] ${line}\n`);
      });
      proc.once("exit", (code) => reject(new Error(`node ${name} exited with ${code} before it started:\n${log}`)));
    });
    await within(options.startTimeoutMs ?? 30_000, `node ${name} to start`, started).catch((error: unknown) => {
      proc.kill("SIGKILL");
      throw error;
    });
  }

  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (error) {
      if (attempt >= 3 || !/EADDRINUSE/.test((error as Error).message)) throw error;
      [port, socketPort] = [await freePort(), await freePort()];
    }
  }
  return {
    name,
    get port() {
      return port;
    },
    get socketPort() {
      return socketPort;
    },
    get httpUrl() {
      return `http://127.0.0.1:${port}`;
    },
    get socketUrl() {
      return `ws://127.0.0.1:${socketPort}`;
    },
    get child() {
      return child;
    },
    get pid() {
      return child.pid ?? Number.NaN;
    },
    get exited() {
      return exited;
    },
    output: () => log,
    signal: (signal) => void child.kill(signal),
    restart: start,
    alive: () => running(child),
  };
}
