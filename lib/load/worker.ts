/**
 * A load worker process: opens its share of the sockets (spread over its source addresses and the
 * target URLs), joins them, and then, as the coordinator says, publishes on schedule, churns, or
 * holds; it accounts every delivery (./ledger.ts), keeps HDR histograms, and reports progress every
 * second and a final report at the end. Spawned by ./coordinator.ts; never run by hand.
 *
 * Open loop: message i of publisher p is due at t0 + (i·P + p)/R and is sent when due (late ones are
 * sent at once, catching up), whatever the replies do; its latency is measured from the due time.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeoutAfterIo } from "./after-io.ts";
import { dial, type Connection } from "./connection.ts";
import {
  compilePayload,
  encodeFrame,
  findMarker,
  formatMarker,
  nowMs,
  parseFrame,
  type Frame,
  type Marker,
} from "./frames.ts";
import { createHistogram, encode, Latencies, toMicros } from "./histograms.ts";
import { createLedger, type Ledger } from "./ledger.ts";
import { createPresenceView, createRefTable, type PresenceView } from "./presence-view.ts";
import {
  zeroCounters,
  type ControlMessage,
  type Counts,
  type Final,
  type Progress,
  type WorkerCounters,
  type WorkerPlan,
} from "./types.ts";

type Role = "sub" | "pub" | "churn";
type State = "idle" | "connecting" | "joining" | "joined" | "leaving" | "left" | "closed" | "failed";

interface Sock {
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

function settle(s: Sock): void {
  if (s.settled) return;
  s.settled = true;
  handshakes--;
}

const counters: WorkerCounters = zeroCounters();
const errors: Record<string, Counts> = { connect: {}, join: {}, push: {}, close: {}, channel: {} };
const bump = (group: string, key: string | number) => {
  const counts = (errors[group] ??= {});
  counts[String(key)] = (counts[String(key)] ?? 0) + 1;
};
const histograms = {
  connect: createHistogram(),
  join: createHistogram(),
  reply: createHistogram(),
  presenceView: createHistogram(),
  rejoin: createHistogram(),
};
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
const refs = createRefTable();

let plan: WorkerPlan;
let sockets: Sock[] = [];
let stopping = false;
let t0 = 0;
let endAt = 0;
let perPublisher = 1;
let lastDeliveryAt = 0;
let presenceCompleteAt = 0;
/** When this worker dialled its first socket (0 before). */
let firstDialAt = 0;
let refCounter = 0;
/** Sockets connecting or joining for the first time (bounded by plan.inFlight). */
let handshakes = 0;
let latencies = new Latencies(0);
let receivedByUrl: number[] = [];
let subscribedByUrl: number[] = [];
let payloadOf: (marker: string) => string = (m) => m;
let prefixBytes = Buffer.alloc(0);

const scheduledAt = (publisher: number, seq: number) =>
  t0 + ((seq * plan.totalPublishers + publisher) * 1000) / plan.rate;

function send(message: Progress | Final): void {
  process.send?.(message);
}

// --- connections --------------------------------------------------------------------------------

function openSocket(s: Sock): void {
  s.state = "connecting";
  s.dialAt = nowMs();
  if (firstDialAt === 0) firstDialAt = s.dialAt;
  counters.attempted++;
  handshakes++;
  const address = plan.addresses.length === 0 ? undefined : plan.addresses[s.index % plan.addresses.length];
  s.conn = dial(
    plan.client,
    new URL(plan.urls[s.urlIndex]!),
    address,
    {
      onOpen: () => {
        counters.connected++;
        histograms.connect.recordValue(toMicros(nowMs() - s.dialAt));
        join(s);
      },
      onFrame: (data) => onFrame(s, data),
      onClose: (code) => {
        settle(s);
        // Stopping, or a socket this worker ended itself after a refused or timed-out join (already
        // counted under errors.join; `ws` reports its terminate() as a 1006 close).
        if (stopping || s.state === "failed") return;
        bump("close", code);
        if (s.state === "joined" || s.state === "leaving" || s.state === "left") counters.closed++;
        else if (s.state === "joining") counters.failed++;
        s.state = "closed";
      },
      onError: (kind) => {
        settle(s);
        if (stopping) return;
        bump("connect", kind);
        counters.failed++;
        s.state = "failed";
      },
    },
    plan.connectTimeoutMs,
  );
}

function join(s: Sock): void {
  s.joinRef = String(++refCounter);
  s.state = "joining";
  s.joinSentAt = nowMs();
  s.conn?.send(encodeFrame(s.joinRef, s.joinRef, plan.topic, "phx_join", plan.joinPayload));
}

function onJoinReply(s: Sock, payload: unknown): void {
  const { status, response } = (payload ?? {}) as { status?: unknown; response?: { reason?: unknown } };
  const now = nowMs();
  settle(s);
  if (status === "ok") {
    s.state = "joined";
    if (s.rejoining) {
      counters.rejoins++;
      histograms.rejoin.recordValue(toMicros(now - s.joinSentAt));
    } else {
      counters.joined++;
      if (s.role === "sub") {
        counters.subscribed++;
        subscribedByUrl[s.urlIndex]!++;
      }
      histograms.join.recordValue(toMicros(now - s.joinSentAt));
    }
    return;
  }
  bump("join", typeof response?.reason === "string" ? response.reason : String(status));
  if (!s.rejoining) counters.failed++;
  s.state = "failed";
  s.conn?.terminate();
}

function onFrame(s: Sock, data: Buffer): void {
  counters.frames++;
  const marker = findMarker(data, prefixBytes);
  if (marker !== undefined) {
    if (s.role === "sub") {
      if (s.state === "joined") delivered(s, marker);
      return;
    }
    // A publisher's own broadcast ([null,null,…) is not a delivery; its push reply is read below.
    if (s.role !== "pub" || data[1] === 0x6e) return;
  }
  const frame = parseFrame(data);
  if (frame !== undefined) onControlFrame(s, frame);
}

function delivered(s: Sock, marker: Marker): void {
  s.ledger ??= createLedger(plan.totalPublishers, perPublisher);
  const outcome = s.ledger.record(marker.publisher, marker.seq);
  if (outcome === "duplicate") counters.duplicates++;
  else if (outcome === "foreign") counters.foreign++;
  else {
    if (outcome === "out_of_order") counters.outOfOrder++;
    counters.received++;
    receivedByUrl[s.urlIndex]!++;
    const now = nowMs();
    lastDeliveryAt = now;
    const micros = toMicros(now - marker.scheduledMs);
    latencies.record(s.urlIndex, micros);
  }
}

function onControlFrame(s: Sock, [joinRef, ref, topic, event, payload]: Frame): void {
  if (event === "phx_reply") {
    if (ref === s.joinRef && s.state === "joining") return onJoinReply(s, payload);
    const status = (payload as { status?: unknown; response?: { reason?: unknown } } | null)?.status;
    if (ref?.startsWith("m") && s.role === "pub") {
      const seq = Number(ref.slice(1));
      histograms.reply.recordValue(toMicros(nowMs() - scheduledAt(s.publisher, seq)));
      if (status === "ok") counters.acknowledged++;
      else {
        counters.refused++;
        const reason = (payload as { response?: { reason?: unknown } }).response?.reason;
        bump("push", typeof reason === "string" ? reason : String(status));
      }
    } else if (ref?.startsWith("l") && s.state === "leaving") {
      counters.leaves++;
      s.state = "left";
      s.rejoining = true;
      join(s);
    }
    return;
  }
  // Broadcasts (presence_diff among them) carry a null join_ref; pushes to this channel carry ours.
  if (topic !== plan.topic || (joinRef !== null && joinRef !== s.joinRef)) return;
  if (event === "phx_error" || event === "phx_close") {
    const reason = (payload as { reason?: unknown } | null)?.reason;
    bump("channel", typeof reason === "string" ? `${event}:${reason}` : event);
    if (s.state === "joined") s.state = "left";
  } else if (event === "presence_state" || event === "presence_diff") {
    s.view ??= createPresenceView(refs);
    if (event === "presence_state") s.view.state(payload);
    else {
      s.view.diff(payload);
      s.diffs++;
    }
    // Only subscribers' views count towards the storm (the presence scenario has no other roles).
    if (s.role === "sub" && !s.complete && s.view.size >= plan.presenceTarget) {
      s.complete = true;
      counters.presenceComplete++;
      presenceCompleteAt = nowMs();
      histograms.presenceView.recordValue(toMicros(presenceCompleteAt - s.joinSentAt));
    }
  }
}

/** Opens sockets at the ramp rate, never more than `inFlight` handshakes and joins at once. */
function startRamp(): void {
  const started = nowMs();
  let next = 0;

  const step = () => {
    if (stopping) return;
    const allowed =
      plan.ramp > 0
        ? Math.min(sockets.length, Math.floor(((nowMs() - started) / 1000) * plan.ramp) + 1)
        : sockets.length;
    while (next < allowed && handshakes < plan.inFlight) openSocket(sockets[next++]!);
    if (next < sockets.length) setTimeout(step, 5);
  };
  step();
}

/** Join timeouts and heartbeats (every socket once per 30 s, spread over the seconds). */
function startHousekeeping(): void {
  let tick = 0;
  setInterval(() => {
    const now = nowMs();
    tick++;
    for (const s of sockets) {
      if (s.state === "joining" && now - s.joinSentAt > plan.connectTimeoutMs) {
        settle(s);
        bump("join", "timeout");
        if (!s.rejoining) counters.failed++;
        s.state = "failed";
        s.conn?.terminate();
      } else if (s.state === "joined" && s.index % 30 === tick % 30) {
        s.conn?.send(encodeFrame(null, `h${tick}`, "phoenix", "heartbeat", "{}"));
      }
    }
  }, 1000).unref();
}

function settled(): boolean {
  if (counters.attempted < sockets.length) return false;
  for (const s of sockets) if (s.state === "connecting" || s.state === "joining") return false;
  return true;
}

// --- publishing and churn ---------------------------------------------------------------------------

function startPublishing(): void {
  const next = new Map<number, number>(plan.publishers.map((p) => [p, 0]));
  const publishers = sockets.filter((s) => s.role === "pub");
  const tick = () => {
    if (stopping) return;
    const now = nowMs();
    let soonest = Number.POSITIVE_INFINITY;
    for (const s of publishers) {
      let seq = next.get(s.publisher)!;
      let due = scheduledAt(s.publisher, seq);
      while (due <= now && due < endAt) {
        if (s.state === "joined") {
          s.conn!.send(
            encodeFrame(
              s.joinRef,
              `m${seq}`,
              plan.topic,
              plan.event,
              payloadOf(formatMarker(plan.markerPrefix, s.publisher, seq, due)),
            ),
          );
          counters.published++;
        } else {
          // Due but not sent: the publisher's socket is closed, left or never joined.
          counters.unsent++;
          bump("push", "unsent_not_joined");
        }
        due = scheduledAt(s.publisher, ++seq);
      }
      next.set(s.publisher, seq);
      if (due < endAt) soonest = Math.min(soonest, due);
    }
    // After I/O: a close already waiting on a publisher's socket is seen before anything more is sent.
    if (soonest !== Number.POSITIVE_INFINITY) setTimeoutAfterIo(tick, Math.max(0, soonest - nowMs()));
  };
  setTimeoutAfterIo(tick, Math.max(0, t0 - nowMs()));
}

function startChurn(): void {
  const churners = sockets.filter((s) => s.role === "churn");
  if (churners.length === 0 || plan.churnRate <= 0) return;
  let leaves = 0;
  let at = 0;
  const timer = setInterval(() => {
    const now = nowMs();
    if (stopping || now >= endAt) return clearInterval(timer);
    const due = Math.floor(((now - t0) / 1000) * plan.churnRate);
    for (let tries = 0; leaves < due && tries < churners.length; tries++) {
      const s = churners[at++ % churners.length]!;
      if (s.state !== "joined") continue;
      s.state = "leaving";
      s.conn?.send(encodeFrame(s.joinRef, `l${++refCounter}`, plan.topic, "phx_leave", "{}"));
      leaves++;
    }
  }, 20);
}

// --- reports ------------------------------------------------------------------------------------------

let lastCpu = process.cpuUsage();
let lastWall = nowMs();

function progress(): Progress {
  const second = latencies.fold();
  const cpu = process.cpuUsage(lastCpu);
  lastCpu = process.cpuUsage();
  const now = nowMs();
  const wallMs = now - lastWall;
  lastWall = now;
  const report: Progress = {
    kind: "progress",
    id: plan.id,
    at: now,
    settled: settled(),
    counters: { ...counters },
    latency: second.totalCount === 0 ? "" : encode(second),
    cpuMicros: cpu.user + cpu.system,
    wallMs,
    lagP99Ms: lag.percentile(99) / 1e6,
    lastDeliveryAt,
  };
  lag.reset();
  return report;
}

function finalReport(): Final {
  latencies.fold(); // what arrived since the last progress report
  const diffs = createHistogram();
  for (const s of sockets) if (s.view !== undefined) diffs.recordValue(toMicros(s.diffs));
  return {
    kind: "final",
    id: plan.id,
    counters: { ...counters },
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
    receivedByUrl,
    subscribedByUrl,
    errors,
    lastDeliveryAt,
    presenceCompleteAt,
    firstDialAt,
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

process.on("message", (message: ControlMessage) => {
  if (message.kind === "plan") {
    plan = message;
    payloadOf = compilePayload(plan.payload);
    prefixBytes = Buffer.from(plan.markerPrefix, "latin1");
    sockets = build(plan);
    latencies = new Latencies(plan.urls.length);
    receivedByUrl = plan.urls.map(() => 0);
    subscribedByUrl = plan.urls.map(() => 0);
    startRamp();
    startHousekeeping();
    setInterval(() => send(progress()), 1000).unref();
  } else if (message.kind === "start") {
    t0 = message.t0;
    endAt = t0 + message.durationMs;
    perPublisher = Math.ceil((plan.rate * message.durationMs) / 1000 / Math.max(1, plan.totalPublishers)) + 1;
    if (plan.scenario === "fanout" || plan.scenario === "churn") startPublishing();
    if (plan.scenario === "churn") startChurn();
  } else {
    stopping = true;
    send(progress());
    process.send?.(finalReport(), () => {
      for (const s of sockets) s.conn?.terminate();
      setTimeout(() => process.exit(0), 50);
    });
  }
});
// Never outlive the coordinator.
process.on("disconnect", () => process.exit(0));
