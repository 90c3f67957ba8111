/**
 * One round's readings of one target, as benchmarks/joins.ts describes them: `idleRss` on a process
 * left alone (RSS a few seconds after start, then again after --idle-rss-after seconds), `measure`
 * on a second fresh one: its idle CPU, then phase 1 (--first sockets joined and held) and phase 2
 * (the rest, up to --total), with the server's CPU, RSS and young generation read from outside
 * between them. A socket that failed to join throws; a load run that was not valid is recorded
 * (`valid`, `reasons`) for the report to withhold its ratios.
 *
 *     const rss = await idleRss(target, options)
 *     const round = await measure(otherTarget, rss, { options, pins, group, perfWindows })
 */
import type { ProcessGroup } from "../cluster/processes.ts";
import type { PerfWindow } from "../lib/perf.ts";
import { procCpuTimes, procRssBytes, type Pins } from "../ws/rounds.ts";
import { startLoad } from "./background-load.ts";
import type { JoinsOptions } from "./options.ts";
import type { Target } from "./targets.ts";

/**
 * The load generator's event-loop bound, raised from its default of 100 ms: a connect storm lags the
 * client's loop in bursts, which delays its join timings but not what the server spends; the client
 * saturating its core still makes the run invalid.
 */
export const MAX_LAG_MS = 250;

export interface IdleRss {
  bootRssMiB: number;
  idleRssMiB: number;
}

export interface Round extends IdleRss {
  cpuPerJoinUs: [number, number];
  /**
   * Phase 2's CPU per join split, each net of idle: in user space (JavaScript, V8, uWebSockets.js,
   * libuv) and in the kernel on the server's behalf (TCP, epoll), which the reference pays alike.
   */
  phase2SplitUs: { user: number; system: number };
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

/** What a measurement runs with; phase 2 of each is added to `perfWindows`, for `--perf`. */
export interface Measurement {
  options: JoinsOptions;
  pins: Pins;
  group: ProcessGroup;
  perfWindows: PerfWindow[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A phase's CPU per join net of idle, in µs; NaN ("n/a") when the phase used under 0.2 s of CPU:
 * /proc counts CPU in 10 ms ticks, too coarse for a few hundred joins (the smoke run's size). At
 * 0.2 s a tick is 5 % of the figure; raw uWS's 5,000 joins of phase 1 take about 0.4 s.
 */
function perJoin(cpuSeconds: number, idleSeconds: number, joins: number): number {
  return cpuSeconds < 0.2 ? Number.NaN : ((cpuSeconds - idleSeconds) * 1e6) / joins;
}

const seconds = (times: { user: number; system: number }): number => times.user + times.system;

/** RSS a few seconds after start, then after --idle-rss-after seconds with nothing sent. */
export async function idleRss(target: Target, options: JoinsOptions): Promise<IdleRss> {
  await sleep(options.settleSeconds * 1000 + 2_000);
  const bootRssMiB = procRssBytes(target.pid) / 1048576;
  await sleep(options.idleRssAfterSeconds * 1000);
  return { bootRssMiB, idleRssMiB: procRssBytes(target.pid) / 1048576 };
}

export async function measure(target: Target, rss: IdleRss, run: Measurement): Promise<Round> {
  const { options, pins, group } = run;
  const { first, total, ramp, settleSeconds } = options;
  await sleep(settleSeconds * 1000 + 2_000);
  // What the server spends with nothing to do (timers, metrics, the dashboard feed), per second, so
  // that a phase's CPU counts what its joins cost, not the seconds it lasted.
  const idle0 = procCpuTimes(target.pid);
  const idleT0 = performance.now();
  await sleep(options.idleSeconds * 1000);
  const idle1 = procCpuTimes(target.pid);
  const idleMs = performance.now() - idleT0;
  const idleUserPerMs = (idle1.user - idle0.user) / idleMs;
  const idleSystemPerMs = (idle1.system - idle0.system) / idleMs;
  const idlePerMs = idleUserPerMs + idleSystemPerMs;
  const common = [
    ...["--url", target.url, "--topic", target.topic, "--param", `token=${target.token}`, "--ramp", String(ramp)],
    ...["--max-lag-ms", String(MAX_LAG_MS)],
    // Audience joins unless --presence: the reference tracks nothing, and a tracked join's cost is
    // mostly the presence diffs it sends to everyone already in the room (bench:ws and the load
    // generator's presence scenario measure those).
    ...(options.presence ? [] : ["--join-payload", '{"presence":false}']),
  ];
  const cpu0 = procCpuTimes(target.pid);
  const t0 = performance.now();
  // Phase 1 holds its sockets while phase 2 joins and is measured, with a margin.
  const hold = Math.ceil((total - first) / Math.min(ramp, 1_000)) + 4 * settleSeconds + 20;
  const phase1 = startLoad(pins, group, [
    "connect",
    ...common,
    "--subscribers",
    String(first),
    "--duration",
    String(hold),
  ]);
  await phase1.joined(first);
  await sleep(settleSeconds * 1000);
  // Read before phase 2's CPU window opens (a scrape costs about a millisecond).
  const young1 = (await target.youngGenerationBytes?.()) ?? Number.NaN;
  const cpu1 = procCpuTimes(target.pid);
  const t1 = performance.now();
  const from = process.hrtime.bigint();
  const rss1 = procRssBytes(target.pid);
  const more = total - first;
  const phase2 = startLoad(pins, group, [
    "connect",
    ...common,
    "--subscribers",
    String(more),
    "--duration",
    String(2 * settleSeconds + 2),
  ]);
  await phase2.joined(more);
  await sleep(settleSeconds * 1000);
  const cpu2 = procCpuTimes(target.pid);
  const t2 = performance.now();
  run.perfWindows.push({ target: target.name, pid: target.pid, from, to: process.hrtime.bigint(), work: more });
  const rss2 = procRssBytes(target.pid);
  const young2 = (await target.youngGenerationBytes?.()) ?? Number.NaN;
  if (phase1.ended()) throw new Error(`${target.name}: phase 1's sockets were gone before phase 2 was measured`);
  const [r1, r2] = await Promise.all([phase1.finished, phase2.finished]);
  for (const [r, n] of [
    [r1.result, first],
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
      perJoin(seconds(cpu1) - seconds(cpu0), idlePerMs * (t1 - t0), first),
      perJoin(seconds(cpu2) - seconds(cpu1), idlePerMs * (t2 - t1), more),
    ],
    phase2SplitUs: {
      user: ((cpu2.user - cpu1.user - idleUserPerMs * (t2 - t1)) * 1e6) / more,
      system: ((cpu2.system - cpu1.system - idleSystemPerMs * (t2 - t1)) * 1e6) / more,
    },
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
