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
 * reply); (RSS at --total − RSS at --first) ÷ (--total − --first) is the
 * memory per joined socket, with no forced GC (what an operator's RSS graph shows). V8 grows its
 * young generation by tens of MiB once, when enough bytes survive its collections; whether that
 * step falls before or between the two counts moves the slope by about 2.5 KiB, so Hypercast's
 * young generation is read from its `/metrics` at both counts and the slope is also printed
 * without its growth. Medians over
 * rounds; a load run that was not valid (client core saturated, event loop lagging past 250 ms) withholds the
 * ratios and exits 3; a socket that failed to join fails the run (exit 1).
 *
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:joins
 *     DATABASE_URL=… npm run bench:joins -- --smoke      # 100 then 300 sockets, 1 round (CI)
 *     DATABASE_URL=… npm run bench:joins -- --presence   # the joins presence-tracked, in one room
 *     DATABASE_URL=… npm run bench:joins -- --profile DIR # a V8 CPU profile of each Hypercast process into DIR
 *     DATABASE_URL=… npm run bench:joins -- --perf DIR    # both servers' CPU per join in phase 2 by where it went (Linux perf)
 *     DATABASE_URL=… npm run bench:joins -- --node-flags="--max-semi-space-size=64" # both servers
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { LoadResult } from "../lib/load/types.ts";
import {
  createDatabase,
  createProcessGroup,
  migrateDatabase,
  startNode,
  stopNode,
  type Node,
  type OwnedDatabase,
} from "./cluster/processes.ts";
import { seedOverApi } from "./cluster/seed.ts";
import {
  machineLine,
  median,
  nodeCommand,
  pinning,
  printTable,
  procCpuSeconds,
  procRssBytes,
  startPinned,
  type PinnedServer,
  type Row,
} from "./ws/rounds.ts";
import { buildHypercast, compileEntry } from "./lib/compiled.ts";
import { describeNodeFlags, nodeFlags, positiveInt, stopAfter } from "./lib/options.ts";
import { printPerf, startPerf, withPerfFlag, type PerfRecording, type PerfWindow } from "./lib/perf.ts";

/** The targets of the performance work (README, Benchmarks). */
const TARGET_CPU_PER_JOIN_US = 100;
const TARGET_KIB_PER_SOCKET = 3;
const TARGET_IDLE_RSS_MIB = 100;

const { values: flags } = parseArgs({
  options: {
    first: { type: "string" },
    total: { type: "string" },
    rounds: { type: "string" },
    ramp: { type: "string" },
    settle: { type: "string" },
    "idle-rss-after": { type: "string" },
    smoke: { type: "boolean", default: false },
    presence: { type: "boolean", default: false },
    "database-url": { type: "string" },
    "max-seconds": { type: "string" },
    profile: { type: "string" },
    perf: { type: "string" },
    "node-flags": { type: "string" },
  },
});
const smoke = flags.smoke ?? false;
const FIRST = positiveInt("first", flags.first, smoke ? 100 : 5_000);
const TOTAL = positiveInt("total", flags.total, smoke ? 300 : 15_000);
const ROUNDS = positiveInt("rounds", flags.rounds, smoke ? 1 : 3);
const RAMP = positiveInt("ramp", flags.ramp, 2_000);
const PRESENCE = flags.presence ?? false;
const PROFILE_DIR = flags.profile;
const PERF_DIR = flags.perf;
const NODE_FLAGS = withPerfFlag(nodeFlags(flags["node-flags"]), PERF_DIR);
/** Phase 2 of each round, for `--perf`. */
const perfWindows: PerfWindow[] = [];
let perf: PerfRecording | undefined;
const IDLE_S = smoke ? 1 : 5;
/**
 * The load generator's event-loop bound, raised from its default of 100 ms: a connect storm lags the
 * client's loop in bursts, which delays its join timings but not what the server spends; the client
 * saturating its core still makes the run invalid.
 */
const MAX_LAG_MS = 250;
const SETTLE_S = positiveInt("settle", flags.settle, smoke ? 1 : 3);
/** Seconds with nothing sent to a server before its idle RSS is read (see the top of this file). */
const IDLE_RSS_AFTER_S = positiveInt("idle-rss-after", flags["idle-rss-after"], smoke ? 1 : 60);
const MAX_SECONDS = positiveInt(
  "max-seconds",
  flags["max-seconds"],
  ROUNDS * 2 * (110 + IDLE_RSS_AFTER_S + (2 * TOTAL) / RAMP) + 120,
);
if (TOTAL <= FIRST) throw new Error(`--total (${TOTAL}) must be more than --first (${FIRST})`);
const DATABASE_URL = flags["database-url"] ?? process.env["DATABASE_URL"] ?? "";
if (!/^postgres(ql)?:\/\/[^/]*(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\//.test(DATABASE_URL)) {
  console.error(
    "bench:joins measures Hypercast on PostgreSQL: set DATABASE_URL to a loopback PostgreSQL (127.x, localhost, [::1]); the benchmark creates and drops a database there",
  );
  process.exit(2);
}

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const pins = pinning();
const group = createProcessGroup();
let database: OwnedDatabase | undefined;
const running = new Set<{ stop(): Promise<void> }>();
process.on("exit", () => group.killAll());
const hardStop = stopAfter("bench:joins", MAX_SECONDS, () =>
  Promise.allSettled([...running].map((s) => s.stop())).then(() => database?.drop()),
);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A hypercast-load run in the background: resolves `joined(n)` when its progress line reports n joined. */
function startLoad(args: string[]) {
  const started = mkdtemp(join(tmpdir(), "bench-joins-"));
  let reached = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const finished = started.then(async (dir) => {
    const out = join(dir, "result.json");
    const [command, argv] = nodeCommand(pins.load, "lib/load/cli.ts", [...args, "--out", out]);
    const child = group.add(spawn(command, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] }));
    let buffer = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        const match = /joined ([\d,]+)/.exec(line);
        if (match === null) continue;
        reached = Math.max(reached, Number(match[1]!.replaceAll(",", "")));
        for (const w of waiters.filter((w) => reached >= w.n)) w.resolve();
      }
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      return { result: JSON.parse(await readFile(out, "utf8")) as LoadResult, code };
    } catch {
      throw new Error(`hypercast-load exited with ${code} and wrote no result`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  let ended = false;
  void finished.finally(() => (ended = true)).catch(() => undefined);
  return {
    finished,
    ended: () => ended,
    /** Resolves once n sockets have joined; rejects if the run ends first. */
    joined(n: number): Promise<void> {
      if (reached >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push({ n, resolve });
        void finished.then(
          () => reject(new Error(`hypercast-load ended with ${reached} of ${n} sockets joined`)),
          reject,
        );
      });
    },
  };
}

/**
 * A phase's CPU per join net of idle, in µs; NaN ("n/a") when the phase used under 0.2 s of CPU:
 * /proc counts CPU in 10 ms ticks, too coarse for a few hundred joins (the smoke run's size). At
 * 0.2 s a tick is 5 % of the figure; raw uWS's 5,000 joins of phase 1 take about 0.4 s.
 */
function perJoin(cpuSeconds: number, idleSeconds: number, joins: number): number {
  return cpuSeconds < 0.2 ? Number.NaN : ((cpuSeconds - idleSeconds) * 1e6) / joins;
}

interface Target {
  name: string;
  pid: number;
  url: string;
  topic: string;
  token: string;
  /**
   * The V8 young generation's committed bytes (Hypercast's `/metrics`); undefined for a server
   * that does not tell (raw uWS).
   */
  youngGenerationBytes?: () => Promise<number>;
  stop(): Promise<void>;
}

interface IdleRss {
  bootRssMiB: number;
  idleRssMiB: number;
}

/** RSS a few seconds after start, then after IDLE_RSS_AFTER_S seconds with nothing sent. */
async function idleRss(target: Target): Promise<IdleRss> {
  await sleep(SETTLE_S * 1000 + 2_000);
  const bootRssMiB = procRssBytes(target.pid) / 1048576;
  await sleep(IDLE_RSS_AFTER_S * 1000);
  return { bootRssMiB, idleRssMiB: procRssBytes(target.pid) / 1048576 };
}

interface Round extends IdleRss {
  cpuPerJoinUs: [number, number];
  idleCpuPercent: number;
  rssMiB: [number, number];
  kibPerSocket: number;
  /** NaN where the server does not tell. */
  youngMiB: [number, number];
  joinP99Ms: [number, number];
  valid: boolean;
  reasons: string[];
  busiestCore: number;
}

async function measure(target: Target, rss: IdleRss): Promise<Round> {
  await sleep(SETTLE_S * 1000 + 2_000);
  // What the server spends with nothing to do (timers, metrics, the dashboard feed), per second, so
  // that a phase's CPU counts what its joins cost, not the seconds it lasted.
  const idle0 = procCpuSeconds(target.pid);
  const idleT0 = performance.now();
  await sleep(IDLE_S * 1000);
  const idlePerMs = (procCpuSeconds(target.pid) - idle0) / (performance.now() - idleT0);
  const common = [
    ...["--url", target.url, "--topic", target.topic, "--param", `token=${target.token}`, "--ramp", String(RAMP)],
    ...["--max-lag-ms", String(MAX_LAG_MS)],
    // Audience joins unless --presence: the reference tracks nothing, and a tracked join's cost is
    // mostly the presence diffs it sends to everyone already in the room (bench:ws and the load
    // generator's presence scenario measure those).
    ...(PRESENCE ? [] : ["--join-payload", '{"presence":false}']),
  ];
  const cpu0 = procCpuSeconds(target.pid);
  const t0 = performance.now();
  // Phase 1 holds its sockets while phase 2 joins and is measured, with a margin.
  const hold = Math.ceil((TOTAL - FIRST) / Math.min(RAMP, 1_000)) + 4 * SETTLE_S + 20;
  const phase1 = startLoad(["connect", ...common, "--subscribers", String(FIRST), "--duration", String(hold)]);
  await phase1.joined(FIRST);
  await sleep(SETTLE_S * 1000);
  // Read before phase 2's CPU window opens (a scrape costs about a millisecond).
  const young1 = (await target.youngGenerationBytes?.()) ?? Number.NaN;
  const cpu1 = procCpuSeconds(target.pid);
  const t1 = performance.now();
  const from = process.hrtime.bigint();
  const rss1 = procRssBytes(target.pid);
  const more = TOTAL - FIRST;
  const phase2 = startLoad([
    "connect",
    ...common,
    "--subscribers",
    String(more),
    "--duration",
    String(2 * SETTLE_S + 2),
  ]);
  await phase2.joined(more);
  await sleep(SETTLE_S * 1000);
  const cpu2 = procCpuSeconds(target.pid);
  const t2 = performance.now();
  perfWindows.push({ target: target.name, pid: target.pid, from, to: process.hrtime.bigint(), work: more });
  const rss2 = procRssBytes(target.pid);
  const young2 = (await target.youngGenerationBytes?.()) ?? Number.NaN;
  if (phase1.ended()) throw new Error(`${target.name}: phase 1's sockets were gone before phase 2 was measured`);
  const [r1, r2] = await Promise.all([phase1.finished, phase2.finished]);
  for (const [r, n] of [
    [r1.result, FIRST],
    [r2.result, more],
  ] as const)
    if (r.connections.joined < n || r.connections.failed > 0)
      throw new Error(
        `${target.name}: ${r.connections.joined} of ${n} sockets joined, ${r.connections.failed} failed: ${JSON.stringify(r.errors)}`,
      );
  const results = [r1.result, r2.result];
  return {
    ...rss,
    cpuPerJoinUs: [
      perJoin(cpu1 - cpu0, idlePerMs * (t1 - t0), FIRST),
      perJoin(cpu2 - cpu1, idlePerMs * (t2 - t1), more),
    ],
    idleCpuPercent: idlePerMs * 1000 * 100,
    rssMiB: [rss1 / 1048576, rss2 / 1048576],
    kibPerSocket: (rss2 - rss1) / 1024 / more,
    youngMiB: [young1 / 1048576, young2 / 1048576],
    joinP99Ms: [r1.result.join_ms.p99, r2.result.join_ms.p99],
    valid: results.every((r) => r.valid),
    reasons: results.flatMap((r) => r.invalid_reasons),
    busiestCore: Math.max(...results.map((r) => r.client.max_core_fraction)),
  };
}

const ENV = {
  NODE_ENV: "production",
  LOG_LEVEL: "warn",
  PASSWORD_HASH_COST: "10",
  // One user holds every socket of a load test.
  SOCKETS_PER_USER: "1000000",
  RATE_LIMITS: "off",
};

async function startHypercast(databaseUrl: string): Promise<Target> {
  const node: Node = await startNode(group, {
    name: "hypercast",
    env: {
      ...ENV,
      DATABASE_URL: databaseUrl,
      SECRET_KEY_BASE: randomBytes(32).toString("hex"),
    },
    pin: pins.server,
    build: BUILD,
    nodeArgs: [...NODE_FLAGS, ...(PROFILE_DIR === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`])],
  });
  const seed = await seedOverApi(node.httpUrl, ["joins"]);
  return {
    name: "Hypercast",
    pid: node.pid,
    url: `${node.socketUrl}/socket`,
    topic: seed.topics["joins"]!,
    token: seed.socketToken,
    youngGenerationBytes: () => youngGenerationBytes(node.httpUrl),
    stop: () => stopNode(node, 10_000),
  };
}

/** The `new` space of prom-client's default `nodejs_heap_space_size_total_bytes`, from `/metrics`. */
async function youngGenerationBytes(httpUrl: string): Promise<number> {
  const response = await fetch(`${httpUrl}/metrics`);
  const text = await response.text();
  const line = /^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(text);
  if (!response.ok || line === null)
    throw new Error(`${httpUrl}/metrics: no young generation size (${response.status})`);
  return Number(line[1]);
}

/**
 * Hypercast's build and the reference compiled to plain JavaScript (lib/compiled.ts), so that
 * neither runs under a runtime TypeScript loader: tsx's loader alone adds tens of MiB to a process's RSS.
 */
const BUILD = `.bench/joins-${process.pid}`;
const REFERENCE = `${BUILD}/benchmarks/ws/raw-server.mjs`;

async function startReference(): Promise<Target> {
  const server: PinnedServer = await startPinned(pins.server, REFERENCE, {}, NODE_FLAGS);
  return {
    name: "raw uWS",
    pid: server.pid,
    url: `ws://127.0.0.1:${server.port}/socket`,
    topic: server.topic,
    token: server.token,
    stop: () => server.stop(),
  };
}

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
  // A build of its own (not dist/, which another run or test may be rebuilding meanwhile).
  buildHypercast(BUILD);
  await compileEntry(BUILD, "benchmarks/ws/raw-server.ts");
  database = await createDatabase(DATABASE_URL);
  await migrateDatabase(group, database.url);
  if (PERF_DIR !== undefined) {
    // perf samples the servers' core, so the servers must have one of their own (core 0).
    if (pins.server.length === 0) throw new Error(`--perf needs the servers pinned; ${pins.note}`);
    perf = await startPerf(0, PERF_DIR);
  }
  const rounds: Round[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++) {
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const db = database.url;
      const start = i === 0 ? () => startHypercast(db) : startReference;
      const rss = await onFreshTarget(start, idleRss);
      const done = await onFreshTarget(start, (t) => measure(t, rss));
      rounds[i]!.push(done);
      console.error(
        `round ${r + 1} ${["Hypercast", "raw uWS"][i]}: RSS ${done.bootRssMiB.toFixed(1)} MiB after start, ${done.idleRssMiB.toFixed(1)} MiB idle, ${done.cpuPerJoinUs.map((v) => v.toFixed(0)).join(" / ")} µs per join, ${done.kibPerSocket.toFixed(2)} KiB per socket, ${done.valid ? "valid" : `NOT valid: ${done.reasons.join("; ")}`}`,
      );
    }
  }
  const all = rounds.flat();
  const valid = all.every((r) => r.valid);
  const m = (pick: (r: Round) => number) => rounds.map((list) => median(list.map(pick)));
  const rows: Row[] = [
    { label: `RSS MiB ${SETTLE_S + 2} s after start`, values: m((r) => r.bootRssMiB), digits: 1, ratio: true },
    { label: `idle RSS MiB (${IDLE_RSS_AFTER_S} s later)`, values: m((r) => r.idleRssMiB), digits: 1, ratio: true },
    { label: "idle CPU % of a core", values: m((r) => r.idleCpuPercent), digits: 2, ratio: false },
    {
      label: `server CPU µs per join, 0 → ${FIRST.toLocaleString("en-US")}`,
      values: m((r) => r.cpuPerJoinUs[0]),
      digits: 1,
      ratio: true,
    },
    {
      label: `server CPU µs per join, → ${TOTAL.toLocaleString("en-US")}`,
      values: m((r) => r.cpuPerJoinUs[1]),
      digits: 1,
      ratio: true,
    },
    { label: "join p99 ms, phase 1", values: m((r) => r.joinP99Ms[0]), digits: 1, ratio: true },
    { label: "join p99 ms, phase 2", values: m((r) => r.joinP99Ms[1]), digits: 1, ratio: true },
    {
      label: `RSS MiB at ${FIRST.toLocaleString("en-US")} sockets`,
      values: m((r) => r.rssMiB[0]),
      digits: 1,
      ratio: true,
    },
    {
      label: `RSS MiB at ${TOTAL.toLocaleString("en-US")} sockets`,
      values: m((r) => r.rssMiB[1]),
      digits: 1,
      ratio: true,
    },
    { label: "RSS KiB per joined socket (slope)", values: m((r) => r.kibPerSocket), digits: 2, ratio: true },
    {
      label: `V8 young generation MiB at ${FIRST.toLocaleString("en-US")} sockets`,
      values: m((r) => r.youngMiB[0]),
      digits: 1,
      ratio: false,
    },
    {
      label: `V8 young generation MiB at ${TOTAL.toLocaleString("en-US")} sockets`,
      values: m((r) => r.youngMiB[1]),
      digits: 1,
      ratio: false,
    },
    {
      label: "RSS KiB per joined socket, the young generation's growth aside",
      values: m((r) => ((r.rssMiB[1] - r.rssMiB[0] - (r.youngMiB[1] - r.youngMiB[0])) * 1024) / (TOTAL - FIRST)),
      digits: 2,
      ratio: false,
    },
    { label: "client busiest core %", values: m((r) => r.busiestCore * 100), digits: 0, ratio: false },
  ];
  console.log(`\njoins benchmark — ${machineLine()}`);
  console.log(
    `${pins.note}; ${describeNodeFlags(NODE_FLAGS)}; Hypercast compiled on PostgreSQL (database ${database.name}, dropped afterwards); ${FIRST} then ${TOTAL} sockets into one topic at ${RAMP}/s, ${PRESENCE ? "presence-tracked" : "as audience (no presence)"}; CPU per join net of each server's idle CPU; client lag bound ${MAX_LAG_MS} ms; ${ROUNDS} round(s), medians\n`,
  );
  printTable(["Hypercast", "raw uWS"], rows, valid);
  if (perf !== undefined)
    printPerf(await perf.stop(perfWindows), ["Hypercast", "raw uWS"], "join", "phase 2 of every round, idle included");
  if (!valid) {
    console.error(`INVALID: no ratio and no verdict: ${[...new Set(all.flatMap((r) => r.reasons))].join("; ")}`);
    exitCode = 3;
  } else {
    const [cpu1, cpu2, idle, slope] = [
      m((r) => r.cpuPerJoinUs[0])[0]!,
      m((r) => r.cpuPerJoinUs[1])[0]!,
      m((r) => r.idleRssMiB)[0]!,
      m((r) => r.kibPerSocket)[0]!,
    ];
    const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
    console.log(`\ntargets (README): Hypercast's`);
    console.log(
      Number.isFinite(cpu1) && Number.isFinite(cpu2)
        ? `  server CPU per join ≤ ${TARGET_CPU_PER_JOIN_US} µs: ${cpu1.toFixed(1)} / ${cpu2.toFixed(1)} µs ${verdict(Math.max(cpu1, cpu2) <= TARGET_CPU_PER_JOIN_US)}`
        : `  server CPU per join ≤ ${TARGET_CPU_PER_JOIN_US} µs: not measurable (a phase used under 0.2 s of CPU: too few joins)`,
    );
    console.log(
      `  RSS per joined socket ≤ ${TARGET_KIB_PER_SOCKET} KiB: ${slope.toFixed(2)} KiB ${verdict(slope <= TARGET_KIB_PER_SOCKET)}`,
    );
    console.log(
      `  idle RSS ≤ ${TARGET_IDLE_RSS_MIB} MiB: ${idle.toFixed(1)} MiB after ${IDLE_RSS_AFTER_S} s idle ${verdict(idle <= TARGET_IDLE_RSS_MIB)}`,
    );
  }
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
