/**
 * `npm run bench:cluster` — fan-out across two Hypercast nodes sharing a Redis, against the same
 * load on one node, in the same run.
 *
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:cluster    # ~1–2 minutes on 2 cores
 *     npm run bench:cluster -- --sockets 8000 --messages 100 --rate 20 --clients 4 --rounds 5
 *
 * It starts its own redis-server (free loopback port, no persistence), creates a fresh PostgreSQL
 * database next to DATABASE_URL's (two processes cannot share one embedded PGlite), migrates it with
 * `cli.ts migrate`, and starts two nodes exactly as `npm start` does (`cli.ts serve` with REDIS_URL,
 * NODE_NAME, and the same DATABASE_URL and SECRET_KEY_BASE). It seeds a user and rooms over the API,
 * checks that a broadcast crosses from node 1 to node 2, then runs the same load twice with the
 * publisher on node 1:
 *
 *   1 node   every subscriber on node 1 (node 2 idle);
 *   2 nodes  the subscribers split evenly, half on node 1 (same-node) and half on node 2 (cross-node).
 *
 * The two runs alternate (1, 2 / 2, 1 / …) for --rounds rounds (default 3) and every figure printed
 * is the median over the rounds.
 *
 * Subscribers are the lean load clients of `bench:ws` (./ws/client.ts, in separate processes), which
 * read the publisher's send time out of each frame: it prints cross-node publish→receive p50/p99
 * next to same-node p50/p99, and deliveries per second, with ratios. Loopback only, bounded in time
 * (--max-seconds, default 170) and count; it stops by itself, stops its nodes, kills its children
 * and drops its database on every exit path.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { createDatabase, createProcessGroup, migrateDatabase, startNode, startRedis, stopNode, type Node, type OwnedDatabase } from "./cluster/processes.ts";
import { seedOverApi } from "./cluster/seed.ts";
import { collectCounts, forkClient, joinAll, maxLatency, mergeHistograms, openPublisher, publishTimed, share, stopClients, type Counts } from "./ws/harness.ts";
import { percentile, procCpuSeconds, type ClientJob } from "./ws/shared.ts";

const { values: flags } = parseArgs({
  options: {
    sockets: { type: "string" },
    messages: { type: "string" },
    rate: { type: "string" },
    clients: { type: "string" },
    "in-flight": { type: "string" },
    "database-url": { type: "string" },
    rounds: { type: "string" },
    "max-seconds": { type: "string" },
  },
});

const int = (value: string | undefined, fallback: number): number => {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got ${value}`);
  return n;
};
const SOCKETS = int(flags.sockets ?? process.env["CLUSTER_BENCH_SOCKETS"], 4_000);
const MESSAGES = int(flags.messages ?? process.env["CLUSTER_BENCH_MESSAGES"], 50);
const RATE = int(flags.rate ?? process.env["CLUSTER_BENCH_RATE"], 10); // messages per second; 0 = all at once
const CLIENTS = int(flags.clients ?? process.env["CLUSTER_BENCH_CLIENTS"], 2);
const IN_FLIGHT = int(flags["in-flight"], 64);
const ROUNDS = Math.max(1, int(flags.rounds ?? process.env["CLUSTER_BENCH_ROUNDS"], 3));
const MAX_SECONDS = int(flags["max-seconds"], 170);
const DATABASE_URL = flags["database-url"] ?? process.env["DATABASE_URL"];
if (CLIENTS < 2 || CLIENTS % 2 !== 0) throw new Error(`--clients must be even and at least 2 (half of them load each node), got ${CLIENTS}`);
if (SOCKETS > 40_000) throw new Error("--sockets is capped at 40,000");
if (SOCKETS / CLIENTS > 18_000) throw new Error(`${SOCKETS} sockets over ${CLIENTS} clients exceeds 18,000 per process; add --clients`);
if (DATABASE_URL === undefined || DATABASE_URL === "") {
  console.error(
    "bench:cluster needs PostgreSQL: two processes cannot share one embedded PGlite. Set DATABASE_URL (or --database-url)\n" +
      "to a database the benchmark may create a sibling database next to, e.g.\n" +
      "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:cluster",
  );
  process.exit(2);
}
if (!/^postgres(ql)?:\/\/[^/]*(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\//.test(DATABASE_URL)) {
  throw new Error("DATABASE_URL must point at a loopback PostgreSQL (127.x, localhost, [::1]): the benchmark creates and drops a database there");
}

const group = createProcessGroup();
const clientProcesses = new Set<ChildProcess>();
let database: OwnedDatabase | undefined;
const nodes: Node[] = [];

function killEverything(): void {
  for (const c of clientProcesses) c.kill("SIGKILL");
  group.killAll();
}
process.on("exit", killEverything);

/** Stops the nodes gracefully, kills whatever is left, drops the database; bounded by `ms`. */
async function cleanUp(ms: number): Promise<void> {
  const work = (async () => {
    await Promise.allSettled(nodes.map((n) => stopNode(n, 5_000)));
    killEverything();
    await database?.drop();
  })();
  await Promise.race([work.catch((error: unknown) => console.error("clean-up:", error)), new Promise((r) => setTimeout(r, ms).unref())]);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`${signal}: stopping`);
    void cleanUp(8_000).finally(() => process.exit(130));
  });
}

const hardStop = setTimeout(() => {
  console.error(`benchmark exceeded --max-seconds ${MAX_SECONDS}; stopping`);
  void cleanUp(8_000).finally(() => process.exit(1));
}, MAX_SECONDS * 1000);
hardStop.unref();

const socketPath = (token: string) => `/socket/websocket?vsn=2.0.0&token=${encodeURIComponent(token)}`;

/** A socket on node 2 must see a message pushed on node 1, or nothing below can be measured. */
async function probeCrossNode(from: Node, to: Node, token: string, topic: string): Promise<number> {
  const listener = await openPublisher(`${to.socketUrl}${socketPath(token)}`, topic);
  const publisher = await openPublisher(`${from.socketUrl}${socketPath(token)}`, topic);
  try {
    const started = performance.now();
    const received = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5_000);
      listener.on("message", (data: Buffer) => {
        if (data.includes('"message:new"') && data.includes('"cluster probe"')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    publisher.send(JSON.stringify(["p", "1", topic, "message:new", { body: "cluster probe" }]));
    if (!(await received)) {
      throw new Error(
        `a message pushed on ${from.name} did not reach a subscriber on ${to.name} within 5 s: the nodes are not clustered ` +
          "(is the Redis PubSub adapter wired into lib/deps.ts when REDIS_URL is set?)",
      );
    }
    return performance.now() - started;
  } finally {
    listener.terminate();
    publisher.terminate();
  }
}

interface Slice {
  joined: number;
  failed: number;
  delivered: number;
  expected: number;
  deliveredPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  closedByServer: number;
}

interface PhaseResult {
  name: string;
  all: Slice;
  /** Node name → the subscribers on that node. */
  byNode: Map<string, Slice>;
  joinSeconds: number;
  /** CPU seconds during fan-out: n1, n2, redis. */
  cpu: Record<string, number>;
  clientCpu: number;
}

function slice(counts: Counts[], joined: number, failed: number, firstAt: number): Slice {
  const histogram = mergeHistograms(counts);
  const delivered = counts.reduce((a, r) => a + r.messages, 0);
  const seconds = (Math.max(...counts.map((r) => r.lastAt)) - firstAt) / 1000;
  return {
    joined,
    failed,
    delivered,
    expected: joined * MESSAGES,
    deliveredPerSecond: delivered / seconds,
    p50: percentile(histogram, 50),
    p99: percentile(histogram, 99),
    max: maxLatency(histogram),
    closedByServer: counts.reduce((a, r) => a + r.closedByServer, 0),
  };
}

/** One run of the load: client i loads `placement[i]`; the publisher is always on `publisherNode`. */
async function phase(name: string, placement: Node[], publisherNode: Node, token: string, topic: string, redisPid: number): Promise<PhaseResult> {
  const clients = placement.map(() => forkClient(clientProcesses));
  const jobs = placement.map((node, i): ClientJob => ({
    kind: "job",
    url: `${node.socketUrl}${socketPath(token)}`,
    topic,
    sockets: share(SOCKETS, CLIENTS, i),
    addresses: Array.from({ length: 4 }, (_, k) => `127.0.${1 + i}.${10 + k}`),
    inFlight: IN_FLIGHT,
  }));
  const joinedReports = await joinAll(clients, jobs, MAX_SECONDS * 1000);
  const joined = joinedReports.reduce((a, r) => a + r.joined, 0);
  const failed = joinedReports.reduce((a, r) => a + r.failed, 0);
  const joinSeconds = (Math.max(...joinedReports.map((r) => r.endedAt)) - Math.min(...joinedReports.map((r) => r.startedAt))) / 1000;
  console.error(`[${name}] ${joined} joined (${failed} failed) in ${joinSeconds.toFixed(1)} s; publishing ${MESSAGES} on ${publisherNode.name}…`);

  const publisher = await openPublisher(`${publisherNode.socketUrl}${socketPath(token)}`, topic);
  const pids: Record<string, number> = { redis: redisPid, ...Object.fromEntries(nodes.map((n) => [n.name, n.pid])) };
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procCpuSeconds(pid)]));
  const firstAt = await publishTimed(publisher, topic, MESSAGES, RATE);
  const counts = await collectCounts(clients, { expected: joined * MESSAGES, messages: MESSAGES, stallMs: 10_000, maxMs: 60_000 });
  const cpu = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procCpuSeconds(pid) - cpu0[k]!]));
  publisher.terminate();
  await stopClients(clients);

  const byNode = new Map<string, Slice>();
  for (const node of new Set(placement)) {
    const mine = placement.flatMap((n, i) => (n === node ? [i] : []));
    byNode.set(
      node.name,
      slice(
        mine.map((i) => counts[i]!),
        mine.reduce((a, i) => a + joinedReports[i]!.joined, 0),
        mine.reduce((a, i) => a + joinedReports[i]!.failed, 0),
        firstAt,
      ),
    );
  }
  return { name, all: slice(counts, joined, failed, firstAt), byNode, joinSeconds, cpu, clientCpu: counts.reduce((a, r) => a + r.cpuMicros, 0) / 1e6 };
}

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Field by field, the median over rounds (so a column is not one round's figures). */
function medianOf(results: PhaseResult[]): PhaseResult {
  const slices = (pick: (r: PhaseResult) => Slice): Slice => {
    const all = results.map(pick);
    const m = (key: keyof Slice) => median(all.map((s) => s[key]));
    return { joined: m("joined"), failed: m("failed"), delivered: m("delivered"), expected: m("expected"), deliveredPerSecond: m("deliveredPerSecond"), p50: m("p50"), p99: m("p99"), max: m("max"), closedByServer: m("closedByServer") };
  };
  const first = results[0]!;
  return {
    name: first.name,
    all: slices((r) => r.all),
    byNode: new Map([...first.byNode.keys()].map((node) => [node, slices((r) => r.byNode.get(node)!)])),
    joinSeconds: median(results.map((r) => r.joinSeconds)),
    cpu: Object.fromEntries(Object.keys(first.cpu).map((k) => [k, median(results.map((r) => r.cpu[k]!))])),
    clientCpu: median(results.map((r) => r.clientCpu)),
  };
}

function print(one: PhaseResult, two: PhaseResult, context: string): void {
  const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a");
  const same = two.byNode.get("n1")!;
  const cross = two.byNode.get("n2")!;
  const columns: Array<[string, Slice | undefined, PhaseResult | undefined]> = [
    ["1 node", one.all, one],
    ["2 nodes", two.all, two],
    ["n1 same-node", same, undefined],
    ["n2 cross-node", cross, undefined],
  ];
  type Cell = (s: Slice, p: PhaseResult | undefined) => number | string;
  const rows: Array<[string, Cell, number]> = [
    ["sockets joined (failed)", (s) => `${f(s.joined)} (${f(s.failed)})`, 0],
    ["deliveries (expected)", (s) => `${f(s.delivered)} (${f(s.expected)})`, 0],
    ["deliveries per second", (s) => s.deliveredPerSecond, 0],
    ["publish→receive p50 ms", (s) => s.p50, 1],
    ["publish→receive p99 ms", (s) => s.p99, 1],
    ["publish→receive max ms", (s) => s.max, 1],
    ["sockets closed by server", (s) => s.closedByServer, 0],
    ["CPU s during fan-out, n1", (_, p) => p?.cpu["n1"] ?? "", 2],
    ["CPU s during fan-out, n2", (_, p) => p?.cpu["n2"] ?? "", 2],
    ["CPU s during fan-out, redis", (_, p) => p?.cpu["redis"] ?? "", 2],
    ["client CPU s (all clients)", (_, p) => p?.clientCpu ?? "", 2],
  ];
  const show = (v: number | string, digits: number) => (typeof v === "number" ? f(v, digits) : v);
  const ratio = (a: number | string, b: number | string) => (typeof a === "number" && typeof b === "number" && b !== 0 && Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : "");
  console.log(`\ncluster benchmark — ${new Date().toISOString()} — Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"})`);
  console.log(context);
  console.log(`sockets=${SOCKETS} clients=${CLIENTS} messages=${MESSAGES} rate=${RATE === 0 ? "burst" : `${RATE}/s`} in-flight=${IN_FLIGHT}/client rounds=${ROUNDS} (medians); publisher on n1\n`);
  const width = 30;
  console.log("".padEnd(width) + columns.map(([name]) => name.padStart(18)).join("") + "cross÷same".padStart(12) + "2÷1 nodes".padStart(11));
  for (const [label, cell, digits] of rows) {
    const values = columns.map(([, s, p]) => cell(s!, p));
    console.log(label.padEnd(width) + values.map((v) => show(v, digits).padStart(18)).join("") + ratio(values[3]!, values[2]!).padStart(12) + ratio(values[1]!, values[0]!).padStart(11));
  }
  console.log(
    `\ncross-node (n1 → Redis → n2) p50/p99 ${f(cross.p50, 1)}/${f(cross.p99, 1)} ms vs same-node ${f(same.p50, 1)}/${f(same.p99, 1)} ms ` +
      `(${ratio(cross.p50, same.p50)} / ${ratio(cross.p99, same.p99)}); deliveries/s ${f(two.all.deliveredPerSecond)} on 2 nodes vs ${f(one.all.deliveredPerSecond)} on 1 (${ratio(two.all.deliveredPerSecond, one.all.deliveredPerSecond)}).`,
  );
  console.log("cross÷same: n2's subscribers over n1's in the 2-node run (lower is better for ms); 2÷1: the 2-node run over the 1-node run (higher is better for rates).");
}

let exitCode = 0;
try {
  const started = performance.now();
  const redis = await startRedis(group);
  database = await createDatabase(DATABASE_URL);
  await migrateDatabase(group, database.url);
  const env = {
    REDIS_URL: redis.url,
    DATABASE_URL: database.url,
    SECRET_KEY_BASE: randomBytes(32).toString("hex"),
    NODE_ENV: "production",
    LOG_LEVEL: "warn",
    PASSWORD_HASH_COST: "10",
    // The publisher socket sends faster than the interactive default allows.
    SOCKET_RATE_LIMIT: "100000",
    SOCKET_RATE_BURST: "100000",
  };
  nodes.push(...(await Promise.all([startNode(group, { name: "n1", env }), startNode(group, { name: "n2", env })])));
  const [n1, n2] = nodes as [Node, Node];
  const seed = await seedOverApi(n1.httpUrl, ["probe", "one-node", "two-nodes"]);
  const probeMs = await probeCrossNode(n1, n2, seed.socketToken, seed.topics["probe"]!);
  console.error(`cluster up in ${((performance.now() - started) / 1000).toFixed(1)} s (Redis ${redis.url}, database ${database.name}); probe n1→n2 ${probeMs.toFixed(1)} ms`);

  // Separate rooms, so the 1-node run never pays for a topic node 2 still lingers on.
  const half = CLIENTS / 2;
  const ones: PhaseResult[] = [];
  const twos: PhaseResult[] = [];
  const runOne = async (round: number) => ones.push(await phase(`1 node, round ${round}`, Array.from({ length: CLIENTS }, () => n1), n1, seed.socketToken, seed.topics["one-node"]!, redis.pid));
  const runTwo = async (round: number) => twos.push(await phase(`2 nodes, round ${round}`, Array.from({ length: CLIENTS }, (_, i) => (i < half ? n1 : n2)), n1, seed.socketToken, seed.topics["two-nodes"]!, redis.pid));
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate the order so neither run always goes first (warm-up, linger, noise).
    if (round % 2 === 1) {
      await runOne(round);
      await runTwo(round);
    } else {
      await runTwo(round);
      await runOne(round);
    }
  }
  for (const [i, t] of twos.entries()) {
    const same = t.byNode.get("n1")!;
    const cross = t.byNode.get("n2")!;
    console.error(`round ${i + 1}: p50/p99 ms 1 node ${ones[i]!.all.p50.toFixed(1)}/${ones[i]!.all.p99.toFixed(1)}, same-node ${same.p50.toFixed(1)}/${same.p99.toFixed(1)}, cross-node ${cross.p50.toFixed(1)}/${cross.p99.toFixed(1)}`);
  }
  print(medianOf(ones), medianOf(twos), `two nodes (cli.ts serve) + redis-server ${redis.url}; PostgreSQL database ${database.name} (dropped afterwards)`);
  if (twos.some((t) => t.all.delivered < t.all.expected - t.all.closedByServer * MESSAGES)) {
    console.error("some expected deliveries never arrived (see the deliveries row)");
    exitCode = 1;
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  exitCode = 1;
} finally {
  await cleanUp(20_000);
  clearTimeout(hardStop);
  process.exit(exitCode);
}
