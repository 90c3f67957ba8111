/**
 * What a load worker reports to the coordinator (./types.ts): every second a progress report (the
 * counters, this second's delivery latencies, the worker's own CPU time and event-loop lag), and at
 * the end the final report (all counters, histograms and errors of the run, ./worker-run.ts).
 *
 *     const meter = createMeter()        // at process start: the first report measures from there
 *     setInterval(() => process.send?.(progress(run, meter)), 1000)
 *     process.send?.(finalReport(run))
 */
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { nowMs } from "./frames.ts";
import { createHistogram, encode, toMicros } from "./histograms.ts";
import type { Final, Progress } from "./types.ts";
import { settled, type Run } from "./worker-run.ts";

/** The worker's own cost since the last progress report. */
export interface Meter {
  readonly lag: IntervalHistogram;
  cpu: NodeJS.CpuUsage;
  wall: number;
}

export function createMeter(): Meter {
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  return { lag, cpu: process.cpuUsage(), wall: nowMs() };
}

export function progress(run: Run, meter: Meter): Progress {
  const second = run.latencies.fold();
  const cpu = process.cpuUsage(meter.cpu);
  meter.cpu = process.cpuUsage();
  const now = nowMs();
  const wallMs = now - meter.wall;
  meter.wall = now;
  const report: Progress = {
    kind: "progress",
    id: run.plan.id,
    at: now,
    settled: settled(run),
    counters: { ...run.counters },
    latency: second.totalCount === 0 ? "" : encode(second),
    cpuMicros: cpu.user + cpu.system,
    wallMs,
    lagP99Ms: meter.lag.percentile(99) / 1e6,
    lastDeliveryAt: run.lastDeliveryAt,
  };
  meter.lag.reset();
  return report;
}

export function finalReport(run: Run): Final {
  const { histograms, latencies } = run;
  latencies.fold(); // what arrived since the last progress report
  const diffs = createHistogram();
  for (const s of run.sockets) if (s.view !== undefined) diffs.recordValue(toMicros(s.diffs));
  return {
    kind: "final",
    id: run.plan.id,
    counters: { ...run.counters },
    histograms: {
      connect: encode(histograms.connect),
      join: encode(histograms.join),
      reply: encode(histograms.reply),
      latency: encode(latencies.run),
      presenceView: encode(histograms.presenceView),
      rejoin: encode(histograms.rejoin),
      diffsPerSocket: encode(diffs),
    },
    latencyByUrl: latencies.byUrl.map(encode),
    receivedByUrl: run.receivedByUrl,
    subscribedByUrl: run.subscribedByUrl,
    errors: run.errors,
    lastDeliveryAt: run.lastDeliveryAt,
    presenceCompleteAt: run.presenceCompleteAt,
    firstDialAt: run.firstDialAt,
  };
}
