/**
 * The standard OTEL_* variables, as an operator sets them: `serve` started as a child process
 * (tests/helpers/processes.ts) exporting to a real OTLP receiver. OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES reach every span's resource, merged with the SDK's own attributes
 * (`telemetry.sdk.*`); OTEL_TRACES_SAMPLER=always_off exports nothing, not even for a caller
 * whose traceparent asks for sampling.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { startOtlpReceiver, type OtlpReceiver } from "../helpers/otlp-receiver.ts";
import { startServe, type ServeProcess } from "../helpers/processes.ts";

let receiver: OtlpReceiver;
test.before(async () => {
  receiver = await startOtlpReceiver();
});
test.after.always(async () => {
  await receiver?.close();
});

/** `serve` on an embedded database of its own, exporting to the receiver; stopped (SIGTERM: tracing flushed) at the end. */
async function serveTraced(name: string, env: Record<string, string>, run: (serve: ServeProcess) => Promise<void>) {
  const dataDir = mkdtempSync(join(tmpdir(), `hypercast-${name}-`));
  let serve: ServeProcess | undefined;
  try {
    serve = await startServe({
      name,
      env: {
        DATA_DIR: dataDir,
        DATABASE_URL: "",
        REDIS_URL: "",
        LOG_LEVEL: "warn",
        PASSWORD_HASH_COST: "10",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY: "100",
        ...env,
      },
      startTimeoutMs: 60_000,
    });
    await run(serve);
  } finally {
    if (serve?.alive()) {
      serve.signal("SIGTERM");
      await serve.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const traceparent = (trace: string) => `00-${trace}-${randomBytes(8).toString("hex")}-01`;

test("OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the resource, with the SDK's own attributes", async (t) => {
  const trace = randomBytes(16).toString("hex");
  await serveTraced(
    "otel-env",
    { OTEL_SERVICE_NAME: "chat-api", OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=staging,team=realtime" },
    async (serve) => {
      const res = await fetch(`${serve.httpUrl}/`, { headers: { traceparent: traceparent(trace) } });
      t.is(res.status, 200);
      await res.arrayBuffer();
      await receiver.until("the request's server span", (spans) => spans.some((s) => s.traceId === trace));
    },
  );
  const span = receiver.spans.find((s) => s.traceId === trace)!;
  t.like(span.resource, {
    "service.name": "chat-api",
    "deployment.environment.name": "staging",
    team: "realtime",
    "hypercast.node": "otel-env",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.language": "nodejs",
  });
  t.is(typeof span.resource["telemetry.sdk.version"], "string");
});

test("OTEL_TRACES_SAMPLER=always_off exports nothing, even for a sampled caller", async (t) => {
  const traces = [randomBytes(16).toString("hex"), randomBytes(16).toString("hex")];
  await serveTraced("otel-off", { OTEL_TRACES_SAMPLER: "always_off" }, async (serve) => {
    for (const trace of traces) {
      const res = await fetch(`${serve.httpUrl}/`, { headers: { traceparent: traceparent(trace) } });
      t.is(res.status, 200);
      await res.arrayBuffer();
    }
  });
  // The process has exited, and a SIGTERM flushes what tracing held: nothing more can arrive.
  t.false(receiver.spans.some((s) => traces.includes(s.traceId) || s.resource["hypercast.node"] === "otel-off"));
});
