/**
 * `npm run bench:cluster` — fan-out across two Hypercast nodes sharing a Redis, against a reference
 * cluster of two bare uWebSockets.js nodes relaying through the same kind of Redis
 * (./ws/raw-server.ts with REDIS_URL: its own processes, none of Hypercast's code), side by side,
 * with the project's load generator (`hypercast-load`, lib/load) as the client of both.
 *
 *     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:cluster   # 2,000 subscribers, 50 msg/s, 10 s, 3 rounds
 *     DATABASE_URL=… npm run bench:cluster -- --subscribers 8000 --rate 50 --rounds 5
 *     DATABASE_URL=… npm run bench:cluster -- --smoke                              # seconds (CI)
 *
 * It starts its own redis-server, creates a fresh PostgreSQL database next to DATABASE_URL's (two
 * processes cannot share one embedded PGlite), migrates it, and starts two nodes as an operator
 * would (compiled by `npm run build`, `node <build>/lib/bin/cli.js serve` with REDIS_URL and
 * NODE_NAME) plus the two reference nodes (compiled alike, ./lib/compiled.ts); servers and Redis
 * are pinned to core 0 (`taskset`), the load to the other core(s). The publisher is on node 1; the
 * subscribers alternate between node 1 (same-node) and node 2 (cross-node: node 1 → Redis → node 2).
 * Rounds alternate the targets; figures are medians over rounds. A lost or duplicated delivery fails
 * the run (exit 1); a round whose load generator was not valid withholds the ratios (exit 3). It
 * stops every process and drops its database on every exit path, bounded by --max-seconds.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import {
  createDatabase,
  createProcessGroup,
  migrateDatabase,
  startNode,
  startRedis,
  stopNode,
  type Node,
  type OwnedDatabase,
} from "./cluster/processes.ts";
import { seedOverApi } from "./cluster/seed.ts";
import {
  machineLine,
  median,
  pinning,
  printTable,
  procCpuSeconds,
  runLoadTool,
  startPinned,
  type PinnedServer,
  type Row,
  fanoutVerdict,
} from "./ws/rounds.ts";
import type { LoadResult } from "../lib/load/types.ts";
import { buildHypercast, compileEntry } from "./lib/compiled.ts";
import { commandLine, isLoopbackPostgres, positiveInt, stopAfter } from "./lib/options.ts";

const {
  values: flags,
  usage,
  check,
} = commandLine(
  "bench:cluster",
  "DATABASE_URL=postgres://… npm run bench:cluster -- [--subscribers N] [--rate MSG_PER_S] [--duration S] [--rounds N] [--workers N] [--database-url URL] [--smoke] [--max-seconds S]",
  {
    subscribers: { type: "string" },
    rate: { type: "string" },
    duration: { type: "string" },
    rounds: { type: "string" },
    workers: { type: "string" },
    "database-url": { type: "string" },
    smoke: { type: "boolean", default: false },
    "max-seconds": { type: "string" },
  },
);
const smoke = flags.smoke ?? false;
const SUBSCRIBERS = check(() => positiveInt("subscribers", flags.subscribers, smoke ? 40 : 2000));
const RATE = check(() => positiveInt("rate", flags.rate, smoke ? 20 : 50));
const DURATION = check(() => positiveInt("duration", flags.duration, smoke ? 2 : 10));
const ROUNDS = check(() => positiveInt("rounds", flags.rounds, smoke ? 1 : 3));
const pins = pinning();
const WORKERS = check(() => positiveInt("workers", flags.workers, pins.loadCores));
const MAX_SECONDS = check(() => positiveInt("max-seconds", flags["max-seconds"], ROUNDS * 2 * (DURATION + 40) + 180));
/** Hypercast's build and the compiled reference, in a directory of this run's own. */
const BUILD = `.bench/cluster-${process.pid}`;
const DATABASE_URL =
  (flags["database-url"] ?? process.env["DATABASE_URL"]) ||
  usage(
    "needs PostgreSQL: two processes cannot share one embedded PGlite. Set DATABASE_URL (or --database-url)\n" +
      "to a database the benchmark may create a sibling database next to, e.g.\n" +
      "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:cluster",
  );
if (!isLoopbackPostgres(DATABASE_URL))
  usage(
    "DATABASE_URL must point at a loopback PostgreSQL (127.x, localhost, [::1]): the benchmark creates and drops a database there",
  );

const group = createProcessGroup();
const nodes: Node[] = [];
const references: PinnedServer[] = [];
let database: OwnedDatabase | undefined;
process.on("exit", () => group.killAll());

async function cleanUp(ms: number): Promise<void> {
  const work = (async () => {
    await Promise.allSettled([...nodes.map((n) => stopNode(n, 5_000)), ...references.map((r) => r.stop())]);
    group.killAll();
    await database?.drop();
    await rm(BUILD, { recursive: true, force: true });
  })();
  await Promise.race([
    work.catch((error: unknown) => console.error("clean-up:", error)),
    new Promise((r) => setTimeout(r, ms).unref()),
  ]);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`${signal}: stopping`);
    void cleanUp(8_000).finally(() => process.exit(130));
  });
}
const hardStop = stopAfter("bench:cluster", MAX_SECONDS, () => cleanUp(8_000));

interface Target {
  name: string;
  urls: string[];
  topic: string;
  token: string;
  pids: number[];
}

interface Round {
  result: LoadResult;
  serverCpu: number;
}

async function round(target: Target): Promise<Round> {
  const cpu0 = target.pids.reduce((a, pid) => a + procCpuSeconds(pid), 0);
  const { result } = await runLoadTool(pins, [
    "fanout",
    ...target.urls.flatMap((u) => ["--url", u]),
    "--topic",
    target.topic,
    "--param",
    `token=${target.token}`,
    "--subscribers",
    String(SUBSCRIBERS),
    "--rate",
    String(RATE),
    "--duration",
    String(DURATION),
    "--workers",
    String(WORKERS),
    "--ramp",
    "2000",
  ]);
  return { result, serverCpu: target.pids.reduce((a, pid) => a + procCpuSeconds(pid), 0) - cpu0 };
}

let exitCode = 0;
try {
  const redis = await startRedis(group, pins.server);
  database = await createDatabase(DATABASE_URL);
  await migrateDatabase(group, database.url);
  const env = {
    REDIS_URL: redis.url,
    DATABASE_URL: database.url,
    SECRET_KEY_BASE: randomBytes(32).toString("hex"),
    NODE_ENV: "production",
    LOG_LEVEL: "warn",
    PASSWORD_HASH_COST: "10",
    // The publisher socket sends faster than the interactive default allows; one user holds every socket.
    SOCKET_RATE_LIMIT: "1000000",
    SOCKET_RATE_BURST: "1000000",
    SOCKETS_PER_USER: "1000000",
    RATE_LIMITS: "off",
  };
  buildHypercast(BUILD);
  const reference = fileURLToPath(await compileEntry(BUILD, "benchmarks/ws/raw-server.ts"));
  nodes.push(
    ...(await Promise.all([
      startNode(group, { name: "n1", env, pin: pins.server, build: BUILD }),
      startNode(group, { name: "n2", env, pin: pins.server, build: BUILD }),
    ])),
  );
  references.push(
    ...(await Promise.all([0, 1].map(() => startPinned(pins.server, reference, { REDIS_URL: redis.url })))),
  );
  const seed = await seedOverApi(nodes[0]!.httpUrl, ["bench"]);
  const targets: Target[] = [
    {
      name: "Hypercast",
      urls: nodes.map((n) => `${n.socketUrl}/socket`),
      topic: seed.topics["bench"]!,
      token: seed.socketToken,
      pids: [...nodes.map((n) => n.pid), redis.pid],
    },
    {
      name: "reference",
      urls: references.map((r) => `ws://127.0.0.1:${r.port}/socket`),
      topic: "room:1",
      token: "unused",
      pids: [...references.map((r) => r.pid), redis.pid],
    },
  ];
  const rounds: Round[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++) {
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const done = await round(targets[i]!);
      rounds[i]!.push(done);
      const d = done.result.deliveries;
      const cross = done.result.by_url[1]!;
      console.error(
        `round ${r + 1} ${targets[i]!.name}: ${d.received.toLocaleString("en-US")}/${d.expected.toLocaleString("en-US")} deliveries (${cross.received.toLocaleString("en-US")} cross-node), p99 ${done.result.latency_ms.p99} ms, ${done.result.valid ? "valid" : `NOT valid: ${done.result.invalid_reasons.join("; ")}`}`,
      );
      if (cross.subscribers > 0 && cross.received === 0)
        throw new Error(`${targets[i]!.name}: no message crossed from node 1 to node 2: the nodes are not clustered`);
    }
  }
  const all = rounds.flat();
  const valid = all.every((r) => r.result.valid);
  const m = (pick: (r: Round) => number) => rounds.map((list) => median(list.map(pick)));
  const rows: Row[] = [
    {
      label: "subscribers joined (n1 + n2)",
      values: m((r) => r.result.by_url.reduce((a, u) => a + u.subscribers, 0)),
      digits: 0,
      ratio: false,
    },
    { label: "deliveries offered per second", values: m(() => SUBSCRIBERS * RATE), digits: 0, ratio: false },
    { label: "deliveries per second", values: m((r) => r.result.throughput.deliveries_per_s), digits: 0, ratio: true },
    { label: "completeness %", values: m((r) => r.result.deliveries.completeness * 100), digits: 3, ratio: false },
    {
      label: "messages acknowledged %",
      values: m((r) => (r.result.messages.acknowledged * 100) / Math.max(1, r.result.messages.published)),
      digits: 1,
      ratio: false,
    },
    { label: "sockets closed by the server", values: m((r) => r.result.connections.closed), digits: 0, ratio: false },
    { label: "publish→delivery p50 ms, all", values: m((r) => r.result.latency_ms.p50), digits: 1, ratio: true },
    { label: "publish→delivery p99 ms, all", values: m((r) => r.result.latency_ms.p99), digits: 1, ratio: true },
    { label: "same-node (n1) p99 ms", values: m((r) => r.result.by_url[0]!.latency_ms.p99), digits: 1, ratio: true },
    {
      label: "cross-node (n1→Redis→n2) p99 ms",
      values: m((r) => r.result.by_url[1]!.latency_ms.p99),
      digits: 1,
      ratio: true,
    },
    { label: "cross-node p50 ms", values: m((r) => r.result.by_url[1]!.latency_ms.p50), digits: 1, ratio: true },
    {
      label: "server CPU µs per delivery (n1+n2+Redis)",
      values: m((r) => (r.serverCpu * 1e6) / Math.max(1, r.result.deliveries.received)),
      digits: 2,
      ratio: true,
    },
    {
      label: "client busiest core %",
      values: m((r) => r.result.client.max_core_fraction * 100),
      digits: 0,
      ratio: false,
    },
  ];
  console.log(`\ncluster benchmark — ${machineLine()}`);
  console.log(`${pins.note}; Redis ${redis.url}; PostgreSQL database ${database.name} (dropped afterwards)`);
  console.log(
    `${SUBSCRIBERS} subscribers split over 2 nodes, publisher on n1, ${RATE} msg/s for ${DURATION} s, ${WORKERS} load worker(s), ${ROUNDS} round(s), medians\n`,
  );
  printTable(["Hypercast", "uWS+Redis"], rows, valid);
  console.log(
    "\nratio = Hypercast / reference cluster (two bare uWS nodes relaying through Redis); latency from each message's scheduled send time.",
  );
  exitCode = fanoutVerdict(
    all.map((r) => r.result),
    valid,
  );
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  exitCode = 1;
} finally {
  await cleanUp(20_000);
  clearTimeout(hardStop);
}
process.exit(exitCode);
