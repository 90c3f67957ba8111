/**
 * Where a server's CPU goes, from Linux `perf`, for the benchmarks' `--perf DIR`. A V8 CPU profile
 * (`--profile`) sees JavaScript only and counts the native code it calls (uWebSockets.js, OpenSSL,
 * malloc, the kernel's TCP) as "(program)"; `perf` samples the whole process, its threads and the
 * kernel included. Every server runs with `--perf-basic-prof`, so that perf can name JavaScript
 * functions; `perf record` samples every core, on the monotonic clock that `process.hrtime`
 * reads, and each sample is then given to the target whose process and time window it falls in.
 * Every core, not only the servers': a server starts on any core and is pinned after, and perf
 * records a process's mappings (its binary, V8's code space) only from the cores it samples, so
 * a server whose start it missed had its native code and part of its JavaScript go unnamed.
 *
 * A sample goes to the first of: garbage collection (V8's heap frames anywhere on its stack), a
 * system call, the JavaScript package its innermost named JavaScript frame belongs to (a package
 * under node_modules, a `node:` module, or the server's own code), else the native library it was
 * in. Figures are CPU µs per request (or per join): the samples' periods over the work done.
 * DIR/functions.txt lists the same samples by the innermost JavaScript function on their stacks.
 *
 *     const perf = await startPerf(dir)
 *     windows.push({ target: "v2", pid, from: process.hrtime.bigint(), to, work: requests })
 *     const breakdown = await perf.stop(windows)   // Map target → Map category → µs per unit of work
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { join } from "node:path";

export interface PerfWindow {
  target: string;
  pid: number;
  /** `process.hrtime.bigint()` at the window's start and end. */
  from: bigint;
  to: bigint;
  /** Requests or joins done in the window. */
  work: number;
}

/** Per target, µs of CPU per unit of work by category (or by function). */
export type PerfBreakdown = Map<string, Map<string, number>>;

export interface PerfAttribution {
  categories: PerfBreakdown;
  /** By the innermost JavaScript function on each sample's stack (what it called included). */
  functions: PerfBreakdown;
}

export interface PerfRecording {
  /** Stops recording and attributes the samples to the windows. */
  stop(windows: readonly PerfWindow[]): Promise<PerfBreakdown>;
  /** Stops recording, if it still runs (a run that failed midway). */
  cancel(): void;
}

/**
 * The node flags for every server: `flags`, and with `--perf DIR` the flag that has node write the
 * maps perf names JavaScript frames from.
 */
export function withPerfFlag(flags: readonly string[], perfDir: string | undefined): string[] {
  return perfDir === undefined ? [...flags] : [...flags, "--perf-basic-prof"];
}

const FREQUENCY_HZ = 499;
const GC = /Heap::|Scavenge|MarkCompact|ConcurrentMarking|Sweeper|MinorMark|IncrementalMarking|GCTracer/;
const SYSCALL = /entry_SYSCALL_64/;
/** A frame from a perf map: `JS:*name file:///…/path.js:12:3` (`*` optimised, `^` baseline, `~` interpreted). */
const JS_FRAME = /JS:\S?\S* (\S+?):\d+:\d+/;
/** The same frame's function name and place (`respond file:///…/render.js:12:24`). */
const JS_FUNCTION = /JS:[*^~]?(\S*) (\S+:\d+:\d+)/;
const SAMPLE_HEADER = /^\s*(\d+)\s+(\d+)\.(\d+):\s+(\d+)/;

/** Starts `perf record` into DIR/perf.data; throws when perf cannot run here. */
export async function startPerf(dir: string): Promise<PerfRecording> {
  const probe = spawnSync("perf", ["--version"], { encoding: "utf8" });
  if (probe.status !== 0) throw new Error("--perf needs Linux perf on the PATH (Debian: apt-get install linux-perf)");
  await mkdir(dir, { recursive: true });
  const data = join(dir, "perf.data");
  const args = ["record", "-a", "-F", String(FREQUENCY_HZ), "-g", "-k", "CLOCK_MONOTONIC"];
  const recorder = spawn("perf", [...args, "-o", data], { stdio: ["ignore", "ignore", "pipe"] });
  let errors = "";
  recorder.stderr?.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  // perf record ends on SIGINT by writing its data and exiting 0, or by the signal itself.
  const exited = new Promise<number | string | null>((resolve) =>
    recorder.once("exit", (code, signal) => resolve(signal === "SIGINT" ? 0 : (code ?? signal))),
  );
  // perf opens its events before it writes anything; a recorder that cannot sample exits at once.
  const early = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve("running"), 1000))]);
  if (early !== "running") throw new Error(`perf record exited (${String(early)}): ${errors.trim()}`);
  return {
    cancel() {
      if (recorder.exitCode === null && recorder.signalCode === null) recorder.kill("SIGINT");
    },
    async stop(windows) {
      recorder.kill("SIGINT");
      const code = await exited;
      if (code !== 0) throw new Error(`perf record exited with ${code}: ${errors.trim()}`);
      const script = spawn("perf", ["script", "-i", data, "-F", "pid,time,period,ip,sym,dso"], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      const done = new Promise<number | null>((resolve) => script.once("exit", (status) => resolve(status)));
      const { categories, functions } = await attribute(script.stdout, windows);
      if ((await done) !== 0) throw new Error(`perf script could not read ${data}`);
      // The servers' perf maps (/tmp/perf-PID.map), which name their JavaScript, were read: what
      // they name is kept in functions.txt, and perf.data stays for `perf report` on native code.
      for (const pid of new Set(windows.map((w) => w.pid))) await rm(`/tmp/perf-${pid}.map`, { force: true });
      await writeFile(join(dir, "functions.txt"), listFunctions(functions));
      return categories;
    },
  };
}

/** Reads `perf script` output and gives each sample to its window's target, its category and its function. */
export async function attribute(
  input: NodeJS.ReadableStream,
  windows: readonly PerfWindow[],
): Promise<PerfAttribution> {
  const nanos = new Map<string, Map<string, number>>();
  const byFunction = new Map<string, Map<string, number>>();
  const add = (totals: Map<string, Map<string, number>>, target: string, key: string) => {
    const perTarget = totals.get(target) ?? new Map<string, number>();
    totals.set(target, perTarget);
    perTarget.set(key, (perTarget.get(key) ?? 0) + period);
  };
  let window: PerfWindow | undefined;
  let period = 0;
  let stack: string[] = [];
  const finish = () => {
    if (window === undefined) return;
    add(nanos, window.target, categorise(stack));
    const innermost = stack.map((frame) => JS_FUNCTION.exec(frame)).find((match) => match !== null);
    add(
      byFunction,
      window.target,
      innermost == null ? "(no JavaScript on the stack)" : `${innermost[1]} ${innermost[2]}`,
    );
    window = undefined;
  };
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    const header = SAMPLE_HEADER.exec(line);
    if (header !== null) {
      finish();
      const pid = Number(header[1]);
      // perf prints microseconds: seconds and six digits.
      const at = BigInt(header[2]!) * 1_000_000_000n + BigInt(header[3]!.padEnd(9, "0"));
      window = windows.find((w) => w.pid === pid && w.from <= at && at < w.to);
      period = Number(header[4]);
      stack = [];
    } else if (window !== undefined && line.trim() !== "") {
      stack.push(line);
    }
  }
  finish();
  const work = new Map<string, number>();
  for (const w of windows) work.set(w.target, (work.get(w.target) ?? 0) + w.work);
  const perUnit = (totals: Map<string, Map<string, number>>): PerfBreakdown =>
    new Map(
      [...totals].map(([target, keys]) => {
        const units = work.get(target) ?? 0;
        return [target, new Map([...keys].map(([key, ns]) => [key, ns / 1000 / units]))];
      }),
    );
  return { categories: perUnit(nanos), functions: perUnit(byFunction) };
}

/** functions.txt: each target's functions, the costliest first, down to 0.1 µs per unit. */
function listFunctions(functions: PerfBreakdown): string {
  return [...functions]
    .map(([target, names]) => {
      const rows = [...names].sort((a, b) => b[1] - a[1]).filter(([, micros]) => micros >= 0.1);
      return [
        `${target} (CPU µs per unit of work)`,
        ...rows.map(([name, micros]) => `${micros.toFixed(1).padStart(8)}  ${name}`),
      ].join("\n");
    })
    .join("\n\n")
    .concat("\n");
}

/** A sample's category from its stack (innermost frame first). */
export function categorise(stack: readonly string[]): string {
  if (stack.some((frame) => GC.test(frame))) return "garbage collection";
  if (stack.some((frame) => SYSCALL.test(frame))) return "system calls";
  for (const frame of stack) {
    const js = JS_FRAME.exec(frame);
    if (js !== null) return `js: ${packageOf(js[1]!)}`;
  }
  const library = /\(([^()]*)\)\s*$/.exec(stack[0] ?? "")?.[1] ?? "unknown";
  return `native: ${library.split("/").pop()}`;
}

/** `…/node_modules/@koa/router/dist/x.js` → `@koa/router`; `node:internal/streams/readable` → `node:internal/streams`; our code → `server`. */
function packageOf(file: string): string {
  const modules = file.lastIndexOf("node_modules/");
  if (modules !== -1) {
    const [scope, name] = file.slice(modules + "node_modules/".length).split("/");
    return scope!.startsWith("@") ? `${scope}/${name}` : scope!;
  }
  if (file.startsWith("node:"))
    return file
      .split("/")
      .slice(0, file.startsWith("node:internal/") ? 2 : 1)
      .join("/");
  return "server";
}

/** Prints the breakdown: one row per category (the largest first), one column per target. */
export function printPerf(
  breakdown: PerfBreakdown,
  targets: readonly string[],
  unit: string,
  over: string,
  rows = 14,
): void {
  const total = (target: string) => [...(breakdown.get(target)?.values() ?? [])].reduce((a, b) => a + b, 0);
  const categories = new Map<string, number>();
  for (const target of targets)
    for (const [name, micros] of breakdown.get(target) ?? [])
      categories.set(name, Math.max(categories.get(name) ?? 0, micros));
  const ranked = [...categories].sort((a, b) => b[1] - a[1]).map(([name]) => name);
  const shown = ranked.slice(0, rows);
  const cell = (value: number) => (Number.isFinite(value) ? value.toFixed(1) : "-").padStart(12);
  console.log("");
  console.log(`perf: server CPU µs per ${unit}, by where each sample was (${over})`);
  console.log(`${"".padEnd(34)}${targets.map((t) => t.padStart(12)).join("")}`);
  console.log(`${"all".padEnd(34)}${targets.map((t) => cell(total(t))).join("")}`);
  for (const name of shown)
    console.log(
      `${name.slice(0, 33).padEnd(34)}${targets.map((t) => cell(breakdown.get(t)?.get(name) ?? 0)).join("")}`,
    );
  const rest = ranked.slice(rows);
  if (rest.length > 0) {
    const sum = (t: string) => rest.reduce((a, name) => a + (breakdown.get(t)?.get(name) ?? 0), 0);
    console.log(`${`${rest.length} more`.padEnd(34)}${targets.map((t) => cell(sum(t))).join("")}`);
  }
}
