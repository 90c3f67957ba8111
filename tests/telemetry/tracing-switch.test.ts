/**
 * Tracing's switch (README, Tracing): off unless an OTLP endpoint is set, and then not one module of
 * the OpenTelemetry SDK is loaded; the endpoint and protocol variables follow the specification's
 * rules, and a protocol Hypercast cannot speak stops the boot naming the variable. With it off the
 * hot paths build nothing for tracing: no PubSub span closure, no Redis command wrapper.
 *
 * The SDK and its exporters are CommonJS packages, so what the process loaded is in require.cache
 * (prom-client loads `@opentelemetry/api`, the no-op API, on its own: that one is allowed).
 */
import { createRequire } from "node:module";
import test from "ava";
import { closeRedis, connectRedis } from "../../lib/cluster/redis.ts";
import { ConfigError } from "../../lib/config.ts";
import { createLocalPubSub } from "../../lib/pubsub/index.ts";
import { createTelemetry, type Telemetry } from "../../lib/telemetry/index.ts";
import { createTestDeps, testConfig } from "../helpers/deps.ts";
import { startOtlpReceiver } from "../helpers/otlp-receiver.ts";

const cache = createRequire(import.meta.url).cache;
const sdkModules = () =>
  Object.keys(cache).filter((path) => path.includes("/@opentelemetry/") && !path.includes("/@opentelemetry/api/"));

test.serial("without an OTLP endpoint no OpenTelemetry SDK module is loaded, and with one it is", async (t) => {
  const off = await createTestDeps(testConfig());
  try {
    t.is(off.config.tracing, undefined);
    t.is(off.tracing, undefined);
    t.is(off.telemetry.carry(), undefined);
  } finally {
    await off.dispose();
  }
  t.deepEqual(sdkModules(), [], "tracing off: no SDK module in the process");

  // The same check fails once tracing is on: the test can tell.
  const on = await createTestDeps(testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" }));
  try {
    t.truthy(on.tracing);
    t.true(sdkModules().some((path) => path.includes("/@opentelemetry/sdk-trace-node/")));
  } finally {
    await on.dispose();
  }
});

test("the traces endpoint wins over the generic one, which gets /v1/traces; http/protobuf is the default", (t) => {
  t.deepEqual(testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).tracing, {
    url: "http://collector:4318/v1/traces",
    protocol: "http/protobuf",
  });
  t.deepEqual(
    testConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://other:9999/traces",
    }).tracing,
    {
      url: "http://other:9999/traces",
      protocol: "http/protobuf",
    },
  );
  t.deepEqual(
    testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }).tracing
      ?.protocol,
    "http/json",
  );
  t.deepEqual(
    testConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
    }).tracing?.protocol,
    "http/protobuf",
  );
  t.is(
    testConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }).tracing,
    undefined,
    "a protocol alone does not turn tracing on",
  );
});

test("grpc or a URL without a scheme stops the boot, naming the variable", (t) => {
  const grpc = t.throws(
    () => testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }),
    { instanceOf: ConfigError },
  );
  t.regex(grpc?.message ?? "", /OTEL_EXPORTER_OTLP_PROTOCOL must be equal to one of the allowed values/);
  const bare = t.throws(() => testConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "collector:4318" }), {
    instanceOf: ConfigError,
  });
  t.regex(bare?.message ?? "", /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must match pattern/);
});

test.serial(
  "with tracing off the PubSub builds no span and Redis commands go out unwrapped; with it on, both trace",
  async (t) => {
    const redisUp = await connectRedis("redis://127.0.0.1:6379", { role: "command" })
      .then(async (probe) => {
        await closeRedis(probe);
        return true;
      })
      .catch(() => false);
    const receiver = await startOtlpReceiver(); // the spans asked for are exported at the end
    const on = await createTestDeps(testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint }));
    try {
      for (const [what, telemetry, traced] of [
        ["off", createTelemetry(), false],
        ["on", on.telemetry, true],
      ] as const) {
        // Counts the spans asked for: none may be when no tracer is installed.
        let spans = 0;
        const counting: Telemetry = {
          ...telemetry,
          span: (start, metadata, fn) => (spans++, telemetry.span(start, metadata, fn)),
        };
        const pubsub = createLocalPubSub(counting);
        let delivered = 0;
        pubsub.subscribe("room:1", () => delivered++);
        pubsub.broadcast("room:1", "room.access.ended", { roomId: 1, userId: 2, reason: "removed" });
        t.is(delivered, 1, what);
        t.is(spans > 0, traced, `${what}: ${spans} spans asked for by the PubSub`);
        await pubsub.close();

        if (!redisUp) continue;
        const redis = await connectRedis("redis://127.0.0.1:6379", { role: "command", telemetry: counting });
        try {
          t.is(Object.hasOwn(redis, "sendCommand"), traced, `${what}: sendCommand wrapped`);
          t.is(await redis.ping(), "PONG");
        } finally {
          await closeRedis(redis);
        }
      }
    } finally {
      await on.dispose();
      await receiver.close();
    }
    if (!redisUp) t.log("no Redis on 127.0.0.1:6379: the connection half was not checked");
  },
);
