/**
 * A load worker's run (./worker.ts), created when its plan arrives: the plan, its sockets, the
 * schedule, and all it counts (counters, errors by kind, HDR histograms, delivery latencies, per-URL
 * counts). The sockets (./worker-sockets.ts) and the publishers (./worker-publishing.ts) write to it;
 * ./worker-reports.ts reads it into the coordinator's reports.
 *
 *     const run = createRun(plan)  // run.sockets: the plan's subscribers, then churners, then publishers
 *     run.t0 = t0                  // on "start"
 *     scheduledAt(run, 2, 17)      // when publisher 2's message 17 is due (ms)
 *     bump(run, "push", "unsent_not_joined")
 */
import type { Connection } from "./connection.ts";
import { compilePayload } from "./frames.ts";
import { createHistogram, Latencies, type Histogram } from "./histograms.ts";
import type { Ledger } from "./ledger.ts";
import { createRefTable, type PresenceView, type RefTable } from "./presence-view.ts";
import { zeroCounters, type Counts, type WorkerCounters, type WorkerPlan } from "./types.ts";

export type Role = "sub" | "pub" | "churn";
export type State = "idle" | "connecting" | "joining" | "joined" | "leaving" | "left" | "closed" | "failed";

export interface Sock {
  index: number;
  role: Role;
  urlIndex: number;
  /** Global publisher index (role "pub"). */
  publisher: number;
  state: State;
  conn: Connection | undefined;
  joinRef: string;
  dialAt: number;
  joinSentAt: number;
  rejoining: boolean;
  ledger: Ledger | undefined;
  view: PresenceView | undefined;
  diffs: number;
  complete: boolean;
  /** Its first connect-and-join is over (joined or failed). */
  settled: boolean;
}

export interface Run {
  readonly plan: WorkerPlan;
  readonly sockets: Sock[];
  readonly counters: WorkerCounters;
  readonly errors: Record<string, Counts>;
  readonly histograms: Record<"connect" | "join" | "reply" | "presenceView" | "rejoin", Histogram>;
  readonly latencies: Latencies;
  readonly receivedByUrl: number[];
  readonly subscribedByUrl: number[];
  /** Presence refs, interned once for all the sockets' views. */
  readonly refs: RefTable;
  readonly payloadOf: (marker: string) => string;
  readonly prefixBytes: Buffer;
  stopping: boolean;
  /** The schedule, set by "start": publishing runs from t0 to endAt. */
  t0: number;
  endAt: number;
  /** About how many messages each publisher sends (sizes the ledgers). */
  perPublisher: number;
  lastDeliveryAt: number;
  presenceCompleteAt: number;
  /** When this worker dialled its first socket (0 before). */
  firstDialAt: number;
  refCounter: number;
  /** Sockets connecting or joining for the first time (bounded by plan.inFlight). */
  handshakes: number;
}

export function createRun(plan: WorkerPlan): Run {
  return {
    plan,
    sockets: build(plan),
    counters: zeroCounters(),
    errors: { connect: {}, join: {}, push: {}, close: {}, channel: {} },
    histograms: {
      connect: createHistogram(),
      join: createHistogram(),
      reply: createHistogram(),
      presenceView: createHistogram(),
      rejoin: createHistogram(),
    },
    latencies: new Latencies(plan.urls.length),
    receivedByUrl: plan.urls.map(() => 0),
    subscribedByUrl: plan.urls.map(() => 0),
    refs: createRefTable(),
    payloadOf: compilePayload(plan.payload),
    prefixBytes: Buffer.from(plan.markerPrefix, "latin1"),
    stopping: false,
    t0: 0,
    endAt: 0,
    perPublisher: 1,
    lastDeliveryAt: 0,
    presenceCompleteAt: 0,
    firstDialAt: 0,
    refCounter: 0,
    handshakes: 0,
  };
}

function build(p: WorkerPlan): Sock[] {
  const list: Sock[] = [];
  const add = (role: Role, urlIndex: number, publisher = -1) =>
    list.push({
      index: list.length,
      role,
      urlIndex,
      publisher,
      state: "idle",
      conn: undefined,
      joinRef: "",
      dialAt: 0,
      joinSentAt: 0,
      rejoining: false,
      ledger: undefined,
      view: undefined,
      diffs: 0,
      complete: false,
      settled: false,
    });
  for (let i = 0; i < p.subscribers; i++) add("sub", (p.subscriberOffset + i) % p.urls.length);
  for (let i = 0; i < p.churners; i++) add("churn", i % p.urls.length);
  for (const publisher of p.publishers) add("pub", 0, publisher);
  return list;
}

/** Counts one error of a kind: `errors[group][key]`. */
export function bump(run: Run, group: string, key: string | number): void {
  const counts = (run.errors[group] ??= {});
  counts[String(key)] = (counts[String(key)] ?? 0) + 1;
}

/** Open loop: message `seq` of publisher p is due at t0 + (seq·P + p)/R, P publishers at R messages/s. */
export function scheduledAt(run: Run, publisher: number, seq: number): number {
  return run.t0 + ((seq * run.plan.totalPublishers + publisher) * 1000) / run.plan.rate;
}

/** Every socket has been dialled and none is still connecting or joining. */
export function settled(run: Run): boolean {
  if (run.counters.attempted < run.sockets.length) return false;
  for (const s of run.sockets) if (s.state === "connecting" || s.state === "joining") return false;
  return true;
}
