/**
 * `npm run bench:ws` — connection-count and fan-out benchmark of the realtime tier, against a bare
 * uWebSockets.js pub/sub server doing the same fan-out in the same run.
 *
 *     npm run bench:ws                                   # 4,000 sockets, ~1–2 minutes on 2 cores
 *     npm run bench:ws -- --large                        # 16,000 sockets
 *     npm run bench:ws -- --sockets 8000 --messages 100 --rate 20 --clients 3
 *     npm run bench:ws -- --url ws://127.0.0.1:4001 --token <socket_token> --topic room:1 [--server-pid 1234]
 *     npm run bench:ws -- --url ws://my-host:4001 --allow-remote …   # a server of your own elsewhere
 *
 * Without --url it starts Hypercast's realtime tier (embedded in-memory database) in a child
 * process. Load comes from separate client processes (each well under 20,000 open files), spread
 * over source addresses 127.0.0.x so no single address runs out of ephemeral ports. Every client
 * joins the topic as audience; a publisher socket then pushes `message:new` with its send time in
 * the body, and the clients measure publish-to-receive latency without JSON-parsing frames.
 * Loopback unless --allow-remote, bounded in time (--max-seconds, default 170) and count; it stops by itself.
 * Env equivalents: WS_BENCH_SOCKETS, WS_BENCH_MESSAGES, WS_BENCH_RATE, WS_BENCH_CLIENTS.
 */
import type { ChildProcess } from "node:child_process";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { collectCounts, forkClient, forkTs, joinAll, maxLatency, mergeHistograms, nextMessage, openPublisher, publishTimed, share, stopClients } from "./ws/harness.ts";
import { percentile, procCpuSeconds, procRssBytes, type ClientJob, type ServerReady } from "./ws/shared.ts";

const { values: flags } = parseArgs({
  options: {
    sockets: { type: "string" },
    messages: { type: "string" },
    rate: { type: "string" },
    clients: { type: "string" },
    "in-flight": { type: "string" },
    large: { type: "boolean", default: false },
    url: { type: "string" },
    token: { type: "string" },
    topic: { type: "string" },
    "server-pid": { type: "string" },
    "no-raw": { type: "boolean", default: false },
    "max-seconds": { type: "string" },
    "allow-remote": { type: "boolean", default: false },
  },
});

const int = (value: string | undefined, fallback: number): number => {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got ${value}`);
  return n;
};
const SOCKETS = int(flags.sockets ?? process.env["WS_BENCH_SOCKETS"], flags.large ? 16_000 : 4_000);
const MESSAGES = int(flags.messages ?? process.env["WS_BENCH_MESSAGES"], flags.large ? 30 : 50);
const RATE = int(flags.rate ?? process.env["WS_BENCH_RATE"], 10); // messages per second; 0 = all at once
const CLIENTS = Math.max(1, int(flags.clients ?? process.env["WS_BENCH_CLIENTS"], flags.large ? 3 : 2));
const IN_FLIGHT = int(flags["in-flight"], 64);
const MAX_SECONDS = int(flags["max-seconds"], flags.large ? 280 : 170);
if (SOCKETS > 60_000) throw new Error("--sockets is capped at 60,000");
if (SOCKETS / CLIENTS > 18_000) throw new Error(`${SOCKETS} sockets over ${CLIENTS} clients exceeds 18,000 per process; add --clients`);
if (flags.url !== undefined && (flags.token === undefined || flags.topic === undefined)) throw new Error("--url needs --token and --topic");
// A load generator must never be pointed at someone else's server by accident: a non-loopback
// target needs --allow-remote (use it only against servers you run).
if (flags.url !== undefined && !flags["allow-remote"] && !/^ws:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\/?/.test(flags.url)) {
  throw new Error("--url is not a loopback ws:// URL; pass --allow-remote to load-test a server of your own elsewhere");
}

const children = new Set<ChildProcess>();

interface Target {
  name: string;
  url: string;
  topic: string;
  token: string;
  pid: number | undefined;
  server: ChildProcess | undefined;
}

async function startTarget(name: string, file: string): Promise<Target> {
  const server = forkTs(file, children);
  const ready = await nextMessage<ServerReady>(server, (m) => m.kind === "ready", 60_000, `${name} server`);
  return { name, url: `ws://127.0.0.1:${ready.port}`, topic: ready.topic, token: ready.token, pid: server.pid, server };
}

/** Full collections until RSS settles, so the per-socket figure is not skewed by garbage. */
async function gc(target: Target): Promise<void> {
  const server = target.server;
  if (server === undefined) return;
  for (let i = 0; i < 3; i++) {
    server.send({ kind: "gc" });
    await nextMessage(server, (m: { kind: string }) => m.kind === "gc-done", 10_000, "gc");
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Result {
  name: string;
  joined: number;
  failed: number;
  joinSeconds: number;
  joinRate: number;
  rssPerSocket: number;
  rssMiB: number;
  published: number;
  delivered: number;
  expected: number;
  deliverSeconds: number;
  deliveredPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  serverCpuJoin: number;
  serverCpuFanout: number;
  clientCpu: number;
  closedByServer: number;
}

async function run(target: Target): Promise<Result> {
  const pid = target.pid;
  await gc(target);
  const rss0 = pid === undefined ? Number.NaN : procRssBytes(pid);
  const cpu0 = pid === undefined ? Number.NaN : procCpuSeconds(pid);
  const path = target.name === "raw uWS" ? "/socket/websocket?vsn=2.0.0" : `/socket/websocket?vsn=2.0.0&token=${encodeURIComponent(target.token)}`;
  const clients = Array.from({ length: CLIENTS }, () => forkClient(children));
  // Loopback targets: spread over 127.0.x.y source addresses; a remote target: the default route.
  const loopback = /^ws:\/\/(127\.|localhost|\[::1\])/.test(target.url);
  const jobs = clients.map((_, i): ClientJob => ({
    kind: "job",
    url: `${target.url}${path}`,
    topic: target.topic,
    sockets: share(SOCKETS, CLIENTS, i),
    addresses: loopback ? Array.from({ length: 4 }, (_, k) => `127.0.${1 + i}.${10 + k}`) : [],
    inFlight: IN_FLIGHT,
  }));
  const joinedReports = await joinAll(clients, jobs, MAX_SECONDS * 1000);
  const joined = joinedReports.reduce((a, r) => a + r.joined, 0);
  const failed = joinedReports.reduce((a, r) => a + r.failed, 0);
  const joinSeconds = (Math.max(...joinedReports.map((r) => r.endedAt)) - Math.min(...joinedReports.map((r) => r.startedAt))) / 1000;
  const cpu1 = pid === undefined ? Number.NaN : procCpuSeconds(pid);
  await gc(target);
  const rss1 = pid === undefined ? Number.NaN : procRssBytes(pid);
  console.error(`[${target.name}] ${joined} joined (${failed} failed) in ${joinSeconds.toFixed(1)} s; publishing ${MESSAGES}…`);

  // The publisher: one more audience socket that pushes message:new with its send time.
  const publisher = await openPublisher(`${target.url}${path}`, target.topic);
  const cpu2 = pid === undefined ? Number.NaN : procCpuSeconds(pid);
  const firstAt = await publishTimed(publisher, target.topic, MESSAGES, RATE);
  const expected = joined * MESSAGES;
  const counts = await collectCounts(clients, { expected, messages: MESSAGES, stallMs: 60_000, maxMs: 60_000 });
  const cpu3 = pid === undefined ? Number.NaN : procCpuSeconds(pid);
  const histogram = mergeHistograms(counts);
  const delivered = counts.reduce((a, r) => a + r.messages, 0);
  const deliverSeconds = (Math.max(...counts.map((r) => r.lastAt)) - firstAt) / 1000;
  const max = maxLatency(histogram);
  const result: Result = {
    name: target.name,
    joined,
    failed,
    joinSeconds,
    joinRate: joined / joinSeconds,
    rssPerSocket: (rss1 - rss0) / joined,
    rssMiB: rss1 / 1048576,
    published: MESSAGES,
    delivered,
    expected,
    deliverSeconds,
    deliveredPerSecond: delivered / deliverSeconds,
    p50: percentile(histogram, 50),
    p99: percentile(histogram, 99),
    max,
    serverCpuJoin: cpu1 - cpu0,
    serverCpuFanout: cpu3 - cpu2,
    clientCpu: counts.reduce((a, r) => a + r.cpuMicros, 0) / 1e6,
    closedByServer: counts.reduce((a, r) => a + r.closedByServer, 0),
  };
  publisher.terminate();
  await stopClients(clients);
  return result;
}

function print(results: Result[]): void {
  const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a");
  const rows: Array<[string, (r: Result) => string]> = [
    ["sockets joined (failed)", (r) => `${f(r.joined)} (${f(r.failed)})`],
    ["connect+join time s", (r) => f(r.joinSeconds, 1)],
    ["connect+join rate /s", (r) => f(r.joinRate)],
    ["server RSS after joins MiB", (r) => f(r.rssMiB, 1)],
    ["server memory per socket KiB", (r) => f(r.rssPerSocket / 1024, 2)],
    ["messages published", (r) => f(r.published)],
    ["deliveries (expected)", (r) => `${f(r.delivered)} (${f(r.expected)})`],
    ["delivery window s", (r) => f(r.deliverSeconds, 2)],
    ["deliveries per second", (r) => f(r.deliveredPerSecond)],
    ["publish→receive p50 ms", (r) => f(r.p50, 1)],
    ["publish→receive p99 ms", (r) => f(r.p99, 1)],
    ["publish→receive max ms", (r) => f(r.max, 1)],
    ["server CPU s, joins", (r) => f(r.serverCpuJoin, 2)],
    ["server CPU s, fan-out", (r) => f(r.serverCpuFanout, 2)],
    ["client CPU s (all clients)", (r) => f(r.clientCpu, 2)],
    ["sockets closed by server", (r) => f(r.closedByServer)],
  ];
  console.log(`\nws benchmark — ${new Date().toISOString()} — Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"})`);
  console.log(`sockets=${SOCKETS} clients=${CLIENTS} messages=${MESSAGES} rate=${RATE === 0 ? "burst" : `${RATE}/s`} in-flight=${IN_FLIGHT}/client\n`);
  const width = 32;
  console.log("".padEnd(width) + results.map((r) => r.name.padStart(18)).join("") + (results.length === 2 ? "  ratio".padStart(10) : ""));
  for (const [label, cell] of rows) {
    let line = label.padEnd(width) + results.map((r) => cell(r).padStart(18)).join("");
    if (results.length === 2) {
      const num = (r: Result) => Number(cell(r).split(" ")[0]!.replaceAll(",", ""));
      const ratio = num(results[0]!) / num(results[1]!);
      line += (Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "").padStart(10);
    }
    console.log(line);
  }
  console.log("\nratio = Hypercast / raw uWS (higher is better for rates, lower for ms, KiB and CPU).");
}

const hardStop = setTimeout(() => {
  console.error(`benchmark exceeded --max-seconds ${MAX_SECONDS}; stopping`);
  for (const c of children) c.kill("SIGKILL");
  process.exit(1);
}, MAX_SECONDS * 1000);

try {
  const results: Result[] = [];
  const hypercast: Target =
    flags.url !== undefined
      ? { name: "Hypercast", url: flags.url.replace(/\/+$/, "").replace(/\/socket(\/websocket)?$/, ""), topic: flags.topic!, token: flags.token!, pid: flags["server-pid"] === undefined ? undefined : int(flags["server-pid"], 0), server: undefined }
      : await startTarget("Hypercast", "./hypercast-server.ts");
  results.push(await run(hypercast));
  hypercast.server?.disconnect();
  if (!flags["no-raw"]) {
    const raw = await startTarget("raw uWS", "./raw-server.ts");
    results.push(await run(raw));
    raw.server?.disconnect();
  }
  print(results);
} finally {
  clearTimeout(hardStop);
  setTimeout(() => {
    for (const c of children) c.kill("SIGKILL");
    process.exit(0);
  }, 500).unref();
}
