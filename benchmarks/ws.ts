/**
 * `npm run bench:ws` — room fan-out through Hypercast's realtime tier against a bare uWebSockets.js
 * pub/sub server (./ws/raw-server.ts, its own process, none of Hypercast's code), side by side, with
 * the project's own load generator (`hypercast-load`, lib/load) as the client of both.
 *
 *     npm run bench:ws                                       # 1,000 subscribers, 100 msg/s (100 k deliveries/s offered), 10 s, 3 rounds
 *     npm run bench:ws -- --subscribers 10000 --rate 100     # 1 M deliveries/s offered
 *     npm run bench:ws -- --smoke                            # seconds: 50 subscribers, 1 round (CI)
 *
 * Both servers run as production runs them, compiled to plain JavaScript under `node` (no runtime
 * TypeScript loader: ./lib/compiled.ts), and are pinned alike (`taskset -c 0`), the load generator
 * to the other core(s). Server CPU per delivery is also split into user space and the kernel. Rounds
 * alternate the order of the two targets; every figure printed is the median over rounds. A round
 * that lost or duplicated a delivery fails the benchmark (exit 1); a round whose load generator was
 * not valid (its client saturated or lagging) withholds the ratios and exits 3. Bounded by
 * --max-seconds; stops its servers on every exit path.
 */
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import {
  machineLine,
  median,
  pinning,
  printTable,
  procCpuTimes,
  procRssBytes,
  runLoadTool,
  startPinned,
  type PinnedServer,
  type Row,
  fanoutVerdict,
} from "./ws/rounds.ts";
import type { LoadResult } from "../lib/load/types.ts";
import { buildHypercast, compileEntry } from "./lib/compiled.ts";
import { commandLine, positiveInt, stopAfter } from "./lib/options.ts";

const {
  values: flags,
  usage,
  check,
} = commandLine(
  "bench:ws",
  "npm run bench:ws -- [--subscribers N] [--rate MSG_PER_S] [--duration S] [--rounds N] [--publishers N] [--workers N] [--client raw|ws] [--smoke] [--max-seconds S]",
  {
    subscribers: { type: "string" },
    rate: { type: "string" },
    duration: { type: "string" },
    rounds: { type: "string" },
    publishers: { type: "string" },
    workers: { type: "string" },
    client: { type: "string" },
    smoke: { type: "boolean", default: false },
    "max-seconds": { type: "string" },
  },
);
const smoke = flags.smoke ?? false;
if (flags.client !== undefined && flags.client !== "raw" && flags.client !== "ws")
  usage(`--client takes raw or ws, not ${flags.client}`);
const SUBSCRIBERS = check(() => positiveInt("subscribers", flags.subscribers, smoke ? 50 : 1000));
const RATE = check(() => positiveInt("rate", flags.rate, smoke ? 20 : 100));
const DURATION = check(() => positiveInt("duration", flags.duration, smoke ? 2 : 10));
const ROUNDS = check(() => positiveInt("rounds", flags.rounds, smoke ? 1 : 3));
const PUBLISHERS = check(() => positiveInt("publishers", flags.publishers, 1));
const pins = pinning();
const WORKERS = check(() => positiveInt("workers", flags.workers, pins.loadCores));
const MAX_SECONDS = check(() => positiveInt("max-seconds", flags["max-seconds"], ROUNDS * 2 * (DURATION + 40) + 150));
/** Hypercast's build and the two compiled servers, in a directory of this run's own. */
const BUILD = `.bench/ws-${process.pid}`;

const servers: PinnedServer[] = [];
const hardStop = stopAfter("bench:ws", MAX_SECONDS, () =>
  Promise.allSettled([...servers.map((s) => s.stop()), rm(BUILD, { recursive: true, force: true })]),
);

interface Round {
  result: LoadResult;
  /** Server CPU seconds over the round: in user space and in the kernel on its behalf. */
  serverCpu: { user: number; system: number };
  rssMiB: number;
}

async function round(server: PinnedServer): Promise<Round> {
  const cpu0 = procCpuTimes(server.pid);
  const { result } = await runLoadTool(pins, [
    "fanout",
    "--url",
    `ws://127.0.0.1:${server.port}/socket`,
    "--topic",
    server.topic,
    "--param",
    `token=${server.token}`,
    "--subscribers",
    String(SUBSCRIBERS),
    "--publishers",
    String(PUBLISHERS),
    "--rate",
    String(RATE),
    "--duration",
    String(DURATION),
    "--workers",
    String(WORKERS),
    "--ramp",
    "2000",
    ...(flags.client === undefined ? [] : ["--client", flags.client]),
  ]);
  const cpu1 = procCpuTimes(server.pid);
  return {
    result,
    serverCpu: { user: cpu1.user - cpu0.user, system: cpu1.system - cpu0.system },
    rssMiB: procRssBytes(server.pid) / 1048576,
  };
}

let exitCode = 0;
try {
  buildHypercast(BUILD);
  const entries = await Promise.all(
    ["benchmarks/ws/hypercast-server.ts", "benchmarks/ws/raw-server.ts"].map((source) => compileEntry(BUILD, source)),
  );
  const hypercast = await startPinned(pins.server, fileURLToPath(entries[0]!));
  servers.push(hypercast);
  const raw = await startPinned(pins.server, fileURLToPath(entries[1]!));
  servers.push(raw);
  const rounds: Round[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order so neither target always goes first.
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) {
      const result = await round(i === 0 ? hypercast : raw);
      rounds[i]!.push(result);
      const d = result.result.deliveries;
      console.error(
        `round ${r + 1} ${i === 0 ? "Hypercast" : "raw uWS"}: ${d.received.toLocaleString("en-US")}/${d.expected.toLocaleString("en-US")} deliveries, p99 ${result.result.latency_ms.p99} ms, ${result.result.valid ? "valid" : `NOT valid: ${result.result.invalid_reasons.join("; ")}`}`,
      );
    }
  }
  const all = rounds.flat();
  const valid = all.every((r) => r.result.valid);
  const m = (pick: (r: Round) => number) => rounds.map((list) => median(list.map(pick)));
  const perDelivery = (r: Round, seconds: number) => (seconds * 1e6) / Math.max(1, r.result.deliveries.received);
  const rows: Row[] = [
    {
      label: "sockets joined (subscribers)",
      values: m((r) => r.result.connections.joined - PUBLISHERS),
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
    { label: "publish→delivery p50 ms", values: m((r) => r.result.latency_ms.p50), digits: 1, ratio: true },
    { label: "publish→delivery p99 ms", values: m((r) => r.result.latency_ms.p99), digits: 1, ratio: true },
    { label: "publish→delivery max ms", values: m((r) => r.result.latency_ms.max), digits: 1, ratio: true },
    { label: "push→reply p99 ms", values: m((r) => r.result.reply_ms.p99), digits: 1, ratio: true },
    { label: "join p99 ms", values: m((r) => r.result.join_ms.p99), digits: 1, ratio: true },
    {
      label: "server CPU µs per delivery",
      values: m((r) => perDelivery(r, r.serverCpu.user + r.serverCpu.system)),
      digits: 2,
      ratio: true,
    },
    {
      label: "… of which in user space",
      values: m((r) => perDelivery(r, r.serverCpu.user)),
      digits: 2,
      ratio: true,
    },
    {
      label: "… of which in the kernel",
      values: m((r) => perDelivery(r, r.serverCpu.system)),
      digits: 2,
      ratio: true,
    },
    { label: "server RSS after run MiB", values: m((r) => r.rssMiB), digits: 1, ratio: true },
    { label: "client CPU µs per frame", values: m((r) => r.result.client.cpu_us_per_frame), digits: 2, ratio: false },
    {
      label: "client busiest core %",
      values: m((r) => r.result.client.max_core_fraction * 100),
      digits: 0,
      ratio: false,
    },
  ];
  console.log(`\nws benchmark — ${machineLine()}`);
  console.log(
    `${pins.note}; ${SUBSCRIBERS} subscribers, ${PUBLISHERS} publisher(s), ${RATE} msg/s for ${DURATION} s, ${WORKERS} load worker(s), ${ROUNDS} round(s), medians\n`,
  );
  printTable(["Hypercast", "raw uWS"], rows, valid);
  console.log(
    "\nratio = Hypercast / raw uWS (higher is better for deliveries/s, lower for ms, µs and MiB); latency is measured from each message's scheduled send time.",
  );
  exitCode = fanoutVerdict(
    all.map((r) => r.result),
    valid,
  );
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  exitCode = 1;
} finally {
  await Promise.allSettled(servers.map((s) => s.stop()));
  await rm(BUILD, { recursive: true, force: true });
  clearTimeout(hardStop);
}
process.exit(exitCode);
