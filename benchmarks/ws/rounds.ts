/**
 * What `bench:ws`, `bench:cluster` and `bench:joins` share: the project's own load generator
 * (`hypercast-load`, lib/load) run as a separate, CPU-pinned process against a target, with its JSON
 * result read back (and its progress lines, for a caller that follows them); CPU pinning of servers and load; per-process CPU from /proc; medians; and the side-by-side table
 * with a ratio column that is withheld when a round was not valid.
 *
 *     const pins = pinning()   // { server: ["taskset","-c","0"], load: ["taskset","-c","1"] } on 2+ cores
 *     const result = await runLoadTool(pins, ["fanout", "--url", url, "--topic", t, …])
 *     printTable(["Hypercast", "raw uWS"], rows, { ratioValid: true })
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { LoadResult } from "../../lib/load/types.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface Pins {
  /** Command prefix for server processes (taskset -c 0), or [] when pinning is impossible. */
  server: string[];
  /** Command prefix for the load generator (taskset -c 1-N). */
  load: string[];
  /** Cores the load may use. */
  loadCores: number;
  note: string;
}

export function pinning(): Pins {
  const cores = availableParallelism();
  const taskset = spawnSync("taskset", ["-V"], { stdio: "ignore" }).status === 0;
  if (!taskset || cores < 2) {
    return {
      server: [],
      load: [],
      loadCores: cores,
      note: `not pinned (${taskset ? `${cores} core` : "no taskset"}): servers and load share the CPU`,
    };
  }
  const loadSet = cores === 2 ? "1" : `1-${cores - 1}`;
  return {
    server: ["taskset", "-c", "0"],
    load: ["taskset", "-c", loadSet],
    loadCores: cores - 1,
    note: `servers pinned to core 0, load to core(s) ${loadSet}`,
  };
}

/** `node --import tsx <file>` behind the pin prefix, from the repository root; plain `node <file>` for JavaScript. */
export function nodeCommand(
  pin: string[],
  file: string,
  args: string[] = [],
  nodeFlags: readonly string[] = [],
): [string, string[]] {
  const loader = /\.m?js$/.test(file) ? [] : ["--import", "tsx"];
  const command = [...pin, process.execPath, ...nodeFlags, ...loader, file, ...args];
  return [command[0]!, command.slice(1)];
}

export interface LoadToolOptions {
  /** Each line of the run's progress (its stdout), as it is printed; without it the run is `--quiet`. */
  onLine?: (line: string) => void;
  /** The child, once spawned (e.g. to add it to a process group). */
  onSpawn?: (child: ChildProcess) => void;
}

/** Runs hypercast-load (pinned), returns its JSON result and exit code; its stderr goes to ours. */
export async function runLoadTool(
  pins: Pins,
  args: string[],
  options: LoadToolOptions = {},
): Promise<{ result: LoadResult; code: number | null }> {
  const dir = await mkdtemp(join(tmpdir(), "bench-load-"));
  try {
    const out = join(dir, "result.json");
    const { onLine, onSpawn } = options;
    const quiet = onLine === undefined ? ["--quiet"] : [];
    const [command, argv] = nodeCommand(pins.load, "lib/load/cli.ts", [...args, "--out", out, ...quiet]);
    const stdout = onLine === undefined ? "ignore" : "pipe";
    const child = spawn(command, argv, { cwd: ROOT, stdio: ["ignore", stdout, "inherit"] });
    onSpawn?.(child);
    if (onLine !== undefined) {
      let buffer = "";
      child.stdout!.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split("\n");
        buffer = lines.pop()!;
        for (const line of lines) onLine(line);
      });
    }
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    let text: string;
    try {
      text = await readFile(out, "utf8");
    } catch {
      throw new Error(`hypercast-load exited with ${code} and wrote no result`);
    }
    return { result: JSON.parse(text) as LoadResult, code };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number): number {
  const { user, system } = procCpuTimes(pid);
  return user + system;
}

/** CPU seconds a process has used in user space and in the kernel on its behalf, from /proc/<pid>/stat. */
export function procCpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/** Resident set size in bytes, from /proc/<pid>/status. */
export function procRssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match === null ? Number.NaN : Number(match[1]) * 1024;
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Row {
  label: string;
  values: number[];
  digits: number;
  /** Ratio of the first column over the second (omitted for counts). */
  ratio: boolean;
}

const f = (n: number, digits: number) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "n/a";

/** The side-by-side table; without `valid`, the ratio column says why there is no ratio. */
export function printTable(columns: string[], rows: Row[], valid: boolean): void {
  const width = Math.max(...rows.map((r) => r.label.length)) + 2;
  console.log("".padEnd(width) + columns.map((c) => c.padStart(16)).join("") + "ratio".padStart(10));
  for (const row of rows) {
    const ratio = !row.ratio
      ? ""
      : !valid
        ? "invalid"
        : Number.isFinite(row.values[0]! / row.values[1]!)
          ? `${(row.values[0]! / row.values[1]!).toFixed(2)}×`
          : "";
    console.log(
      row.label.padEnd(width) + row.values.map((v) => f(v, row.digits).padStart(16)).join("") + ratio.padStart(10),
    );
  }
}

export function machineLine(): string {
  return `${new Date().toISOString()} — Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`;
}

export interface PinnedServer {
  pid: number;
  port: number;
  token: string;
  topic: string;
  stop(): Promise<void>;
}

/** Starts a server script (pinned) that prints a `{"ready":true,…}` line; SIGKILLed if SIGTERM does not end it. */
export async function startPinned(
  pin: string[],
  file: string,
  env: Record<string, string> = {},
  nodeFlags: readonly string[] = [],
): Promise<PinnedServer> {
  const [command, argv] = nodeCommand(pin, file, [], nodeFlags);
  const child = spawn(command, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const kill = () => child.kill("SIGKILL");
  process.on("exit", kill);
  child.once("exit", () => process.off("exit", kill));
  const ready = await new Promise<{ port: number; token: string; topic: string }>((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => reject(new Error(`${file} did not start within 60 s`)), 60_000);
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      for (const line of buffer.split("\n")) {
        if (!line.startsWith('{"ready"')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as { port: number; token: string; topic: string });
      }
    });
    child.once("exit", (code) => reject(new Error(`${file} exited with ${code} before it was ready`)));
  });
  return {
    pid: child.pid!,
    ...ready,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * A fan-out benchmark's verdict on its rounds, printed to stderr: 1 (FAIL) when any round lost or
 * duplicated a delivery, 3 (INVALID: no ratio) when any load run was not valid, else 0.
 */
export function fanoutVerdict(results: LoadResult[], valid: boolean): 0 | 1 | 3 {
  const lossy = results.filter((r) => r.deliveries.missing > 0 || r.deliveries.duplicates > 0);
  if (lossy.length > 0) {
    console.error(
      `FAIL: ${lossy.length} round(s) lost or duplicated deliveries (missing ${lossy.map((r) => r.deliveries.missing).join(", ")}; duplicates ${lossy.map((r) => r.deliveries.duplicates).join(", ")})`,
    );
    for (const r of lossy)
      console.error(
        `  errors of a lossy round: ${JSON.stringify(r.errors)}; ${r.connections.closed} sockets closed by the server`,
      );
    return 1;
  }
  if (!valid) {
    console.error(`INVALID: no ratio is given: ${[...new Set(results.flatMap((r) => r.invalid_reasons))].join("; ")}`);
    return 3;
  }
  return 0;
}
