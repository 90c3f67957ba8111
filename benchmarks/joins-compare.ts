/**
 * bench:joins:compare — does a change make a join cheaper? Two builds of Hypercast (a git ref, by
 * default HEAD, and the working tree) run **at the same time**, both pinned to core 0, on one
 * PostgreSQL database with one SECRET_KEY_BASE; one `hypercast-load connect` run on core 1 spreads
 * its sockets over both, alternately (socket g goes to the g-th URL modulo two), so both servers
 * take their joins in the same seconds, under the same load from the rest of the machine. Each
 * server's CPU over those seconds (user space and kernel, from `/proc`, net of its own idle) is
 * divided by its joins. Every round starts both afresh and swaps which one starts first and takes
 * the first socket.
 *
 * Why not one server after the other, as bench:joins runs its two: on the shared machines this
 * project runs on, one process's CPU per join moves by a fifth to a half from one minute to the
 * next (the same build read 105 and 253 µs), so a change of a few microseconds needs dozens of
 * alternating runs to show. Two servers measured in the same seconds see the same machine: with the
 * same build on both sides, one round's ratio stayed within about 5 % (README, bench:joins:compare).
 *
 * `--references callbacks` measures the same way what no Hypercast code is in: the bare
 * uWebSockets.js reference of bench:joins (base) against the same server with uWebSockets.js's
 * JavaScript callbacks for upgrade, open and close, which decide nothing (change;
 * ws/raw-server.ts, RAW_CALLBACKS=1); `--references control` runs the bare reference on both sides.
 *
 * Before the measured window each server joins and holds `--held` sockets, as bench:joins' phase 1
 * does: the code is warm and optimised, and no socket closes (the first close of a process
 * deoptimises code that had never seen one).
 *
 *     npm run bench:joins:compare                                # HEAD against the working tree, 6 rounds
 *     npm run bench:joins:compare -- --base main~3 --change main  # two commits
 *     npm run bench:joins:compare -- --base HEAD --change HEAD    # the control: the same code twice
 *     npm run bench:joins:compare -- --change-node-flags="--single-threaded-gc"   # a flag, same code
 *     npm run bench:joins:compare -- --references callbacks      # raw uWS, without and with JS callbacks
 *     npm run bench:joins:compare -- --references control        # raw uWS twice: that one's control
 *
 * Exit 0 with every round valid, 3 when a load run was not (its round is left out of the medians),
 * 1 on failure, 2 for a bad command line.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
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
import { startLoad } from "./joins/background-load.ts";
import { MAX_LAG_MS } from "./joins/measure.ts";
import { HYPERCAST_ENV, REFERENCE } from "./joins/targets.ts";
import { compileEntry } from "./lib/compiled.ts";
import { commandLine, isLoopbackPostgres, nodeFlags, positiveInt, stopAfter } from "./lib/options.ts";
import { buildSide, commitOf, COMPARISON_OPTIONS } from "./lib/sides.ts";
import { machineLine, median, pinning, procCpuTimes, startPinned } from "./ws/rounds.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface Side {
  name: "base" | "change";
  /** A git ref as given, and its commit; both undefined for the working tree. */
  ref: string | undefined;
  commit: string | undefined;
  flags: string[];
  /** The build directory, relative to the repository. */
  build: string;
}

/** CPU µs per join of one server in one round. */
interface Cost {
  user: number;
  kernel: number;
}

const {
  values: flags,
  usage,
  check,
} = commandLine(
  "bench:joins:compare",
  'npm run bench:joins:compare -- [--base REF] [--change REF] [--references callbacks|control] [--rounds N] [--sockets N] [--held N] [--ramp JOINS_PER_S] [--base-node-flags="…"] [--change-node-flags="…"] [--database-url URL] [--smoke] [--max-seconds S]',
  {
    ...COMPARISON_OPTIONS,
    sockets: { type: "string" },
    held: { type: "string" },
    ramp: { type: "string" },
    references: { type: "string" },
  },
);
/** Raw uWS on both sides (`--references`), the change side with JavaScript callbacks or not. */
const references = flags.references;
if (references !== undefined && references !== "callbacks" && references !== "control")
  usage(`--references takes callbacks or control, not ${references}`);
interface Options {
  rounds: number;
  /** Sockets joined into each server in the measured window, and held by each before it. */
  sockets: number;
  held: number;
  /** Joins per second into each server. */
  ramp: number;
  maxSeconds: number;
  nodeFlags: { base: string[]; change: string[] };
}

function readOptions(): Options {
  const smoke = flags.smoke ?? false;
  return check(() => {
    const rounds = positiveInt("rounds", flags.rounds, smoke ? 1 : 6);
    const sockets = positiveInt("sockets", flags.sockets, smoke ? 100 : 8_000);
    const held = positiveInt("held", flags.held, smoke ? 50 : 2_000);
    const ramp = positiveInt("ramp", flags.ramp, 1_000);
    // Two fresh servers, seeding, the held sockets, idle, the window and the stops: about 40 s and the joins.
    const perRound = 40 + (held + sockets) / ramp;
    const maxSeconds = positiveInt("max-seconds", flags["max-seconds"], Math.ceil(600 + rounds * perRound * 2));
    const base = nodeFlags(flags["base-node-flags"]);
    const change = nodeFlags(flags["change-node-flags"]);
    return { rounds, sockets, held, ramp, maxSeconds, nodeFlags: { base, change } };
  });
}

const options = readOptions();
const databaseUrl = flags["database-url"] ?? process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
if (references === undefined && !isLoopbackPostgres(databaseUrl))
  usage("DATABASE_URL must name a loopback PostgreSQL (the benchmark creates and drops a database there)");

const pins = pinning();
if (pins.server.length === 0) usage(`both servers must share one pinned core, and the load another: ${pins.note}`);
const WORK = `.bench/compare-${process.pid}`;
if (references !== undefined && (flags.base !== undefined || flags.change !== undefined))
  usage("--references compares two servers without Hypercast's code: it takes no --base or --change");
const baseRef = references !== undefined ? undefined : (flags.base ?? "HEAD");
const sides: [Side, Side] = [
  { name: "base", ref: baseRef, commit: commitOf("base", baseRef, usage), flags: options.nodeFlags.base, build: "" },
  {
    name: "change",
    ref: flags.change,
    commit: commitOf("change", flags.change, usage),
    flags: options.nodeFlags.change,
    build: "",
  },
];
const group = createProcessGroup();
let database: OwnedDatabase | undefined;
const running = new Set<Node>();
process.on("exit", () => group.killAll());
const cleanUp = async () => {
  await Promise.allSettled([...running].map((node) => stopNode(node, 5_000)));
  group.killAll();
  await database?.drop().catch((error: unknown) => console.error("dropping the benchmark database:", error));
  await rm(join(ROOT, WORK), { recursive: true, force: true });
};
const hardStop = stopAfter("bench:joins:compare", options.maxSeconds, cleanUp);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The raw uWS reference compiled to JavaScript, once for both sides of `--references`. */
async function buildReference(): Promise<string> {
  await compileEntry(`${WORK}/reference`, REFERENCE);
  return `${WORK}/reference/${REFERENCE.replace(/\.ts$/, ".mjs")}`;
}

type CpuTimes = { user: number; system: number };

/** CPU seconds per millisecond between two readings. */
const rate = (before: CpuTimes, after: CpuTimes, ms: number): CpuTimes => ({
  user: (after.user - before.user) / ms,
  system: (after.system - before.system) / ms,
});

/** CPU µs per join between two readings `ms` apart, less what the server spends idle over as long. */
const perJoin = (before: CpuTimes, after: CpuTimes, idle: CpuTimes, ms: number, joins: number): Cost => ({
  user: ((after.user - before.user - idle.user * ms) * 1e6) / joins,
  kernel: ((after.system - before.system - idle.system * ms) * 1e6) / joins,
});

/** A round's two servers, running, and where the load finds them. */
interface Started {
  pids: number[];
  urls: string[];
  topic: string;
  token: string;
}

/** Both Hypercast builds on the one database and secret, seeded through the first. */
async function startHypercasts(order: [Side, Side], stops: Array<() => Promise<void>>): Promise<Started> {
  const secret = randomBytes(32).toString("hex");
  const nodes: Node[] = [];
  for (const [i, side] of order.entries()) {
    const node = await startNode(group, {
      name: `compare-${i + 1}`,
      env: { ...HYPERCAST_ENV, DATABASE_URL: database!.url, SECRET_KEY_BASE: secret },
      pin: pins.server,
      build: side.build,
      nodeArgs: side.flags,
    });
    nodes.push(node);
    running.add(node);
    stops.push(async () => {
      await stopNode(node, 10_000);
      running.delete(node);
    });
  }
  const seed = await seedOverApi(nodes[0]!.httpUrl, ["joins"]);
  return {
    pids: nodes.map((node) => node.pid),
    urls: nodes.map((node) => `${node.socketUrl}/socket`),
    topic: seed.topics["joins"]!,
    token: seed.socketToken,
  };
}

/** The reference twice; with `--references callbacks` the change side hands its upgrades, opens and closes to JavaScript. */
async function startReferences(order: [Side, Side], stops: Array<() => Promise<void>>): Promise<Started> {
  const servers = [];
  for (const side of order) {
    const env: Record<string, string> =
      side.name === "change" && references === "callbacks" ? { RAW_CALLBACKS: "1" } : {};
    const server = await startPinned(pins.server, side.build, env, side.flags);
    servers.push(server);
    stops.push(() => server.stop());
  }
  return {
    pids: servers.map((server) => server.pid),
    urls: servers.map((server) => `ws://127.0.0.1:${server.port}/socket`),
    topic: servers[0]!.topic,
    token: servers[0]!.token,
  };
}

/** One round: both servers afresh, `order[0]` started first and given the first socket. */
async function round(order: [Side, Side]): Promise<{ costs: Map<Side, Cost>; valid: boolean; reasons: string[] }> {
  const stops: Array<() => Promise<void>> = [];
  try {
    const started = await (references !== undefined ? startReferences : startHypercasts)(order, stops);
    const cpu = () => started.pids.map(procCpuTimes);
    const common = [
      ...started.urls.flatMap((url) => ["--url", url]),
      ...["--topic", started.topic, "--param", `token=${started.token}`, "--ramp", String(2 * options.ramp)],
      ...["--max-lag-ms", String(MAX_LAG_MS), "--join-payload", '{"presence":false}'],
    ];
    const connect = (sockets: number, seconds: number) =>
      startLoad(pins, group, ["connect", ...common, "--subscribers", String(sockets), "--duration", String(seconds)]);
    // Held through the idle reading and the window, with a margin.
    const held = connect(2 * options.held, Math.ceil(options.sockets / options.ramp) + 32);
    await held.joined(2 * options.held);
    await sleep(3_000);
    const idle0 = cpu();
    const idleFrom = performance.now();
    await sleep(4_000);
    const idleMs = performance.now() - idleFrom;
    const idle = cpu().map((now, i) => rate(idle0[i]!, now, idleMs));
    const cpu0 = cpu();
    const from = performance.now();
    const load = connect(2 * options.sockets, 2);
    await load.joined(2 * options.sockets);
    await sleep(500);
    const cpu1 = cpu();
    const ms = performance.now() - from;
    if (held.ended()) throw new Error("the held sockets were gone before the window ended");
    const { result } = await load.finished;
    if (result.connections.joined < 2 * options.sockets || result.connections.failed > 0)
      throw new Error(
        `${result.connections.joined} of ${2 * options.sockets} sockets joined: ${JSON.stringify(result.errors)}`,
      );
    const costs = new Map(
      order.map((side, i) => [side, perJoin(cpu0[i]!, cpu1[i]!, idle[i]!, ms, options.sockets)] as const),
    );
    return { costs, valid: result.valid, reasons: result.invalid_reasons };
  } finally {
    await Promise.allSettled(stops.map((stop) => stop()));
  }
}

const code = (side: Side) =>
  references !== undefined
    ? `raw uWS${side.name === "change" && references === "callbacks" ? " with JavaScript callbacks" : ""}`
    : (side.ref ?? "the working tree");
const describe = (side: Side) => `${code(side)}${side.flags.length > 0 ? ` with ${side.flags.join(" ")}` : ""}`;
const total = (c: Cost) => c.user + c.kernel;
/** A side's cost in a round: `total (user + kernel)`, in a column of its own. */
const cell = (c: Cost) =>
  `${total(c).toFixed(1).padStart(7)} (${c.user.toFixed(1)} + ${c.kernel.toFixed(1)})`.padEnd(32);

let exitCode = 0;
try {
  console.log(
    `bench:joins:compare: base ${describe(sides[0])}, change ${describe(sides[1])}; both servers at once (${pins.note}); ` +
      `${options.held} sockets held, then ${options.sockets} joined into each at ${options.ramp}/s, audience joins; ${machineLine()}`,
  );
  if (references !== undefined) {
    const reference = await buildReference();
    for (const side of sides) side.build = reference;
  } else {
    for (const side of sides) side.build = buildSide(`${WORK}/${side.name}`, side.commit, side.ref);
    database = await createDatabase(databaseUrl);
    await migrateDatabase(group, database.url);
  }
  /** The valid rounds' costs. */
  const kept: Array<{ base: Cost; change: Cost }> = [];
  console.log(
    `\nround  ${"base µs/join (user + kernel)".padEnd(32)}${"change µs/join (user + kernel)".padEnd(32)}change/base`,
  );
  for (let r = 0; r < options.rounds; r++) {
    const order: [Side, Side] = r % 2 === 0 ? [sides[0], sides[1]] : [sides[1], sides[0]];
    const { costs, valid, reasons } = await round(order);
    const base = costs.get(sides[0])!;
    const change = costs.get(sides[1])!;
    const ratio = total(change) / total(base);
    console.log(
      `${String(r + 1).padStart(5)}  ${cell(base)}${cell(change)}${valid ? ratio.toFixed(3) : `INVALID: ${reasons.join("; ")}`}`,
    );
    if (!valid) {
      exitCode = 3;
      continue;
    }
    kept.push({ base, change });
  }
  const ratios = kept.map((k) => total(k.change) / total(k.base));
  if (ratios.length === 0) {
    console.error("INVALID: no round's load run was valid; no ratio");
  } else {
    const lower = ratios.filter((ratio) => ratio < 1).length;
    const m = (pick: (k: { base: Cost; change: Cost }) => number) => median(kept.map(pick));
    console.log(
      `\nmedians over ${ratios.length} valid round(s): base ${m((k) => total(k.base)).toFixed(1)} µs per join ` +
        `(user ${m((k) => k.base.user).toFixed(1)}), change ${m((k) => total(k.change)).toFixed(1)} (user ${m((k) => k.change.user).toFixed(1)}); ` +
        `change/base ${median(ratios).toFixed(3)}, lower in ${lower} of ${ratios.length} rounds`,
    );
    console.log(
      "read it beside a control run on this machine (--base HEAD --change HEAD), whose rounds show its spread",
    );
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  exitCode = 1;
} finally {
  await cleanUp();
  clearTimeout(hardStop);
}
process.exit(exitCode);
