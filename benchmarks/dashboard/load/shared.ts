/**
 * Shared pieces of the WebSocket benchmark: IPC message shapes, /proc readings, a latency
 * histogram that merges across processes.
 */
import { readFileSync } from "node:fs";

/** Parent → load client. */
export interface ClientJob {
  kind: "job";
  url: string;
  topic: string;
  sockets: number;
  /** Source addresses to spread connections over (127.0.0.x). */
  addresses: string[];
  /** Connections opened at once per client process. */
  inFlight: number;
}

export type ClientReport =
  | { kind: "joined"; joined: number; failed: number; startedAt: number; endedAt: number }
  | { kind: "counts"; frames: number; messages: number; histogram: number[]; cpuMicros: number; closedByServer: number; lastAt: number };

/** Parent → server child. */
export type ServerReady = { kind: "ready"; port: number; token: string; topic: string };

/** Latency histogram: 0.1 ms buckets up to 10 s, the rest in the last bucket. */
export const BUCKET_MS = 0.1;
export const BUCKETS = 100_000;

export function percentile(histogram: ArrayLike<number>, p: number): number {
  let total = 0;
  for (let i = 0; i < histogram.length; i++) total += histogram[i]!;
  if (total === 0) return Number.NaN;
  const target = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    if (seen >= target) return (i + 1) * BUCKET_MS;
  }
  return histogram.length * BUCKET_MS;
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[11] = utime, fields[12] = stime (after pid and comm), in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident set size in bytes, from /proc/<pid>/status. */
export function procRssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match === null ? Number.NaN : Number(match[1]) * 1024;
}

/** A wall-clock timestamp in ms with sub-ms precision, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
