/**
 * The benchmark's processes, seen from the orchestrator: forks an entry (a TypeScript one under tsx),
 * pins it and all its threads to one core with `taskset`, waits for its `ready` message, and
 * reads its CPU time from the kernel (`/proc/<pid>/stat`), so neither the server under test, the
 * references nor the load generator measure themselves. Linux only (taskset, /proc).
 *
 *     const server = await startProcess(new URL("./hypercast-server.ts", import.meta.url), { core: 0, args: [] })
 *     const before = server.cpuMicros()
 *     await server.stop()
 */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

export interface ProcessOptions {
  /** The core to pin the process (every thread) to; undefined leaves it to the scheduler. */
  core: number | undefined;
  /** Arguments after the entry (the children read one JSON argument). */
  args: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Keep the child's stdout (default: /dev/null, e.g. Hypercast's request log). */
  stdout?: "ignore" | "inherit";
  /** Write a V8 CPU profile of the child into this directory when it exits. */
  profileDir?: string | undefined;
  /** The profile's file name in `profileDir` (default: node's, by date and pid). */
  profileName?: string;
  /** Flags for node itself, before the entry (`--node-flags`, options.ts). */
  nodeFlags?: readonly string[];
}

/** A child's first message: it is listening (or it failed to start). */
export type Ready<T> = { type: "ready"; info: T } | { type: "failed"; message: string };

export interface BenchProcess<T> {
  readonly pid: number;
  readonly info: T;
  readonly child: ChildProcess;
  /** User + system CPU time of the whole process (all threads) so far, in microseconds. */
  cpuMicros(): number;
  /** Asks the child to stop (`{type: "stop"}`), waits for it to exit; SIGKILL after the bound. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 15_000;

export async function startProcess<T>(entry: URL, options: ProcessOptions): Promise<BenchProcess<T>> {
  const profile =
    options.profileDir === undefined
      ? []
      : [
          "--cpu-prof",
          `--cpu-prof-dir=${options.profileDir}`,
          ...(options.profileName === undefined ? [] : [`--cpu-prof-name=${options.profileName}`]),
        ];
  // A TypeScript entry runs under tsx; a compiled one (compiled.ts) under plain node.
  const loader = entry.pathname.endsWith(".ts") ? ["--import", "tsx"] : [];
  const child = fork(entry, options.args, {
    execArgv: [...loader, ...(options.nodeFlags ?? []), ...profile],
    env: { ...process.env, ...options.env },
    stdio: ["ignore", options.stdout ?? "ignore", "inherit", "ipc"],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${entry.pathname}`);
  if (options.core !== undefined) pin(pid, options.core);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const info = await waitForReady<T>(child, exited, entry);
  return {
    pid,
    info,
    child,
    cpuMicros: () => procCpuMicros(pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ type: "stop" });
      else child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      if (code !== 0) throw new Error(`${entry.pathname} exited with ${code}`);
    },
  };
}

/** Pins every thread of `pid` (threads created later inherit it from their creator). */
export function pin(pid: number, core: number): void {
  execFileSync("taskset", ["-a", "-p", "-c", String(core), String(pid)], { stdio: "ignore" });
}

const TICK_MICROS = 1_000_000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim() || "100");

/** utime + stime of a process (all its threads) from /proc, in microseconds; NaN once it is gone. */
export function procCpuMicros(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return Number.NaN;
  }
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_MICROS;
}

function waitForReady<T>(child: ChildProcess, exited: Promise<number | null>, entry: URL): Promise<T> {
  const name = entry.pathname.split("/").pop();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not start within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    child.on("message", (message: Ready<T>) => {
      clearTimeout(timer);
      if (message.type === "ready") resolve(message.info);
      else reject(new Error(`${name} failed to start: ${message.message}`));
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready`));
    });
  });
}

/**
 * The child side: reports `info` as ready, runs `stop` when told (or when the parent goes away),
 * then lets the process end. A failure is reported and the process exits 1.
 *
 *     serveUntilStopped(async () => ({ info: { url }, stop: () => server.close() }))
 */
export function serveUntilStopped<T>(start: () => Promise<{ info: T; stop: () => Promise<void> }>): void {
  let stopping: Promise<void> | undefined;
  const fail = (error: unknown) => {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (process.connected) {
      process.send?.({ type: "failed", message } satisfies Ready<T>);
      process.disconnect?.();
    }
    process.stderr.write(`${process.argv[1]}: ${message}\n`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 1000).unref(); // an open pool must not keep a broken child alive
  };
  start().then(({ info, stop }) => {
    const shutdown = () => {
      stopping ??= stop().then(() => {
        if (process.connected) process.disconnect?.();
      }, fail);
    };
    process.on("message", (message: { type?: string }) => {
      if (message.type === "stop") shutdown();
    });
    process.once("disconnect", shutdown);
    process.once("SIGTERM", shutdown);
    process.send?.({ type: "ready", info } satisfies Ready<T>);
  }, fail);
}
