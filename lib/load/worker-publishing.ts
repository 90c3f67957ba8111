/**
 * A load worker's publishers and churn, from t0 to the run's end (./worker-run.ts).
 *
 *     startPublishing(run) // fanout and churn
 *     startChurn(run)      // churn: plan.churnRate leaves a second over the churners, each rejoins
 *
 * Open loop: message i of publisher p is due at t0 + (i·P + p)/R and is sent when due (late ones are
 * sent at once, catching up), whatever the replies do; its latency is measured from the due time.
 * A message due while its publisher's socket is not joined is counted as unsent, never sent.
 */
import { setTimeoutAfterIo } from "./after-io.ts";
import { encodeFrame, formatMarker, nowMs } from "./frames.ts";
import { bump, scheduledAt, type Run } from "./worker-run.ts";
import { leave } from "./worker-sockets.ts";

export function startPublishing(run: Run): void {
  const { plan, counters } = run;
  const next = new Map<number, number>(plan.publishers.map((p) => [p, 0]));
  const publishers = run.sockets.filter((s) => s.role === "pub");
  const tick = () => {
    if (run.stopping) return;
    const now = nowMs();
    let soonest = Number.POSITIVE_INFINITY;
    for (const s of publishers) {
      let seq = next.get(s.publisher)!;
      let due = scheduledAt(run, s.publisher, seq);
      while (due <= now && due < run.endAt) {
        if (s.state === "joined") {
          s.conn!.send(
            encodeFrame(
              s.joinRef,
              `m${seq}`,
              plan.topic,
              plan.event,
              run.payloadOf(formatMarker(plan.markerPrefix, s.publisher, seq, due)),
            ),
          );
          counters.published++;
        } else {
          // Due but not sent: the publisher's socket is closed, left or never joined.
          counters.unsent++;
          bump(run, "push", "unsent_not_joined");
        }
        due = scheduledAt(run, s.publisher, ++seq);
      }
      next.set(s.publisher, seq);
      if (due < run.endAt) soonest = Math.min(soonest, due);
    }
    // After I/O: a close already waiting on a publisher's socket is seen before anything more is sent.
    if (soonest !== Number.POSITIVE_INFINITY) setTimeoutAfterIo(tick, Math.max(0, soonest - nowMs()));
  };
  setTimeoutAfterIo(tick, Math.max(0, run.t0 - nowMs()));
}

export function startChurn(run: Run): void {
  const churners = run.sockets.filter((s) => s.role === "churn");
  if (churners.length === 0 || run.plan.churnRate <= 0) return;
  let leaves = 0;
  let at = 0;
  const timer = setInterval(() => {
    const now = nowMs();
    if (run.stopping || now >= run.endAt) return clearInterval(timer);
    const due = Math.floor(((now - run.t0) / 1000) * run.plan.churnRate);
    for (let tries = 0; leaves < due && tries < churners.length; tries++) {
      const s = churners[at++ % churners.length]!;
      if (s.state !== "joined") continue;
      leave(run, s);
      leaves++;
    }
  }, 20);
}
