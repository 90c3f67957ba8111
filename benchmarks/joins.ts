/**
 * `npm run bench:joins` — what a joined socket costs the server: CPU per join and RSS per joined
 * socket, and the idle RSS of a fresh process. Hypercast runs as in production: the compiled build
 * (`node <build>/lib/bin/cli.js serve`, from an `npm run build` of its own) on a fresh PostgreSQL
 * database, with no runtime TypeScript loader and no npm wrapper. The reference is the bare
 * uWebSockets.js server of bench:ws (./ws/raw-server.ts, its own process, none of Hypercast's code),
 * compiled to plain JavaScript alike; `--node-flags` gives node flags to both alike (none by
 * default). Both are pinned alike (`taskset -c 0`) and loaded by the
 * project's own load generator (`hypercast-load connect`) on the other core.
 *
 * Sockets join as audience (`{"presence": false}`: authorised, subscribed, not tracked), since the
 * reference tracks nothing; `--presence` makes Hypercast's joins tracked.
 *
 * Each round starts each server twice. The first process is left alone: its RSS is read a few seconds
 * after start (after seeding, for Hypercast) and again after --idle-rss-after seconds (60) with nothing
 * sent to it. The second reading is the idle RSS the target is about: V8 keeps the young generation its
 * boot grew (up to 32 MiB here) until its memory reducer finds the process idle, which took 20–35 s on
 * this machine, and then gives it back. The joins run on a second fresh process, started as before, so
 * that the young generation growing back is not counted as memory per socket. On that process:
 *   phase 1: one load process connects and joins --first sockets (5,000) into one topic and holds them;
 *   phase 2: a second load process joins the rest, up to --total (15,000), into the same topic.
 * Server CPU over a phase, less what the server spends idle over as long (measured before phase 1),
 * ÷ the joins in it is the CPU per join (the upgrade, the token check, the join's authorisation and
 * reply), phase 2's also split into user space and the kernel; (RSS at --total − RSS at --first) ÷
 * (--total − --first) is the memory per joined socket, with no forced GC (what an operator's RSS
 * graph shows). V8 grows its young generation by tens of MiB once, when enough bytes survive its
 * collections; whether that step falls before or between the two counts moves the slope by about 2.5
 * KiB, so Hypercast's young generation is read from its `/metrics` at both counts and the slope is
 * also printed without its growth. Medians over rounds; a load run that was not valid (client core
 * saturated, event loop lagging past 250 ms) withholds the ratios and exits 3; a socket that failed
 * to join fails the run (exit 1).
 *
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:joins
 *     DATABASE_URL=… npm run bench:joins -- --smoke      # 100 then 300 sockets, 1 round (CI)
 *     DATABASE_URL=… npm run bench:joins -- --presence   # the joins presence-tracked, in one room
 *     DATABASE_URL=… npm run bench:joins -- --profile DIR # a V8 CPU profile of each Hypercast process into DIR
 *     DATABASE_URL=… npm run bench:joins -- --perf DIR    # both servers' CPU per join in phase 2 by where it went (Linux perf)
 *     DATABASE_URL=… npm run bench:joins -- --node-flags="--max-semi-space-size=64" # both servers
 *
 * This file runs the rounds and cleans up on every exit path; the rest is in ./joins/: the command
 * line (options.ts), the two servers (targets.ts), a round's readings (measure.ts, with the load runs
 * of background-load.ts) and what is printed (report.ts).
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createDatabase, createProcessGroup, migrateDatabase, type OwnedDatabase } from "./cluster/processes.ts";
import { stopAfter } from "./lib/options.ts";
import { printPerf, startPerf, type PerfRecording, type PerfWindow } from "./lib/perf.ts";
import { pinning } from "./ws/rounds.ts";
import { idleRss, measure, type Measurement, type Round } from "./joins/measure.ts";
import { readOptions } from "./joins/options.ts";
import { COLUMNS, printResults, printVerdict } from "./joins/report.ts";
import { compileTargets, startHypercast, startReference, type Servers, type Target } from "./joins/targets.ts";

const options = readOptions();
/** Phase 2 of each round, for `--perf`. */
const perfWindows: PerfWindow[] = [];
let perf: PerfRecording | undefined;

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const pins = pinning();
const group = createProcessGroup();
let database: OwnedDatabase | undefined;
const running = new Set<{ stop(): Promise<void> }>();
process.on("exit", () => group.killAll());
const hardStop = stopAfter("bench:joins", options.maxSeconds, () =>
  Promise.allSettled([...running].map((s) => s.stop())).then(() => database?.drop()),
);

/**
 * Hypercast's build and the reference compiled to plain JavaScript (./joins/targets.ts), in a
 * directory of this run's own (not dist/, which another run or test may be rebuilding meanwhile).
 */
const BUILD = `.bench/joins-${process.pid}`;
const servers: Servers = {
  group,
  pins,
  build: BUILD,
  nodeFlags: options.nodeFlags,
  profileDir: options.profileDir,
};

/** Starts a target, runs `body` on it and stops it, whatever happens. */
async function onFreshTarget<T>(start: () => Promise<Target>, body: (target: Target) => Promise<T>): Promise<T> {
  const target = await start();
  running.add(target);
  try {
    return await body(target);
  } finally {
    await target.stop();
    running.delete(target);
  }
}

let exitCode = 0;
try {
  await compileTargets(BUILD);
  database = await createDatabase(options.databaseUrl);
  await migrateDatabase(group, database.url);
  if (options.perfDir !== undefined) {
    // A join's breakdown is read as the servers' alone: they must have a core of their own (core 0).
    if (pins.server.length === 0) throw new Error(`--perf needs the servers pinned; ${pins.note}`);
    perf = await startPerf(options.perfDir);
  }
  const measurement: Measurement = { options, pins, group, perfWindows };
  const rounds: Round[][] = [[], []];
  for (let r = 0; r < options.rounds; r++) {
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const db = database.url;
      const start = i === 0 ? () => startHypercast(servers, db) : () => startReference(servers);
      const rss = await onFreshTarget(start, (t) => idleRss(t, options));
      const done = await onFreshTarget(start, (t) => measure(t, rss, measurement));
      rounds[i]!.push(done);
      console.error(
        `round ${r + 1} ${COLUMNS[i]}: RSS ${done.bootRssMiB.toFixed(1)} MiB after start, ${done.idleRssMiB.toFixed(1)} MiB idle, ${done.cpuPerJoinUs.map((v) => v.toFixed(0)).join(" / ")} µs per join, ${done.kibPerSocket.toFixed(2)} KiB per socket, ${done.valid ? "valid" : `NOT valid: ${done.reasons.join("; ")}`}`,
      );
    }
  }
  printResults(rounds, { options, pinsNote: pins.note, databaseName: database.name });
  if (perf !== undefined)
    printPerf(await perf.stop(perfWindows), COLUMNS, "join", "phase 2 of every round, idle included");
  exitCode = printVerdict(rounds, options);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  exitCode = 1;
} finally {
  perf?.cancel();
  await Promise.allSettled([...running].map((s) => s.stop()));
  group.killAll();
  await database?.drop().catch((error: unknown) => console.error("dropping the benchmark database:", error));
  await rm(join(ROOT, BUILD), { recursive: true, force: true });
  clearTimeout(hardStop);
}
process.exit(exitCode);
