/**
 * One load run, from the coordinator's side: forks the worker processes, gives each its share of
 * sockets, publishers and source addresses, moves them through the phases (connect and join → start
 * → publish or hold → drain → stop), gathers their progress into a timeline and their final reports
 * into the result, and judges whether the run can be trusted (the self-check).
 *
 *     const result = await runLoad(options, { onProgress: (p) => … })
 *
 * With --api it first mints a socket token (and creates a room when no topic was given), ./api.ts.
 *
 * Phases: every socket is connected and joined (or has failed) before t0; fanout and churn publish
 * from t0 for --duration seconds, then wait for late deliveries and push replies until all that can
 * still come (to the subscribers that joined) arrived or none arrived for --drain seconds; connect holds for --duration; presence waits until every socket
 * sees every other one (or --duration passes).
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { mintToken } from "./api.ts";
import { markerPrefix, nowMs } from "./frames.ts";
import { createHistogram, decodeInto, summarize, type Histogram } from "./histograms.ts";
import { startScraper, type Scraper } from "./metrics.ts";
import { socketUrl, type LoadOptions } from "./options.ts";
import { preflight } from "./preflight.ts";
import { judgeClients } from "./self-check.ts";
import {
  zeroCounters,
  type Counts,
  type Final,
  type LoadResult,
  type Progress,
  type TimelinePoint,
  type WorkerCounters,
  type WorkerMessage,
  type WorkerPlan,
} from "./types.ts";

export interface RunHooks {
  /** Called every second with the latest timeline point and the totals so far. */
  onProgress?: (point: TimelinePoint, totals: WorkerCounters, phase: string) => void;
  /** Called once the worker processes are forked, with their process ids. */
  onWorkers?: (pids: number[]) => void;
}

export class PreflightError extends Error {}

const share = (total: number, parts: number, i: number) => Math.floor(total / parts) + (i < total % parts ? 1 : 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sumCounters(list: WorkerCounters[]): WorkerCounters {
  const total = { ...list[0]! };
  for (const c of list.slice(1)) for (const k of Object.keys(total) as Array<keyof WorkerCounters>) total[k] += c[k];
  return total;
}

function mergeCounts(into: Record<string, Counts>, from: Record<string, Counts>): void {
  for (const [group, counts] of Object.entries(from)) {
    const target = (into[group] ??= {});
    for (const [k, n] of Object.entries(counts)) target[k] = (target[k] ?? 0) + n;
  }
}

function forkWorker(): ChildProcess {
  const tsx = import.meta.resolve("tsx");
  return fork(fileURLToPath(new URL("./worker.ts", import.meta.url)), [], {
    execArgv: ["--import", tsx],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

export async function runLoad(given: LoadOptions, hooks: RunHooks = {}): Promise<LoadResult> {
  const startedAt = new Date();
  let options = given;
  if (options.api !== undefined) {
    const minted = await mintToken(options.api, options.email!, options.password!, options.topic);
    options = { ...options, topic: minted.topic, params: { ...options.params, token: minted.socketToken } };
  }
  const k = options.workers;
  const urls = options.urls.map((u) => socketUrl(u, options.params));
  const topic = options.topic!;
  const runId = randomBytes(4).toString("hex");
  const socketsPerWorker = Array.from(
    { length: k },
    (_, i) => share(options.subscribers, k, i) + share(options.churners, k, i) + share(options.publishers, k, i),
  );
  const check = preflight({ socketsPerWorker, hosts: options.urls.map((u) => new URL(u).hostname) });
  if (check.problems.length > 0) throw new PreflightError(`preflight failed:\n- ${check.problems.join("\n- ")}`);
  const warnings = [...check.warnings];

  const workers = Array.from({ length: k }, forkWorker);
  hooks.onWorkers?.(workers.map((w) => w.pid!));
  const latest: Array<Progress | undefined> = new Array(k).fill(undefined);
  const finals: Array<Final | undefined> = new Array(k).fill(undefined);
  const bucket = createHistogram();
  const soFar = createHistogram();
  const timeline: TimelinePoint[] = [];
  const cpuByWorker: number[][] = Array.from({ length: k }, () => []);
  const lagByWorker: number[][] = Array.from({ length: k }, () => []);
  let clientCpuMicros = 0;
  let subscriberOffset = 0;
  workers.forEach((w, i) => {
    w.on("message", (m: WorkerMessage) => {
      if (m.kind === "progress") {
        latest[i] = m;
        clientCpuMicros += m.cpuMicros;
        decodeInto(bucket, m.latency);
        decodeInto(soFar, m.latency);
        cpuByWorker[i]!.push(m.cpuMicros / 1000 / Math.max(1, m.wallMs));
        lagByWorker[i]!.push(m.lagP99Ms);
      } else finals[i] = m;
    });
    const subscribers = share(options.subscribers, k, i);
    const plan: WorkerPlan = {
      kind: "plan",
      id: i,
      scenario: options.scenario,
      urls,
      topic,
      joinPayload: options.joinPayload,
      event: options.event,
      payload: options.payload,
      subscriberOffset,
      subscribers,
      publishers: Array.from({ length: options.publishers }, (_, p) => p).filter((p) => p % k === i),
      totalPublishers: options.publishers,
      churners: share(options.churners, k, i),
      churnRate: options.churnRate / k,
      rate: options.rate,
      ramp: options.ramp / k,
      inFlight: options.inFlight,
      addresses: check.addresses[i]!,
      client: options.client,
      connectTimeoutMs: options.connectTimeoutS * 1000,
      presenceTarget: options.subscribers,
      markerPrefix: markerPrefix(runId),
    };
    subscriberOffset += subscribers;
    w.send(plan);
  });

  const scraper: Scraper | undefined = options.metrics === undefined ? undefined : startScraper(options.metrics);
  const runStart = nowMs();
  const deadline = runStart + options.maxSeconds * 1000;
  let phase = "connect";
  // Per worker: the index of its first CPU/lag sample inside the measured window.
  let measureFrom: number[] = workers.map(() => 0);
  let prevReceived = 0;
  let prevAt = runStart;
  const totals = () => sumCounters(latest.map((p) => p?.counters ?? zeroCounters()));
  const tick = setInterval(() => {
    const now = nowMs();
    const t = totals();
    const s = summarize(bucket);
    bucket.reset();
    const server = scraper?.samples.at(-1);
    const previousServer = scraper?.samples.at(-2);
    const point: TimelinePoint = {
      t: Math.round((now - runStart) / 100) / 10,
      connected: t.connected - t.closed,
      joined: t.joined,
      deliveries_per_s: ((t.received - prevReceived) * 1000) / (now - prevAt),
      p50: s.p50,
      p90: s.p90,
      p99: s.p99,
      max: s.max,
      p99_so_far: summarize(soFar).p99,
      client_cpu: latest.reduce((a, p) => a + (p === undefined ? 0 : p.cpuMicros / 1000 / Math.max(1, p.wallMs)), 0),
      lag_p99_ms: Math.max(0, ...latest.map((p) => p?.lagP99Ms ?? 0)),
      ...(server === undefined ? {} : { server_rss_mib: server.rssBytes / 1048576, server_sockets: server.sockets }),
      ...(server !== undefined && previousServer !== undefined
        ? { server_cpu: (server.cpuSeconds - previousServer.cpuSeconds) / ((server.at - previousServer.at) / 1000) }
        : {}),
    };
    prevReceived = t.received;
    prevAt = now;
    timeline.push(point);
    hooks.onProgress?.(point, t, phase);
  }, 1000);

  const invalid: string[] = [];
  let t0 = 0;
  try {
    // Phase 1: every socket joined or failed.
    while (!latest.every((p) => p?.settled)) {
      if (nowMs() > deadline) throw new Error("deadline");
      if (workers.some((w) => w.exitCode !== null)) throw new Error("a worker process exited early");
      await sleep(100);
    }
    const joinedAtStart = totals();
    t0 = nowMs() + 300;
    const durationMs = options.durationS * 1000;
    if (options.scenario === "fanout" || options.scenario === "churn") measureFrom = cpuByWorker.map((c) => c.length);
    for (const w of workers) w.send({ kind: "start", t0, durationMs });
    phase = options.scenario === "connect" ? "hold" : options.scenario === "presence" ? "presence" : "publish";
    if (options.scenario === "presence") {
      while (totals().presenceComplete < joinedAtStart.subscribed && nowMs() < t0 + durationMs && nowMs() < deadline)
        await sleep(100);
    } else await sleep(Math.max(0, Math.min(deadline, t0 + durationMs) - nowMs()));
    if (options.scenario === "fanout" || options.scenario === "churn") {
      phase = "drain";
      await sleep(1100); // the workers' last progress report after the final send
      // Until every delivery that can still come (to the subscribers that joined) has come and every
      // push has its reply, or nothing arrived for --drain seconds.
      let last = "";
      let progressAt = nowMs();
      for (;;) {
        const t = totals();
        const answered = t.acknowledged + t.refused >= t.published;
        if ((t.received >= t.published * joinedAtStart.subscribed && answered) || nowMs() > deadline) break;
        const seen = `${t.received} ${t.acknowledged} ${t.refused}`;
        if (seen !== last) progressAt = nowMs();
        last = seen;
        if (nowMs() - progressAt > options.drainS * 1000) break;
        await sleep(200);
      }
    }
    if (nowMs() > deadline) invalid.push(`the run did not finish within --max-seconds ${options.maxSeconds}`);
  } catch (error) {
    if ((error as Error).message === "deadline")
      invalid.push(`the sockets had not all connected and joined within --max-seconds ${options.maxSeconds}`);
    else invalid.push((error as Error).message);
  } finally {
    clearInterval(tick);
    phase = "stop";
    for (const w of workers) if (w.connected) w.send({ kind: "stop" });
    const until = nowMs() + 15_000;
    while (finals.some((f, i) => f === undefined && workers[i]!.exitCode === null) && nowMs() < until) await sleep(50);
    for (const w of workers) if (w.exitCode === null) w.kill("SIGKILL");
    await scraper?.stop();
  }

  // The self-check: could the clients keep up?
  const judged = judgeClients({
    cpu: cpuByWorker,
    lag: lagByWorker,
    measureFrom,
    cores: Math.min(k, availableParallelism()),
    maxClientCpu: options.maxClientCpu,
    maxLagMs: options.maxLagMs,
  });
  invalid.push(...judged.invalid);
  warnings.push(...judged.warnings);

  return buildResult(options, {
    startedAt,
    runStart,
    t0,
    urls,
    topic,
    runId,
    finals: finals.filter((f): f is Final => f !== undefined),
    invalid,
    warnings,
    timeline,
    scraper,
    cpuByWorker,
    lagByWorker,
    clientCpuMicros,
  });
}

/**
 * A presence storm's length: from the first socket any worker dialled to the last view that became
 * complete (NaN when none did). Not from the run's start, which is before the workers booted.
 */
export function stormCompleteMs(finals: Array<Pick<Final, "firstDialAt" | "presenceCompleteAt">>): number {
  const dials = finals.map((f) => f.firstDialAt).filter((at) => at > 0);
  const completeAt = Math.max(0, ...finals.map((f) => f.presenceCompleteAt));
  return dials.length === 0 || completeAt === 0 ? Number.NaN : Math.round(completeAt - Math.min(...dials));
}

interface Gathered {
  runId: string;
  startedAt: Date;
  runStart: number;
  t0: number;
  urls: string[];
  topic: string;
  finals: Final[];
  invalid: string[];
  warnings: string[];
  timeline: TimelinePoint[];
  scraper: Scraper | undefined;
  cpuByWorker: number[][];
  lagByWorker: number[][];
  /** CPU time of all workers (user + system), from their reports. */
  clientCpuMicros: number;
}

function buildResult(options: LoadOptions, g: Gathered): LoadResult {
  const merge = (pick: (f: Final) => string): Histogram =>
    g.finals.reduce((h, f) => decodeInto(h, pick(f)), createHistogram());
  const c = g.finals.length === 0 ? zeroCounters() : sumCounters(g.finals.map((f) => f.counters));
  if (g.finals.length < options.workers)
    g.invalid.push(`${options.workers - g.finals.length} worker(s) sent no final report`);
  const errors: Record<string, Counts> = {};
  for (const f of g.finals) mergeCounts(errors, f.errors);
  const publishing = options.scenario === "fanout" || options.scenario === "churn";
  // README, Load testing: every subscriber asked for is expected to receive every message published; one
  // that never joined (or closed) misses its share.
  const expected = publishing ? c.published * options.subscribers : 0;
  const missing = Math.max(0, expected - c.received);
  const unacknowledged = Math.max(0, c.published - c.acknowledged - c.refused);
  if (unacknowledged > 0) g.warnings.push(`${unacknowledged} push(es) had no reply by the end of the drain`);
  if (c.unsent > 0)
    g.invalid.push(
      `${c.unsent} message(s) due were never sent: a publisher's socket was not joined (closed, left or refused; see errors.close and errors.channel)`,
    );
  const lastDelivery = Math.max(0, ...g.finals.map((f) => f.lastDeliveryAt));
  const deliverySeconds = lastDelivery > g.t0 ? (lastDelivery - g.t0) / 1000 : Number.NaN;
  if (c.joined === 0) g.invalid.push("no socket joined: nothing was measured");
  const frames = c.frames;
  const clientCpu = g.clientCpuMicros / 1e6;
  const samples = g.scraper?.samples ?? [];
  const result: LoadResult = {
    scenario: options.scenario,
    valid: g.invalid.length === 0,
    invalid_reasons: g.invalid,
    warnings: g.warnings,
    started_at: g.startedAt.toISOString(),
    run_id: g.runId,
    duration_s: Math.round((nowMs() - g.runStart) / 100) / 10,
    target: { urls: g.urls.map((u) => u.replace(/([?&]token=)[^&]*/, "$1…")), topic: g.topic },
    settings: {
      subscribers: options.subscribers,
      publishers: options.publishers,
      rate: options.rate,
      duration_s: options.durationS,
      ramp: options.ramp,
      workers: options.workers,
      client: options.client,
      event: options.event,
      churners: options.churners,
      churn_rate: options.churnRate,
    },
    connections: {
      attempted: c.attempted,
      connected: c.connected,
      joined: c.joined,
      failed: c.failed,
      closed: c.closed,
    },
    connect_ms: summarize(merge((f) => f.histograms.connect)),
    join_ms: summarize(merge((f) => f.histograms.join)),
    reply_ms: summarize(merge((f) => f.histograms.reply)),
    latency_ms: summarize(merge((f) => f.histograms.latency)),
    messages: {
      published: c.published,
      acknowledged: c.acknowledged,
      refused: c.refused,
      unacknowledged,
      unsent: c.unsent,
    },
    deliveries: {
      expected,
      received: c.received,
      missing,
      duplicates: c.duplicates,
      out_of_order: c.outOfOrder,
      foreign: c.foreign,
      completeness: expected === 0 ? (publishing ? 0 : 1) : (expected - missing) / expected,
    },
    throughput: {
      deliveries_per_s: c.received / deliverySeconds || 0,
      published_per_s: options.durationS > 0 ? c.published / options.durationS : 0,
    },
    errors,
    by_url: g.urls.map((url, i) => ({
      url: url.replace(/([?&]token=)[^&]*/, "$1…"),
      subscribers: g.finals.reduce((a, f) => a + (f.subscribedByUrl[i] ?? 0), 0),
      received: g.finals.reduce((a, f) => a + (f.receivedByUrl[i] ?? 0), 0),
      latency_ms: summarize(merge((f) => f.latencyByUrl[i] ?? "")),
    })),
    client: {
      kind: options.client,
      workers: options.workers,
      cpu_s: Math.round(clientCpu * 100) / 100,
      max_core_fraction: Math.max(0, ...g.cpuByWorker.flat()),
      lag_p99_ms: Math.max(0, ...g.lagByWorker.flat()),
      frames,
      cpu_us_per_frame: frames === 0 ? Number.NaN : (clientCpu * 1e6) / frames,
    },
    timeline: g.timeline,
  };
  if (options.scenario === "presence") {
    const diffs = summarize(merge((f) => f.histograms.diffsPerSocket));
    result.presence = {
      sockets: c.subscribed,
      complete: c.presenceComplete,
      target_metas: options.subscribers,
      view_complete_ms: summarize(merge((f) => f.histograms.presenceView)),
      storm_complete_ms: c.presenceComplete === c.subscribed ? stormCompleteMs(g.finals) : Number.NaN,
      // Diff counts are recorded ×1000 (as if they were µs), so summarize() reads them back as counts.
      diffs_per_socket: diffs,
    };
  }
  if (options.scenario === "churn") {
    result.churn = {
      churners: options.churners,
      leaves: c.leaves,
      rejoins: c.rejoins,
      rejoin_ms: summarize(merge((f) => f.histograms.rejoin)),
    };
  }
  if (g.scraper !== undefined && options.metrics !== undefined) {
    const first = samples[0];
    const last = samples.at(-1);
    result.server = {
      metrics_url: options.metrics,
      cpu_s:
        first !== undefined && last !== undefined
          ? Math.round((last.cpuSeconds - first.cpuSeconds) * 100) / 100
          : Number.NaN,
      rss_max_mib: Math.round(Math.max(0, ...samples.map((s) => s.rssBytes || 0)) / 10485.76) / 100,
      sockets_max: Math.max(0, ...samples.map((s) => s.sockets || 0)),
      samples: samples.length,
      errors: g.scraper.errors,
    };
  }
  return result;
}
