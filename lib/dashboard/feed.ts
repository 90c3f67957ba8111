/**
 * The dashboard feed: every `intervalMs` this node builds a compact snapshot of itself
 * (snapshot.ts) from the telemetry handlers it attaches (live-stats.ts, version-usage.ts) plus
 * a few process readings, and publishes it on the PubSub topic `admin:dashboard`. Clustered, the
 * PubSub carries it through Redis, so every node hears every node: the admin channel relays those
 * broadcasts to the operators' sockets, and this feed keeps a short history of each node it hears
 * from, pushed to a page when it joins so its charts start full.
 *
 * Cost per tick: O(topics with local subscribers) for the busiest-topics pass, one presence count
 * per listed topic (O(K)), O(window) for the deprecated callers, one publish, and, clustered, one
 * Redis PING started in the background (its round trip is shown at the next tick; the tick never
 * waits for it); nothing walks sockets. Memory: `historyMs / intervalMs` compact points per node
 * heard from.
 *
 *     const feed = createDashboardFeed({ telemetry, pubsub, db, cluster, intervalMs: 1000 })
 *     feed.history() // → { interval_ms: 1000, nodes: { "web-1:4242:…": [ …snapshots… ] } }
 *     feed.close()
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createNodeId } from "../cluster/node-id.ts";
import type { Db } from "../db/index.ts";
import type { Presence } from "../presence/index.ts";
import type { PubSub } from "../pubsub/index.ts";
import type { Telemetry } from "../telemetry/index.ts";
import { createLiveStats, type LiveStats } from "../telemetry/live-stats.ts";
import { poolOf } from "../telemetry/metrics.ts";
import { createVersionUsage, type VersionUsage } from "../telemetry/version-usage.ts";
import type { ApiVersion } from "../versions.ts";
import type { DashboardHistory, NodeSnapshot, RedisFigures } from "./snapshot.ts";

/** The PubSub topic and channel topic of the dashboard; each snapshot travels as `dashboard.snapshot` (lib/pubsub/events.ts). */
export const DASHBOARD_TOPIC = "admin:dashboard";

export interface DashboardFeedOptions {
  telemetry: Telemetry;
  pubsub: PubSub;
  db?: Db;
  /** Where the busiest topics' presence counts are read (without it they show 0). */
  presence?: Pick<Presence, "count">;
  /**
   * Clustered: its id names this node, its Redis state is the Redis status, and `ping` is timed
   * once per tick for the Redis round trip.
   */
  cluster?: { nodeId: string; redis(): "ok" | "unavailable"; ping(): Promise<void> } | undefined;
  /** Node name when not clustered (default: the host name). */
  nodeName?: string | undefined;
  /** How often a snapshot is published; 0 turns the feed off (no handlers, no timer). */
  intervalMs: number;
  /** The versions whose top callers are shown: the deprecated ones (`config.versions.deprecated`). */
  deprecatedVersions: Iterable<ApiVersion>;
  /** How much history is kept per node (default 180,000 ms). */
  historyMs?: number;
  /**
   * Most history points pushed on a join, all nodes together (default 600, about 0.4 MB): the push is
   * one frame, which must stay well under the socket's 1 MiB send buffer. Beyond it each node's
   * points are thinned evenly, so the charts keep their span with fewer points.
   */
  maxHistoryPoints?: number;
  /** Which socket close counts as a slow consumer's (see LiveStatsOptions). */
  slowConsumerCode?: number;
}

export interface DashboardFeed {
  readonly intervalMs: number;
  /** Recent snapshots of every node heard from within the history, oldest first (busiest topics and callers only on the newest), thinned to `maxHistoryPoints`. */
  history(): DashboardHistory;
  /** Builds and publishes this node's snapshot now (the timer calls it; so can tests and benchmarks). */
  tick(): NodeSnapshot;
  /**
   * What the ticks have cost this process since the feed started: CPU (user + system) and wall
   * time spent building, publishing and relaying to this node's pages (the local relay runs inside
   * the publish), and the most CPU one tick took. The telemetry handlers' O(1) per event is not in it.
   */
  cost(): TickCost;
  /** Stops the timer and detaches the handlers. */
  close(): void;
}

export interface TickCost {
  ticks: number;
  cpu_ms: number;
  wall_ms: number;
  max_cpu_ms: number;
}

const PACKAGE_VERSION = packageVersion();

/** Hypercast's version from its package.json: two levels up from the sources, three from the built dist/lib/dashboard/. */
function packageVersion(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "hypercast" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not there: try the next level
    }
  }
  return "unknown";
}

export function createDashboardFeed(options: DashboardFeedOptions): DashboardFeed {
  const { intervalMs, pubsub } = options;
  const historyMs = options.historyMs ?? 180_000;
  const maxPoints = options.maxHistoryPoints ?? 600;
  const node = options.cluster?.nodeId ?? createNodeId(options.nodeName);
  const histories = new Map<string, NodeSnapshot[]>();
  if (intervalMs <= 0) {
    const off = () => {
      throw new Error("the dashboard feed is off (DASHBOARD_INTERVAL_MS=0)");
    };
    return {
      intervalMs,
      history: () => ({ interval_ms: intervalMs, nodes: {} }),
      tick: off,
      cost: () => ({ ticks: 0, cpu_ms: 0, wall_ms: 0, max_cpu_ms: 0 }),
      close() {},
    };
  }

  const presence = options.presence;
  const stats: LiveStats = createLiveStats({
    ...(options.slowConsumerCode === undefined ? {} : { slowConsumerCode: options.slowConsumerCode }),
    ...(presence === undefined ? {} : { presences: (topic: string) => presence.count(topic) }),
    // A page watching must not show up as its own joins, deliveries and busiest topic.
    ignoreTopics: new Set([DASHBOARD_TOPIC]),
  });
  const usage: VersionUsage = createVersionUsage({ versions: options.deprecatedVersions });
  const detachStats = options.telemetry.attach(stats.handle);
  const detachUsage = options.telemetry.attach(usage.handle);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const redis = watchRedis(options.cluster, intervalMs);
  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();

  function build(): NodeSnapshot {
    const started = performance.now();
    const elapsed = started - lastAt;
    const cpu = process.cpuUsage();
    const cpuMicros = cpu.user - lastCpu.user + cpu.system - lastCpu.system;
    lastCpu = cpu;
    lastAt = started;
    const figures = stats.take(elapsed);
    const memory = process.memoryUsage();
    const pool = poolOf(options.db);
    const snapshot: NodeSnapshot = {
      node,
      at: Date.now(),
      interval_ms: intervalMs,
      version: PACKAGE_VERSION,
      node_version: process.version,
      uptime_s: Math.round(process.uptime()),
      http: figures.http,
      callers: usage.versions.map((v) => usage.top(v, 10)),
      sockets: figures.sockets,
      topics: figures.topics,
      db: {
        in_use: pool === undefined ? null : pool.numUsed(),
        free: pool === undefined ? null : pool.numFree(),
        waiting: pool === undefined ? null : pool.numPendingAcquires(),
        ...figures.queries,
      },
      redis: redis.read(),
      process: {
        rss_bytes: memory.rss,
        heap_used_bytes: memory.heapUsed,
        heap_total_bytes: memory.heapTotal,
        cpu_percent: Math.round((cpuMicros / 10 / Math.max(1, elapsed)) * 10) / 10,
        loop_p99_ms: Math.round(loop.percentile(99) / 1e4) / 100,
        loop_max_ms: Math.round(loop.max / 1e4) / 100,
      },
      build_ms: 0,
    };
    loop.reset();
    snapshot.build_ms = Math.round((performance.now() - started) * 1000) / 1000;
    return snapshot;
  }

  function remember(snapshot: NodeSnapshot): void {
    let points = histories.get(snapshot.node);
    if (points === undefined) histories.set(snapshot.node, (points = []));
    const previous = points[points.length - 1];
    // Only the newest point keeps its tables; older ones are chart points.
    if (previous !== undefined)
      points[points.length - 1] = { ...previous, callers: [], topics: { count: previous.topics.count, top: [] } };
    points.push(snapshot);
    const oldest = snapshot.at - historyMs;
    while (points.length > 0 && points[0]!.at < oldest) points.shift();
  }

  const unsubscribe = pubsub.subscribe(DASHBOARD_TOPIC, (message) => {
    if (message.event === "dashboard.snapshot") remember(message.payload);
  });
  const spent: TickCost = { ticks: 0, cpu_ms: 0, wall_ms: 0, max_cpu_ms: 0 };
  const tick = (): NodeSnapshot => {
    // Two clock reads per tick (a getrusage and a monotonic clock): the measurement costs microseconds.
    const cpu = process.cpuUsage();
    const started = performance.now();
    const snapshot = build();
    pubsub.broadcast(DASHBOARD_TOPIC, "dashboard.snapshot", snapshot);
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    spent.ticks += 1;
    spent.cpu_ms += cpuMs;
    spent.wall_ms += performance.now() - started;
    spent.max_cpu_ms = Math.max(spent.max_cpu_ms, cpuMs);
    return snapshot;
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();

  return {
    intervalMs,
    tick,
    cost: () => ({ ...spent }),
    history() {
      const now = Date.now();
      const nodes: Record<string, NodeSnapshot[]> = {};
      for (const [id, points] of histories) {
        const last = points[points.length - 1];
        if (last === undefined || last.at < now - historyMs) histories.delete(id);
      }
      const perNode = Math.max(1, Math.floor(maxPoints / Math.max(1, histories.size)));
      for (const [id, points] of histories) nodes[id] = thin(points, perNode);
      return { interval_ms: intervalMs, nodes };
    },
    close() {
      clearInterval(timer);
      redis.close();
      unsubscribe();
      detachStats();
      detachUsage();
      loop.disable();
    },
  };
}

/** At most `most` of the points, evenly spaced, always ending with the newest. */
function thin<T>(points: readonly T[], most: number): T[] {
  if (points.length <= most) return [...points];
  const step = points.length / most;
  const out: T[] = [];
  for (let i = 0; i < most; i++) out.push(points[Math.round(points.length - 1 - (most - 1 - i) * step)]!);
  return out;
}

/**
 * The cluster link's view of Redis (connections up, lease renewed) and a PING round trip. `read()`
 * (each tick) reports the newest completed round trip and starts the next PING unless one is
 * still out; it never waits. A PING without an answer within `boundMs` counts as failed (null), and
 * its late answer is ignored, so a hung command cannot freeze the figure or stack up PINGs.
 */
function watchRedis(
  cluster: DashboardFeedOptions["cluster"],
  boundMs: number,
): { read(): RedisFigures; close(): void } {
  if (cluster === undefined) return { read: () => ({ status: "off", ping_ms: null }), close() {} };
  let pingMs: number | null = null;
  let out: { timer: NodeJS.Timeout } | undefined;
  function ping(): void {
    const started = performance.now();
    const attempt: { timer: NodeJS.Timeout } = {
      timer: setTimeout(() => {
        if (out !== attempt) return;
        out = undefined;
        pingMs = null;
      }, boundMs),
    };
    attempt.timer.unref();
    out = attempt;
    cluster!.ping().then(
      () => settle(attempt, Math.round((performance.now() - started) * 1000) / 1000),
      () => settle(attempt, null),
    );
  }
  function settle(attempt: { timer: NodeJS.Timeout }, ms: number | null): void {
    clearTimeout(attempt.timer);
    if (out !== attempt) return; // answered after its bound: already counted as failed
    out = undefined;
    pingMs = ms;
  }
  return {
    read() {
      const status = cluster.redis() === "ok" ? "ok" : "down";
      const figures: RedisFigures = { status, ping_ms: status === "ok" ? pingMs : null };
      if (out === undefined) ping();
      return figures;
    },
    close() {
      if (out !== undefined) clearTimeout(out.timer);
      out = undefined;
    },
  };
}
