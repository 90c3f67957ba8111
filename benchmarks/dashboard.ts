/**
 * `npm run bench:dashboard` — what the live dashboard costs a node.
 *
 *     npm run bench:dashboard                                        # 2,000 and 15,000 sockets, ~3 minutes
 *     npm run bench:dashboard -- --sockets 4000 --seconds 10 --rate 4
 *
 * 1. Snapshot build time against the number of topics with local subscribers (in this process:
 *    a real telemetry emitter and feed, topics joined and active through catalogue events).
 * 2. The telemetry handlers' cost per event (the dashboard's O(1) share of every request and
 *    broadcast), in this process: emitting with and without the feed attached.
 * 3. The dashboard's own CPU in a server holding N sockets joined to a room (audience), measured
 *    directly: the feed times every tick (process.cpuUsage around build + publish + the relay to
 *    the pages, lib/dashboard/feed.ts `cost()`), read over IPC before and after each phase of
 *    `--seconds`, as process CPU (every thread's: V8's background GC threads and the libuv pool
 *    count while a tick runs) and as wall time (the main thread's time in the tick, preemption
 *    by other processes included): two upper bounds. One operator's socket watches
 *    admin:dashboard throughout (so the relay is real). Two phases per socket count: idle, then a
 *    fanout of `--rate` broadcasts per second to every socket. The server process's total CPU
 *    (from /proc) is printed beside it for scale.
 *
 * Sockets come from hypercast-load (lib/load, the `connect` scenario: connect and join, then hold),
 * in its own worker processes, which spread them over 127.0.x.y source addresses; the server
 * reports over IPC how many sockets it holds. Loopback only; bounded; stops by itself.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { createDashboardFeed } from "../lib/dashboard/feed.ts";
import { createLocalPubSub } from "../lib/pubsub/index.ts";
import type { TickCost } from "../lib/dashboard/feed.ts";
import { createTelemetry, type Telemetry } from "../lib/telemetry/index.ts";
import { versionPolicy } from "../lib/version-policy.ts";
import { eventually, within } from "../tests/helpers/processes.ts";
import type { DashboardServerMessage, DashboardServerReady, DashboardServerRequest } from "./dashboard/server.ts";
import { commandLine } from "./lib/options.ts";
import { procCpuSeconds } from "./ws/rounds.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const { values: flags, usage } = commandLine(
  "bench:dashboard",
  "npm run bench:dashboard -- [--sockets N,N…] [--seconds S] [--rate BROADCASTS_PER_S]",
  { sockets: { type: "string" }, seconds: { type: "string" }, rate: { type: "string" } },
);
const COUNTS = (flags.sockets ?? "2000,15000").split(",").map(Number);
const SECONDS = Number(flags.seconds ?? 15);
const RATE = Number(flags.rate ?? 4);
for (const n of COUNTS)
  if (!Number.isInteger(n) || n < 1 || n > 18_000)
    usage(`--sockets takes counts of 1–18,000 (one process holds at most 20,000 files here), got ${flags.sockets}`);
if (!(SECONDS >= 5 && SECONDS <= 120)) usage(`--seconds must be 5–120, got ${flags.seconds}`);
if (!(RATE > 0 && RATE <= 50)) usage(`--rate must be 1–50 broadcasts per second, got ${flags.rate}`);

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
  server.send({ kind: "connections" } satisfies DashboardServerRequest);
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
  sockets: number,
): Promise<{ load: ChildProcess; joined: number }> {
  const hold = 2 * (SECONDS + 3) + 120;
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
    String(sockets),
    "--ramp",
    "0",
    "--duration",
    String(hold),
    "--workers",
    String(Math.max(2, Math.ceil(sockets / 9000))),
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
      return open >= sockets ? open : undefined;
    },
    300_000,
    `${sockets} sockets open`,
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

/** What the feed's ticks have cost the server so far (asked over IPC). */
async function costOf(server: ChildProcess): Promise<TickCost> {
  const answer = nextMessage<DashboardServerMessage>(server, (m) => m.kind === "cost", 10_000, "cost");
  server.send({ kind: "cost" } satisfies DashboardServerRequest);
  const m = await answer;
  if (m.kind !== "cost") throw new Error("expected the feed's cost");
  return m.cost;
}

interface Phase {
  ticks: number;
  /** The dashboard's CPU over the phase, in % of one core, and per tick (mean and worst). */
  percent: number;
  perTickMs: number;
  maxTickMs: number;
  /** Wall time per tick: the main thread's time in the tick, whatever other threads did meanwhile. */
  wallPerTickMs: number;
  wallPercent: number;
  /** The whole server process, in % of one core, for scale. */
  serverPercent: number;
}

/** One phase of SECONDS, after 3 s to settle: the feed's tick cost and the server's CPU over it. */
async function phase(server: ChildProcess): Promise<Phase> {
  await new Promise((r) => setTimeout(r, 3000));
  const before = await costOf(server);
  const cpuBefore = procCpuSeconds(server.pid!);
  const started = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const after = await costOf(server);
  const seconds = (performance.now() - started) / 1000;
  const ticks = after.ticks - before.ticks;
  const cpuMs = after.cpu_ms - before.cpu_ms;
  return {
    ticks,
    percent: (cpuMs / (seconds * 1000)) * 100,
    perTickMs: cpuMs / Math.max(1, ticks),
    maxTickMs: after.max_cpu_ms,
    wallPerTickMs: (after.wall_ms - before.wall_ms) / Math.max(1, ticks),
    wallPercent: ((after.wall_ms - before.wall_ms) / (seconds * 1000)) * 100,
    serverPercent: ((procCpuSeconds(server.pid!) - cpuBefore) / seconds) * 100,
  };
}

/** Nanoseconds per telemetry event, with the dashboard feed's handlers attached minus without (best of 5 runs each). */
function handlerCost(): { fanout: number; request: number } {
  const EVENTS = 500_000;
  const time = (telemetry: Telemetry, emit: (t: Telemetry, i: number) => void): number => {
    let best = Number.POSITIVE_INFINITY;
    for (let run = 0; run < 5; run++) {
      const started = performance.now();
      for (let i = 0; i < EVENTS; i++) emit(telemetry, i);
      best = Math.min(best, performance.now() - started);
    }
    return (best * 1e6) / EVENTS;
  };
  const fanout = (t: Telemetry, i: number) =>
    t.emit("broadcast.fanout", { deliveries: 1000 }, { topic: `room:${i % 100}`, event: "message:new" });
  const request = (t: Telemetry, i: number) =>
    t.emit(
      "http.request.stop",
      { duration_ms: 3 },
      {
        request_id: "r",
        method: "GET",
        path: "/v1/users/1",
        route: "/users/:id",
        status: 200,
        api_version: 1,
        user_id: i % 5000,
      },
    );
  const bare = createTelemetry();
  const watched = createTelemetry();
  const feed = createDashboardFeed({
    telemetry: watched,
    pubsub: createLocalPubSub(),
    intervalMs: 3_600_000,
    deprecatedVersions: versionPolicy().deprecated,
  });
  for (let i = 0; i < 100; i++)
    watched.emit(
      "channel.join.stop",
      { duration_ms: 0 },
      { topic: `room:${i}`, outcome: "ok", reason: undefined, user_id: 1 },
    );
  const result = {
    fanout: time(watched, fanout) - time(bare, fanout),
    request: time(watched, request) - time(bare, request),
  };
  feed.close();
  return result;
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
  const handlers = handlerCost();
  console.log(
    `\nTelemetry handlers (live stats + deprecated callers), per event: broadcast.fanout ${handlers.fanout.toFixed(0)} ns, http.request.stop ${handlers.request.toFixed(0)} ns`,
  );

  console.log(
    `\nThe dashboard's own CPU (tick: build + publish + relay to one watching page), ${SECONDS} s per phase, interval 1 s:`,
  );
  for (const sockets of COUNTS) {
    const server = await startServer(1000);
    const { load, joined } = await openSockets(server.child, server.ready, sockets);
    const viewer = await openViewer(server.ready);
    const line = (name: string, p: Phase) =>
      console.log(
        `  ${joined.toLocaleString("en-US").padStart(6)} sockets, ${name}: ${p.ticks} ticks; per tick ` +
          `${p.perTickMs.toFixed(3)} ms process CPU, ${p.wallPerTickMs.toFixed(3)} ms wall → ` +
          `dashboard ${p.percent.toFixed(3)}% of a core by CPU, ${p.wallPercent.toFixed(3)}% by wall ` +
          `(worst tick so far ${p.maxTickMs.toFixed(2)} ms CPU); whole server ${p.serverPercent.toFixed(1)}%`,
      );
    line("idle      ", await phase(server.child));
    server.child.send({ kind: "fanout", perSecond: RATE } satisfies DashboardServerRequest);
    line(`fanout ${RATE}/s`, await phase(server.child));
    server.child.send({ kind: "fanout", perSecond: 0 } satisfies DashboardServerRequest);
    console.log(
      `          the page received ${viewer.frames()} snapshots, ${Math.round(viewer.bytes() / Math.max(1, viewer.frames()))} bytes each`,
    );
    viewer.ws.close();
    await stopLoad(load);
    const exited = new Promise((resolve) => server.child.once("exit", resolve));
    server.child.disconnect();
    await within(30_000, "the server to stop", exited).catch(() => server.child.kill("SIGKILL"));
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
