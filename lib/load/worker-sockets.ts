/**
 * A load worker's sockets and the Phoenix channel protocol they speak: the ramp that dials them, the
 * join, every frame a socket receives (a delivery, a join, push or leave reply, presence, a channel
 * error or close), leave and rejoin, and the housekeeping (join timeouts, heartbeats). All it sees
 * is counted in the run (./worker-run.ts).
 *
 *     startRamp(run); startHousekeeping(run)
 *     onFrame(run, socket, data) // for each frame the socket's connection receives
 *     leave(run, socket)         // churn: phx_leave; once it is acknowledged the socket joins again
 *
 * `onFrame` is the hot path: a subscriber's delivery is found by a byte search (./frames.ts
 * findMarker) and accounted without parsing the frame, by module-level functions (no function is
 * created per frame).
 */
import { dial } from "./connection.ts";
import { encodeFrame, findMarker, nowMs, parseFrame, type Frame, type Marker } from "./frames.ts";
import { toMicros } from "./histograms.ts";
import { createLedger } from "./ledger.ts";
import { createPresenceView } from "./presence-view.ts";
import { bump, scheduledAt, type Run, type Sock } from "./worker-run.ts";

/** Opens sockets at the ramp rate, never more than `inFlight` handshakes and joins at once. */
export function startRamp(run: Run): void {
  const { plan, sockets } = run;
  const started = nowMs();
  let next = 0;

  const step = () => {
    if (run.stopping) return;
    const allowed =
      plan.ramp > 0
        ? Math.min(sockets.length, Math.floor(((nowMs() - started) / 1000) * plan.ramp) + 1)
        : sockets.length;
    while (next < allowed && run.handshakes < plan.inFlight) openSocket(run, sockets[next++]!);
    if (next < sockets.length) setTimeout(step, 5);
  };
  step();
}

/** Join timeouts and heartbeats (every socket once per 30 s, spread over the seconds). */
export function startHousekeeping(run: Run): void {
  let tick = 0;
  setInterval(() => {
    const now = nowMs();
    tick++;
    for (const s of run.sockets) {
      if (s.state === "joining" && now - s.joinSentAt > run.plan.connectTimeoutMs) {
        settle(run, s);
        bump(run, "join", "timeout");
        if (!s.rejoining) run.counters.failed++;
        s.state = "failed";
        s.conn?.terminate();
      } else if (s.state === "joined" && s.index % 30 === tick % 30) {
        s.conn?.send(encodeFrame(null, `h${tick}`, "phoenix", "heartbeat", "{}"));
      }
    }
  }, 1000).unref();
}

function settle(run: Run, s: Sock): void {
  if (s.settled) return;
  s.settled = true;
  run.handshakes--;
}

function openSocket(run: Run, s: Sock): void {
  const { plan, counters } = run;
  s.state = "connecting";
  s.dialAt = nowMs();
  if (run.firstDialAt === 0) run.firstDialAt = s.dialAt;
  counters.attempted++;
  run.handshakes++;
  const address = plan.addresses.length === 0 ? undefined : plan.addresses[s.index % plan.addresses.length];
  s.conn = dial(
    plan.client,
    new URL(plan.urls[s.urlIndex]!),
    address,
    {
      onOpen: () => {
        counters.connected++;
        run.histograms.connect.recordValue(toMicros(nowMs() - s.dialAt));
        join(run, s);
      },
      onFrame: (data) => onFrame(run, s, data),
      onClose: (code) => {
        settle(run, s);
        // Stopping, or a socket this worker ended itself after a refused or timed-out join (already
        // counted under errors.join; `ws` reports its terminate() as a 1006 close).
        if (run.stopping || s.state === "failed") return;
        bump(run, "close", code);
        if (s.state === "joined" || s.state === "leaving" || s.state === "left") counters.closed++;
        else if (s.state === "joining") counters.failed++;
        s.state = "closed";
      },
      onError: (kind) => {
        settle(run, s);
        if (run.stopping) return;
        bump(run, "connect", kind);
        counters.failed++;
        s.state = "failed";
      },
    },
    plan.connectTimeoutMs,
  );
}

export function join(run: Run, s: Sock): void {
  s.joinRef = String(++run.refCounter);
  s.state = "joining";
  s.joinSentAt = nowMs();
  s.conn?.send(encodeFrame(s.joinRef, s.joinRef, run.plan.topic, "phx_join", run.plan.joinPayload));
}

export function leave(run: Run, s: Sock): void {
  s.state = "leaving";
  s.conn?.send(encodeFrame(s.joinRef, `l${++run.refCounter}`, run.plan.topic, "phx_leave", "{}"));
}

function onJoinReply(run: Run, s: Sock, payload: unknown): void {
  const { status, response } = (payload ?? {}) as { status?: unknown; response?: { reason?: unknown } };
  const now = nowMs();
  settle(run, s);
  if (status === "ok") {
    s.state = "joined";
    if (s.rejoining) {
      run.counters.rejoins++;
      run.histograms.rejoin.recordValue(toMicros(now - s.joinSentAt));
    } else {
      run.counters.joined++;
      if (s.role === "sub") {
        run.counters.subscribed++;
        run.subscribedByUrl[s.urlIndex]!++;
      }
      run.histograms.join.recordValue(toMicros(now - s.joinSentAt));
    }
    return;
  }
  bump(run, "join", typeof response?.reason === "string" ? response.reason : String(status));
  if (!s.rejoining) run.counters.failed++;
  s.state = "failed";
  s.conn?.terminate();
}

export function onFrame(run: Run, s: Sock, data: Buffer): void {
  run.counters.frames++;
  const marker = findMarker(data, run.prefixBytes);
  if (marker !== undefined) {
    if (s.role === "sub") {
      if (s.state === "joined") delivered(run, s, marker);
      return;
    }
    // A publisher's own broadcast ([null,null,…) is not a delivery; its push reply is read below.
    if (s.role !== "pub" || data[1] === 0x6e) return;
  }
  const frame = parseFrame(data);
  if (frame !== undefined) onControlFrame(run, s, frame);
}

function delivered(run: Run, s: Sock, marker: Marker): void {
  const counters = run.counters;
  s.ledger ??= createLedger(run.plan.totalPublishers, run.perPublisher);
  const outcome = s.ledger.record(marker.publisher, marker.seq);
  if (outcome === "duplicate") counters.duplicates++;
  else if (outcome === "foreign") counters.foreign++;
  else {
    if (outcome === "out_of_order") counters.outOfOrder++;
    counters.received++;
    run.receivedByUrl[s.urlIndex]!++;
    const now = nowMs();
    run.lastDeliveryAt = now;
    const micros = toMicros(now - marker.scheduledMs);
    run.latencies.record(s.urlIndex, micros);
  }
}

function onControlFrame(run: Run, s: Sock, [joinRef, ref, topic, event, payload]: Frame): void {
  const { plan, counters } = run;
  if (event === "phx_reply") {
    if (ref === s.joinRef && s.state === "joining") return onJoinReply(run, s, payload);
    const status = (payload as { status?: unknown; response?: { reason?: unknown } } | null)?.status;
    if (ref?.startsWith("m") && s.role === "pub") {
      const seq = Number(ref.slice(1));
      run.histograms.reply.recordValue(toMicros(nowMs() - scheduledAt(run, s.publisher, seq)));
      if (status === "ok") counters.acknowledged++;
      else {
        counters.refused++;
        const reason = (payload as { response?: { reason?: unknown } }).response?.reason;
        bump(run, "push", typeof reason === "string" ? reason : String(status));
      }
    } else if (ref?.startsWith("l") && s.state === "leaving") {
      counters.leaves++;
      s.state = "left";
      s.rejoining = true;
      join(run, s);
    }
    return;
  }
  // Broadcasts (presence_diff among them) carry a null join_ref; pushes to this channel carry ours.
  if (topic !== plan.topic || (joinRef !== null && joinRef !== s.joinRef)) return;
  if (event === "phx_error" || event === "phx_close") {
    const reason = (payload as { reason?: unknown } | null)?.reason;
    bump(run, "channel", typeof reason === "string" ? `${event}:${reason}` : event);
    if (s.state === "joined") s.state = "left";
  } else if (event === "presence_state" || event === "presence_diff") {
    s.view ??= createPresenceView(run.refs);
    if (event === "presence_state") s.view.state(payload);
    else {
      s.view.diff(payload);
      s.diffs++;
    }
    // Only subscribers' views count towards the storm (the presence scenario has no other roles).
    if (s.role === "sub" && !s.complete && s.view.size >= plan.presenceTarget) {
      s.complete = true;
      counters.presenceComplete++;
      run.presenceCompleteAt = nowMs();
      run.histograms.presenceView.recordValue(toMicros(run.presenceCompleteAt - s.joinSentAt));
    }
  }
}
