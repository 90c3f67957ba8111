/**
 * The benchmark's server side, seen from the load generator: forks `servers.ts` (Hypercast and
 * the baseline on one knex instance, in one child process), waits until it has seeded and is
 * listening, and talks to it over IPC (CPU readings, stop). Keeping the servers out of the
 * load generator's process gives each its own core on a two-core machine.
 *
 *     const servers = await startServerProcess({ databaseUrl: undefined, logLevel: "info" })
 *     const before = await servers.cpuUsage()
 *     await servers.stop()
 */
import { fork, type ChildProcess } from "node:child_process";

export interface ServerProcessOptions {
  /** PostgreSQL URL (a fresh schema is created and dropped), or undefined for in-memory PGlite. */
  databaseUrl: string | undefined;
  /** Hypercast's LOG_LEVEL; its log lines go to /dev/null. */
  logLevel: string;
  /** Write a V8 CPU profile of the server process into this directory. */
  profileDir?: string | undefined;
}

/** What the child reports once both servers listen. */
export interface ServerInfo {
  hypercastUrl: string;
  baselineUrl: string;
  /** A live bearer token, and the id of the (other) user every request fetches. */
  token: string;
  userId: number;
  /** e.g. `PostgreSQL 16.4, schema bench_1a2b3c` or `PGlite 0.5.14 in memory (PostgreSQL 17.5)`. */
  database: string;
}

export type ToChild = { type: "cpu"; id: number } | { type: "stop" };
export type FromChild =
  | { type: "ready"; info: ServerInfo }
  | { type: "cpu"; id: number; micros: number }
  | { type: "failed"; message: string };

export interface ServerProcess {
  readonly info: ServerInfo;
  /** User + system CPU time the server process has used so far, in microseconds. */
  cpuUsage(): Promise<number>;
  /** Closes both servers, drops the schema (PostgreSQL) and waits for the child to exit. */
  stop(): Promise<void>;
  /** Last resort: SIGKILL the child. */
  kill(): void;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const profile = options.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.profileDir}`];
  const child = fork(new URL("./servers.ts", import.meta.url), [JSON.stringify(options)], {
    execArgv: ["--import", "tsx", ...profile],
    // stdout (Hypercast's request log) to /dev/null, like a production log sink that keeps up.
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const info = await waitForReady(child, exited);

  let nextId = 0;
  const pending = new Map<number, (micros: number) => void>();
  child.on("message", (message: FromChild) => {
    if (message.type === "cpu") pending.get(message.id)?.(message.micros);
  });

  return {
    info,
    cpuUsage() {
      const id = nextId++;
      return new Promise<number>((resolve, reject) => {
        pending.set(id, (micros) => {
          pending.delete(id);
          resolve(micros);
        });
        exited.then(() => reject(new Error("the server process exited")), reject);
        child.send({ type: "cpu", id } satisfies ToChild);
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.send({ type: "stop" } satisfies ToChild);
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      if (code !== 0) throw new Error(`the server process exited with ${code}`);
    },
    kill() {
      child.kill("SIGKILL");
    },
  };
}

function waitForReady(child: ChildProcess, exited: Promise<number | null>): Promise<ServerInfo> {
  return new Promise<ServerInfo>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the server process did not start within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    child.on("message", (message: FromChild) => {
      if (message.type === "ready") {
        clearTimeout(timer);
        resolve(message.info);
      } else if (message.type === "failed") {
        clearTimeout(timer);
        reject(new Error(`the server process failed to start: ${message.message}`));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server process exited with ${code} before it was ready`));
    });
  });
}
