/**
 * What the coordinator and its worker processes say to each other (IPC), and the JSON result of a
 * run (README, Load testing with hypercast-load, plus what the load generator adds: out-of-order and foreign deliveries, errors
 * by kind, the client's own cost, the server's metrics and a timeline).
 */
import type { ClientKind } from "./connection.ts";
import type { Percentiles } from "./histograms.ts";

export type Scenario = "fanout" | "connect" | "presence" | "churn";
export const SCENARIOS: readonly Scenario[] = ["fanout", "connect", "presence", "churn"];

/** Coordinator → worker: this worker's share of the run. */
export interface WorkerPlan {
  kind: "plan";
  id: number;
  scenario: Scenario;
  /** Full socket URLs (query included); socket g goes to urls[g % urls.length], publishers to urls[0]. */
  urls: string[];
  topic: string;
  joinPayload: string;
  event: string;
  payload: string;
  /** Global index of this worker's first subscriber, and how many it runs. */
  subscriberOffset: number;
  subscribers: number;
  /** Global publisher indices this worker runs. */
  publishers: number[];
  totalPublishers: number;
  /** Sockets that leave and rejoin during the run (churn), and the leaves per second this worker makes. */
  churners: number;
  churnRate: number;
  /** Messages per second over all publishers. */
  rate: number;
  /** This worker's connections per second (0 = as fast as the in-flight bound allows). */
  ramp: number;
  inFlight: number;
  addresses: string[];
  client: ClientKind;
  connectTimeoutMs: number;
  /** This run's marker prefix (./frames.ts markerPrefix). */
  markerPrefix: string;
  /** Metas a complete presence view holds (presence scenario). */
  presenceTarget: number;
}

export type ControlMessage = WorkerPlan | { kind: "start"; t0: number; durationMs: number } | { kind: "stop" };

export type Counts = Record<string, number>;

export interface WorkerCounters {
  attempted: number;
  connected: number;
  joined: number;
  failed: number;
  closed: number;
  published: number;
  acknowledged: number;
  refused: number;
  received: number;
  duplicates: number;
  outOfOrder: number;
  foreign: number;
  frames: number;
  presenceComplete: number;
  leaves: number;
  rejoins: number;
  /** Subscribers (not publishers or churners) that joined. */
  subscribed: number;
  /** Messages due while their publisher's socket was not joined (closed, left, never joined): never sent. */
  unsent: number;
}

/** Every counter at 0: a worker's before it counts, the coordinator's totals before any report. */
export function zeroCounters(): WorkerCounters {
  return {
    attempted: 0,
    connected: 0,
    joined: 0,
    failed: 0,
    closed: 0,
    published: 0,
    acknowledged: 0,
    refused: 0,
    received: 0,
    duplicates: 0,
    outOfOrder: 0,
    foreign: 0,
    frames: 0,
    presenceComplete: 0,
    leaves: 0,
    rejoins: 0,
    subscribed: 0,
    unsent: 0,
  };
}

export interface Progress {
  kind: "progress";
  id: number;
  at: number;
  /** Every socket of this worker has either joined or failed. */
  settled: boolean;
  counters: WorkerCounters;
  /** Publish→delivery latencies recorded in this interval (encoded HDR histogram). */
  latency: string;
  cpuMicros: number;
  wallMs: number;
  lagP99Ms: number;
  lastDeliveryAt: number;
}

export interface Final {
  kind: "final";
  id: number;
  counters: WorkerCounters;
  histograms: {
    connect: string;
    join: string;
    reply: string;
    latency: string;
    presenceView: string;
    rejoin: string;
    diffsPerSocket: string;
  };
  /** Latency per target URL index (cluster runs). */
  latencyByUrl: string[];
  receivedByUrl: number[];
  subscribedByUrl: number[];
  errors: Record<string, Counts>;
  lastDeliveryAt: number;
  presenceCompleteAt: number;
  /** When this worker dialled its first socket (0 if it dialled none). */
  firstDialAt: number;
}

export type WorkerMessage = Progress | Final;

export interface TimelinePoint {
  t: number;
  connected: number;
  joined: number;
  deliveries_per_s: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** p99 of every publish→delivery latency since the start. */
  p99_so_far: number;
  client_cpu: number;
  lag_p99_ms: number;
  server_cpu?: number;
  server_rss_mib?: number;
  server_sockets?: number;
}

export interface LoadResult {
  scenario: Scenario;
  valid: boolean;
  invalid_reasons: string[];
  warnings: string[];
  started_at: string;
  duration_s: number;
  run_id: string;
  target: { urls: string[]; topic: string };
  settings: Record<string, string | number | boolean>;
  connections: { attempted: number; connected: number; joined: number; failed: number; closed: number };
  connect_ms: Percentiles;
  join_ms: Percentiles;
  reply_ms: Percentiles;
  latency_ms: Percentiles;
  /** unacknowledged: pushes with no reply by the end of the drain; unsent: due but never sent (publisher not joined). */
  messages: { published: number; acknowledged: number; refused: number; unacknowledged: number; unsent: number };
  deliveries: {
    expected: number;
    received: number;
    missing: number;
    duplicates: number;
    out_of_order: number;
    foreign: number;
    completeness: number;
  };
  throughput: { deliveries_per_s: number; published_per_s: number };
  errors: Record<string, Counts>;
  by_url: Array<{ url: string; subscribers: number; received: number; latency_ms: Percentiles }>;
  presence?: {
    sockets: number;
    complete: number;
    target_metas: number;
    view_complete_ms: Percentiles;
    storm_complete_ms: number;
    diffs_per_socket: Percentiles;
  };
  churn?: { churners: number; leaves: number; rejoins: number; rejoin_ms: Percentiles };
  client: {
    kind: ClientKind;
    workers: number;
    cpu_s: number;
    max_core_fraction: number;
    lag_p99_ms: number;
    frames: number;
    cpu_us_per_frame: number;
  };
  server?: {
    metrics_url: string;
    cpu_s: number;
    rss_max_mib: number;
    sockets_max: number;
    samples: number;
    errors: number;
  };
  timeline: TimelinePoint[];
}
