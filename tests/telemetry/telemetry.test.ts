/**
 * The telemetry core without I/O: the emitter, the catalogue, and logging and metrics as handlers
 * of it (a logger writing into an array, prom-client registries read back as text).
 */
import test from "ava";
import { register as globalRegistry } from "prom-client";
import { createTelemetry, EVENT_NAMES, type TelemetryEvent } from "../../lib/telemetry/index.ts";
import { EVENT_LOG_LEVELS, logEvents } from "../../lib/telemetry/log-handler.ts";
import { createLogger } from "../../lib/telemetry/logger.ts";
import { createMetrics } from "../../lib/telemetry/metrics.ts";

function capture(level: Parameters<typeof createLogger>[0] = "trace") {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger(level, {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { logger, lines };
}

const request = (overrides: Partial<Extract<TelemetryEvent, { event: "http.request.stop" }>["metadata"]> = {}) =>
  ({
    request_id: "req-1",
    method: "GET",
    path: "/v1/users/42",
    route: "/users/:id",
    status: 200,
    api_version: 1,
    user_id: 42,
    ...overrides,
  }) as const;

/** The value of one sample line, e.g. `hypercast_http_requests_total{api_version="1"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("the catalogue: unique, dotted lowercase names, each with a log level", (t) => {
  t.is(new Set(EVENT_NAMES).size, EVENT_NAMES.length);
  for (const name of EVENT_NAMES) {
    t.regex(name, /^[a-z]+(\.[a-z]+)+$/, name);
    t.truthy(EVENT_LOG_LEVELS[name], name);
  }
  for (const name of [
    "http.request.stop",
    "db.query.stop",
    "channel.join.stop",
    "channel.leave",
    "socket.open",
    "socket.close",
    "channel.message.in",
    "broadcast.fanout",
    "presence.change",
    "cluster.publish.dropped",
  ]) {
    t.true((EVENT_NAMES as readonly string[]).includes(name), name);
  }
});

test("emit reaches every attached handler, in order, until it is detached", (t) => {
  const telemetry = createTelemetry();
  const seen: string[] = [];
  const detachA = telemetry.attach((e) => seen.push(`a:${e.event}`));
  telemetry.attach((e) => {
    if (e.event === "db.query.stop") seen.push(`b:${e.metadata.method}:${e.measurements.duration_ms}`);
  });
  telemetry.emit("db.query.stop", { duration_ms: 3 }, { method: "select", outcome: "ok" });
  detachA();
  telemetry.emit("db.query.stop", { duration_ms: 4 }, { method: "insert", outcome: "ok" });
  t.deepEqual(seen, ["a:db.query.stop", "b:select:3", "b:insert:4"]);
});

test("a handler that throws is detached and reported; the others and the emitter carry on", (t) => {
  const reported: unknown[] = [];
  const telemetry = createTelemetry({ onHandlerError: (error) => reported.push(error) });
  let calls = 0;
  let good = 0;
  telemetry.attach(() => {
    calls++;
    throw new Error("broken handler");
  });
  telemetry.attach(() => good++);
  t.notThrows(() => telemetry.emit("socket.open", {}, { api_version: 2, user_id: 1 }));
  telemetry.emit("socket.open", {}, { api_version: 2, user_id: 1 });
  t.is(calls, 1);
  t.is(good, 2);
  t.is(reported.length, 1);
  t.is((reported[0] as Error).message, "broken handler");
});

test("log handler: one info line per request with request id, user, version, route, status, duration", (t) => {
  const { logger, lines } = capture("info");
  const telemetry = createTelemetry();
  telemetry.attach(logEvents(logger));
  telemetry.emit("http.request.stop", { duration_ms: 12.34567 }, request());
  telemetry.emit("db.query.stop", { duration_ms: 1 }, { method: "select", outcome: "ok" }); // debug: not at info
  t.is(lines.length, 1);
  t.like(lines[0], {
    level: 30,
    msg: "request",
    request_id: "req-1",
    method: "GET",
    path: "/v1/users/42",
    route: "/users/:id",
    status: 200,
    api_version: 1,
    user_id: 42,
    duration_ms: 12.346,
  });
});

test("log handler: follows the logger's level when it changes at run time, a parent's change included", (t) => {
  const { logger, lines } = capture("info");
  const child = logger.child({ component: "realtime" });
  const telemetry = createTelemetry();
  telemetry.attach(logEvents(logger));
  telemetry.attach(logEvents(child));
  const query = () => telemetry.emit("db.query.stop", { duration_ms: 1 }, { method: "select", outcome: "ok" });
  query(); // debug: not at info
  t.is(lines.length, 0);
  logger.level = "debug"; // the child follows its parent's level, and so does its handler
  query();
  t.deepEqual(
    lines.map((line) => [line["msg"], line["component"]]),
    [
      ["db.query.stop", undefined],
      ["db.query.stop", "realtime"],
    ],
  );
  child.level = "warn";
  logger.level = "error";
  query();
  t.is(lines.length, 2);
});

test("log handler: levels per event; probes and scrapes are quiet unless they fail", (t) => {
  const { logger, lines } = capture("trace");
  const telemetry = createTelemetry();
  telemetry.attach(logEvents(logger));
  telemetry.emit("db.query.stop", { duration_ms: 0.5 }, { method: "select", outcome: "ok" });
  telemetry.emit("cluster.publish.dropped", { count: 1 }, { adapter: "redis", reason: "disconnected" });
  telemetry.emit(
    "http.request.stop",
    { duration_ms: 1 },
    request({ route: "/health", path: "/health", api_version: undefined, user_id: undefined }),
  );
  telemetry.emit(
    "http.request.stop",
    { duration_ms: 1 },
    request({ route: "/ready", path: "/ready", status: 503, api_version: undefined }),
  );
  t.like(lines[0], { level: 20, msg: "db.query.stop", method: "select", outcome: "ok", duration_ms: 0.5 });
  t.like(lines[1], { level: 40, msg: "cluster.publish.dropped", adapter: "redis", reason: "disconnected", count: 1 });
  t.like(lines[2], { level: 20, route: "/health" });
  t.like(lines[3], { level: 30, route: "/ready", status: 503 });
});

test("metrics handler: HTTP histogram by route pattern, method, status and version; requests per version", async (t) => {
  const metrics = createMetrics({ processMetrics: false });
  const telemetry = createTelemetry();
  telemetry.attach(metrics.handle);
  telemetry.emit("http.request.stop", { duration_ms: 20 }, request());
  telemetry.emit("http.request.stop", { duration_ms: 30 }, request({ path: "/users/43", api_version: 2 }));
  telemetry.emit(
    "http.request.stop",
    { duration_ms: 1 },
    request({ path: "/nope", route: undefined, status: 404, api_version: 2 }),
  );
  telemetry.emit(
    "http.request.stop",
    { duration_ms: 1 },
    request({ path: "/", route: "/", status: 406, api_version: undefined }),
  );
  const text = await metrics.render();
  t.is(
    sample(
      text,
      'hypercast_http_request_duration_seconds_count{route="/users/:id",method="GET",status="200",api_version="1"}',
    ),
    1,
  );
  t.is(
    sample(
      text,
      'hypercast_http_request_duration_seconds_sum{route="/users/:id",method="GET",status="200",api_version="1"}',
    ),
    0.02,
  );
  t.is(
    sample(
      text,
      'hypercast_http_request_duration_seconds_count{route="unmatched",method="GET",status="404",api_version="2"}',
    ),
    1,
  );
  t.is(sample(text, 'hypercast_http_requests_total{api_version="1"}'), 1);
  t.is(sample(text, 'hypercast_http_requests_total{api_version="2"}'), 2);
  t.is(sample(text, 'hypercast_http_requests_total{api_version="none"}'), 1);
  t.false(text.includes("/users/42"), "a raw path never becomes a label");
  t.is(metrics.contentType, "text/plain; version=0.0.4; charset=utf-8");
});

test("metrics handler: realtime and cluster series exist at zero, then follow their events", async (t) => {
  const metrics = createMetrics({ processMetrics: false });
  const before = await metrics.render();
  for (const series of [
    "hypercast_realtime_sockets_open",
    'hypercast_realtime_sockets_open_by_version{api_version="1"}',
    'hypercast_realtime_sockets_open_by_version{api_version="2"}',
    'hypercast_realtime_channel_joins_total{outcome="ok"}',
    "hypercast_realtime_messages_in_total",
    "hypercast_realtime_messages_out_total",
    "hypercast_realtime_fanout_deliveries_total",
    "hypercast_realtime_presence_entries",
    "hypercast_cluster_publish_dropped_total",
  ]) {
    t.is(sample(before, series), 0, series);
  }
  const telemetry = createTelemetry();
  telemetry.attach(metrics.handle);
  telemetry.emit("socket.open", {}, { api_version: 2, user_id: 1 });
  telemetry.emit("socket.open", {}, { api_version: 1, user_id: 2 });
  telemetry.emit("socket.open", {}, { api_version: 1, user_id: 3 });
  telemetry.emit("socket.close", { duration_ms: 5 }, { code: 1000, user_id: 2, api_version: 1 });
  telemetry.emit(
    "channel.join.stop",
    { duration_ms: 2 },
    { topic: "room:1", outcome: "ok", reason: undefined, user_id: 1 },
  );
  telemetry.emit(
    "channel.join.stop",
    { duration_ms: 2 },
    { topic: "room:9", outcome: "error", reason: "not_found", user_id: 1 },
  );
  telemetry.emit("channel.leave", {}, { topic: "room:1", reason: "closed" });
  telemetry.emit("channel.message.in", { bytes: 40 }, { topic: "room:1", event: "message:new" });
  telemetry.emit("channel.message.out", { count: 2 }, { topic: "room:1", event: "phx_reply" });
  telemetry.emit("broadcast.fanout", { deliveries: 10 }, { topic: "room:1", event: "message:new" });
  telemetry.emit("presence.change", { joins: 3, leaves: 1 }, { topic: "room:1" });
  telemetry.emit("cluster.publish.dropped", { count: 2 }, { adapter: "redis", reason: "disconnected" });
  const after = await metrics.render();
  t.is(sample(after, "hypercast_realtime_sockets_open"), 2);
  t.is(sample(after, 'hypercast_realtime_sockets_open_by_version{api_version="1"}'), 1);
  t.is(sample(after, 'hypercast_realtime_sockets_open_by_version{api_version="2"}'), 1);
  t.is(sample(after, 'hypercast_realtime_channel_joins_total{outcome="ok"}'), 1);
  t.is(sample(after, 'hypercast_realtime_channel_joins_total{outcome="error"}'), 1);
  t.is(sample(after, 'hypercast_realtime_channel_leaves_total{reason="closed"}'), 1);
  t.is(sample(after, "hypercast_realtime_messages_in_total"), 1);
  t.is(sample(after, "hypercast_realtime_messages_out_total"), 2);
  t.is(sample(after, "hypercast_realtime_fanout_deliveries_total"), 10);
  t.is(sample(after, "hypercast_realtime_presence_entries"), 2);
  t.is(sample(after, "hypercast_cluster_publish_dropped_total"), 2);
});

test("metrics: one registry per app, never prom-client's global one", async (t) => {
  const a = createMetrics();
  const b = createMetrics();
  const ta = createTelemetry();
  ta.attach(a.handle);
  ta.emit("http.request.stop", { duration_ms: 1 }, request());
  t.is(sample(await a.render(), 'hypercast_http_requests_total{api_version="1"}'), 1);
  t.is(
    sample(await b.render(), 'hypercast_http_requests_total{api_version="1"}'),
    0,
    "registered at zero, never counted from another app",
  );
  t.regex(await a.render(), /^process_cpu_user_seconds_total /m, "process metrics are on by default");
  t.false((await globalRegistry.metrics()).includes("hypercast_"));
});
