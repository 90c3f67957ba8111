/**
 * `npm run bench:dashboard` — what the live dashboard costs a node.
 *
 *     npm run bench:dashboard                                  # 18,000 sockets, ~4 minutes on 2 cores
 *     npm run bench:dashboard -- --sockets 4000 --seconds 20   # quicker
 *
 * 1. Snapshot build time against the number of topics with local subscribers (in this process:
 *    a real telemetry emitter and feed, topics joined and active through catalogue events).
 * 2. Server CPU with N idle sockets joined to a room (audience), in four phases of `--seconds`
 *    each: the feed off (DASHBOARD_INTERVAL_MS=0, its own server), the feed on with nobody
 *    watching, the feed on with an operator's socket joined to `admin:dashboard` (what an open
 *    page costs), and nobody watching again (a control for drift). CPU is the server process's
 *    user + system time from /proc over the phase.
 *
 * Sockets come from hypercast-load (lib/load, the `connect` scenario: connect and join, then hold),
 * in its own worker processes, which spread them over 127.0.x.y source addresses; the server
 * reports over IPC how many sockets it holds. Loopback only; bounded; stops by itself.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { createDashboardFeed } from "../lib/dashboard/feed.ts";
import { createLocalPubSub } from "../lib/pubsub/index.ts";
import { createTelemetry } from "../lib/telemetry/index.ts";
import { versionPolicy } from "../lib/version-policy.ts";
import { eventually, within } from "../tests/helpers/processes.ts";
import type { DashboardServerMessage, DashboardServerReady } from "./dashboard/server.ts";
import { procCpuSeconds } from "./ws/rounds.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const { values: flags } = parseArgs({
  options: { sockets: { type: "string" }, seconds: { type: "string" }, clients: { type: "string" } },
});
const SOCKETS = Number(flags.sockets ?? 18_000);
const SECONDS = Number(flags.seconds ?? 30);
const CLIENTS = Number(flags.clients ?? Math.max(2, Math.ceil(SOCKETS / 9000)));
if (!Number.isInteger(SOCKETS) || SOCKETS < 1 || SOCKETS > 60_000)
  throw new Error(`--sockets must be 1–60,000, got ${flags.sockets}`);
if (!(SECONDS >= 5 && SECONDS <= 120)) throw new Error(`--seconds must be 5–120, got ${flags.seconds}`);
if (SOCKETS / CLIENTS > 18_000) throw new Error("over 18,000 sockets per load worker: add --clients");

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** The next IPC message of `child` that `accept` takes; rejects if the child exits first or after `ms`. */
function nextMessage<T>(child: ChildProcess, accept: (m: T) => boolean, ms: number, what: string): Promise<T> {
  let on!: (m: T) => void;
  let onExit!: (code: number | null) => void;
  const message = new Promise<T>((resolve, reject) => {
    on = (m) => accept(m) && resolve(m);
    onExit = (code) => reject(new Error(`${what}: the process exited with ${code}`));
    child.on("message", on);
    child.once("exit", onExit);
  });
  return within(ms, what, message).finally(() => {
    child.off("message", on);
    child.off("exit", onExit);
  });
}

/** Median build time of a snapshot with `topics` joined topics, each active in every interval. */
function buildTime(topics: number): { median: number; max: number } {
  const telemetry = createTelemetry();
  const feed = createDashboardFeed({
    telemetry,
    pubsub: createLocalPubSub(),
    intervalMs: 3_600_000,
    deprecatedVersions: versionPolicy().deprecated,
  });
  for (let i = 0; i < topics; i++)
    telemetry.emit(
      "channel.join.stop",
      { duration_ms: 0 },
      { topic: `room:${i}`, outcome: "ok", reason: undefined, user_id: 1 },
    );
  const times: number[] = [];
  for (let round = 0; round < 21; round++) {
    for (let i = 0; i < topics; i++)
      telemetry.emit(
        "broadcast.fanout",
        { deliveries: (i * 7919 + round) % 100 },
        { topic: `room:${i}`, event: "message:new" },
      );
    times.push(feed.tick().build_ms);
  }
  feed.close();
  times.sort((a, b) => a - b);
  return { median: times[10]!, max: times[20]! };
}

async function startServer(intervalMs: number): Promise<{ child: ChildProcess; ready: DashboardServerReady }> {
  const child = track(
    fork(new URL("./dashboard/server.ts", import.meta.url), [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, DASHBOARD_INTERVAL_MS: String(intervalMs) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    }),
  );
  const ready = await nextMessage<DashboardServerMessage>(child, (m) => m.kind === "ready", 60_000, "server");
  return { child, ready: ready as DashboardServerReady };
}

/** Sockets the server holds now (asked over IPC). */
async function connections(server: ChildProcess): Promise<number> {
  const answer = nextMessage<DashboardServerMessage>(server, (m) => m.kind === "connections", 10_000, "connections");
  server.send({ kind: "connections" });
  const m = await answer;
  return m.kind === "connections" ? m.count : 0;
}

/**
 * `hypercast-load connect`: SOCKETS sockets join the room as audience and hold (longer than every
 * phase); resolves once the server holds them all, with the load tool's process to stop later.
 */
async function openSockets(
  server: ChildProcess,
  ready: DashboardServerReady,
): Promise<{ load: ChildProcess; joined: number }> {
  const hold = 4 * (SECONDS + 3) + 60;
  const args = [
    "connect",
    "--url",
    `ws://127.0.0.1:${ready.port}/socket`,
    "--topic",
    ready.topic,
    "--param",
    `token=${ready.token}`,
  ];
  args.push(
    "--subscribers",
    String(SOCKETS),
    "--ramp",
    "0",
    "--duration",
    String(hold),
    "--workers",
    String(CLIENTS),
    "--quiet",
  );
  const load = track(
    spawn(process.execPath, ["--import", "tsx", "lib/load/cli.ts", ...args], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "inherit"],
    }),
  );
  const joined = await eventually(
    async () => {
      if (load.exitCode !== null)
        throw new Error(`hypercast-load exited with ${load.exitCode} before its sockets were open`);
      const open = await connections(server);
      return open >= SOCKETS ? open : undefined;
    },
    300_000,
    `${SOCKETS} sockets open`,
    500,
  );
  return { load, joined };
}

async function stopLoad(load: ChildProcess): Promise<void> {
  if (load.exitCode !== null || load.signalCode !== null) return;
  const exited = new Promise((resolve) => load.once("exit", resolve));
  load.kill("SIGTERM");
  await within(15_000, "hypercast-load to stop", exited).catch(() => load.kill("SIGKILL"));
}

/** Server CPU over one phase, as a percentage of one core. */
async function cpuOver(pid: number): Promise<number> {
  await new Promise((r) => setTimeout(r, 3000)); // let the previous step settle
  const before = procCpuSeconds(pid);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  return ((procCpuSeconds(pid) - before) / SECONDS) * 100;
}

/** An operator's socket joined to admin:dashboard, counting the snapshots it receives. */
async function openViewer(
  ready: DashboardServerReady,
): Promise<{ ws: WebSocket; frames: () => number; bytes: () => number }> {
  const ws = new WebSocket(
    `ws://127.0.0.1:${ready.port}/socket/websocket?vsn=2.0.0&token=${encodeURIComponent(ready.operatorToken)}`,
  );
  let frames = 0;
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => ws.send(JSON.stringify(["v", "v", "admin:dashboard", "phx_join", {}])));
    ws.on("message", (data: Buffer) => {
      const text = data.toString();
      if (text.includes('"phx_reply"'))
        return text.includes('"ok"') ? resolve() : reject(new Error(`viewer refused: ${text}`));
      if (text.includes('"snapshot"')) {
        frames += 1;
        bytes += data.length;
      }
    });
    ws.once("error", reject);
  });
  return { ws, frames: () => frames, bytes: () => bytes };
}

async function main(): Promise<void> {
  console.log("Snapshot build time (ms) by topics with local subscribers, median and max of 21 ticks:");
  for (const topics of [10, 1_000, 10_000, 100_000]) {
    const { median, max } = buildTime(topics);
    console.log(
      `  ${topics.toLocaleString("en-US").padStart(7)} topics: ${median.toFixed(3)} ms (max ${max.toFixed(3)})`,
    );
  }

  console.log(
    `\nServer CPU, ${SOCKETS.toLocaleString("en-US")} idle sockets joined as audience, ${SECONDS} s per phase (% of one core):`,
  );
  const off = await startServer(0);
  const offSockets = await openSockets(off.child, off.ready);
  const cpuOff = await cpuOver(off.child.pid!);
  console.log(`  feed off (DASHBOARD_INTERVAL_MS=0): ${cpuOff.toFixed(2)}%  (${offSockets.joined} joined)`);
  await stopLoad(offSockets.load);
  off.child.disconnect();

  const on = await startServer(1000);
  const onSockets = await openSockets(on.child, on.ready);
  const cpuOn = await cpuOver(on.child.pid!);
  console.log(`  feed on, nobody watching:           ${cpuOn.toFixed(2)}%  (${onSockets.joined} joined)`);
  const viewer = await openViewer(on.ready);
  const cpuViewer = await cpuOver(on.child.pid!);
  const snapshots = viewer.frames();
  console.log(
    `  feed on, one page watching:         ${cpuViewer.toFixed(2)}%  (${snapshots} snapshots received, ${Math.round(viewer.bytes() / Math.max(1, snapshots))} bytes each)`,
  );
  viewer.ws.close();
  const cpuAfter = await cpuOver(on.child.pid!);
  console.log(`  feed on, the page gone again:       ${cpuAfter.toFixed(2)}%`);
  console.log(
    `  dashboard cost: ${(cpuViewer - cpuOff).toFixed(2)} points of one core (feed + one viewer) over the feed-off server`,
  );
  await stopLoad(onSockets.load);
  on.child.disconnect();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
