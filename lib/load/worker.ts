/**
 * A load worker process: opens its share of the sockets (spread over its source addresses and the
 * target URLs), joins them, and then, as the coordinator says, publishes on schedule, churns, or
 * holds; it accounts every delivery (./ledger.ts), keeps HDR histograms, and reports progress every
 * second and a final report at the end. Spawned by ./coordinator.ts; never run by hand.
 *
 * This script only answers the coordinator's messages (plan, start, stop). The run it keeps and
 * counts into is ./worker-run.ts; the sockets and the channel protocol, ./worker-sockets.ts; the
 * open-loop publishers and churn, ./worker-publishing.ts; the reports, ./worker-reports.ts.
 */
import type { ControlMessage, Final, Progress } from "./types.ts";
import { startChurn, startPublishing } from "./worker-publishing.ts";
import { createMeter, finalReport, progress } from "./worker-reports.ts";
import { createRun, type Run } from "./worker-run.ts";
import { startHousekeeping, startRamp } from "./worker-sockets.ts";

const meter = createMeter();
let run: Run;

/**
 * A report to the coordinator. A send that finds the channel already closed (the coordinator was
 * killed between two reports) is dropped: without the callback its EPIPE would be thrown as an
 * unhandled 'error' event, and the 'disconnect' handler below ends the worker anyway.
 */
function send(message: Progress | Final): void {
  if (process.connected) process.send?.(message, ignoreClosedChannel);
}

function ignoreClosedChannel(): void {}

process.on("message", (message: ControlMessage) => {
  if (message.kind === "plan") {
    run = createRun(message);
    startRamp(run);
    startHousekeeping(run);
    setInterval(() => send(progress(run, meter)), 1000).unref();
  } else if (message.kind === "start") {
    const { plan } = run;
    run.t0 = message.t0;
    run.endAt = run.t0 + message.durationMs;
    run.perPublisher = Math.ceil((plan.rate * message.durationMs) / 1000 / Math.max(1, plan.totalPublishers)) + 1;
    if (plan.scenario === "fanout" || plan.scenario === "churn") startPublishing(run);
    if (plan.scenario === "churn") startChurn(run);
  } else {
    run.stopping = true;
    send(progress(run, meter));
    process.send?.(finalReport(run), () => {
      for (const s of run.sockets) s.conn?.terminate();
      setTimeout(() => process.exit(0), 50);
    });
  }
});
// Never outlive the coordinator.
process.on("disconnect", () => process.exit(0));
