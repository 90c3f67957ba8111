/**
 * Child-process entry for the HTTP benchmark's load generator (forked by `http.ts` and pinned to
 * its own core): runs one autocannon load per `run` message and answers with the counts and
 * latency percentiles. Living in a process of its own lets the orchestrator read the generator's
 * CPU time from the kernel and mark a run whose generator saturated its core as invalid.
 *
 * Messages: `GeneratorRun` in, `GeneratorResult` out.
 */
import { percentile, runLoad, type Target } from "./load.ts";
import { serveUntilStopped } from "./processes.ts";

export interface GeneratorRun {
  type: "run";
  id: number;
  target: Target;
  seconds: number;
  connections: number;
}

export interface GeneratorResult {
  type: "result";
  id: number;
  requests: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  failure?: string;
}

serveUntilStopped(async () => {
  process.on("message", (message: GeneratorRun | { type: "stop" }) => {
    if (message.type !== "run") return;
    const { id, target, seconds, connections } = message;
    runLoad(target, { seconds, connections }).then(
      (run) =>
        process.send?.({
          type: "result",
          id,
          requests: run.requests,
          requestsPerSecond: run.requestsPerSecond,
          p50: percentile(run.latencies, 0.5),
          p99: percentile(run.latencies, 0.99),
          non2xx: run.non2xx,
          errors: run.errors,
        } satisfies GeneratorResult),
      (error: unknown) =>
        process.send?.({
          type: "result",
          id,
          requests: 0,
          requestsPerSecond: 0,
          p50: NaN,
          p99: NaN,
          non2xx: 0,
          errors: 1,
          failure: String(error),
        } satisfies GeneratorResult),
    );
  });
  return { info: {}, stop: async () => {} };
});
