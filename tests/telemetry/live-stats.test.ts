/**
 * The dashboard's live statistics (lib/telemetry/live-stats.ts) fed through a real telemetry
 * emitter: per-second rates, percentiles, the open-socket gauge, busiest topics (top-K, with
 * subscriber and presence counts) and the table's bounds; and the duration histogram.
 */
import test from "ava";
import { createTelemetry, type Telemetry } from "../../lib/telemetry/index.ts";
import { CLOSE } from "../../lib/realtime/close-codes.ts";
import { createLiveStats } from "../../lib/telemetry/live-stats.ts";
import { createDurationHistogram } from "../../lib/telemetry/quantiles.ts";
import type { ApiVersion } from "../../lib/versions.ts";

function http(telemetry: Telemetry, version: ApiVersion | undefined, status: number, ms: number): void {
  telemetry.emit(
    "http.request.stop",
    { duration_ms: ms },
    { request_id: "r", method: "GET", path: "/", route: "/", status, api_version: version, user_id: undefined },
  );
}

function join(telemetry: Telemetry, topic: string, outcome: "ok" | "error" = "ok"): void {
  telemetry.emit(
    "channel.join.stop",
    { duration_ms: 1 },
    { topic, outcome, reason: outcome === "ok" ? undefined : "unauthorized", user_id: 1 },
  );
}

test("HTTP: requests per second by version, percentiles and errors over the interval, then a fresh interval", (t) => {
  const telemetry = createTelemetry();
  const stats = createLiveStats();
  telemetry.attach(stats.handle);
  for (let i = 0; i < 98; i++) http(telemetry, 2, 200, 1);
  http(telemetry, 1, 404, 1);
  http(telemetry, undefined, 503, 1000);
  const { http: figures } = stats.take(2000);
  t.deepEqual(figures.by_version, { "2": 49, "1": 0.5, none: 0.5 });
  t.is(figures.rps, 50);
  t.is(figures.client_errors_per_s, 0.5);
  t.is(figures.server_errors_per_s, 0.5);
  t.true(figures.p50_ms >= 1 && figures.p50_ms < 1.2, `p50 ${figures.p50_ms}`);
  t.true(figures.p99_ms >= 1 && figures.p99_ms < 1.2, "the 99th of 100 is still a 1 ms request");
  t.is(stats.take(1000).http.rps, 0, "the next interval starts empty");
});

test("sockets: the open gauge, joins, messages, deliveries and slow-consumer closes", (t) => {
  const telemetry = createTelemetry();
  const stats = createLiveStats({ slowConsumerCode: CLOSE.SLOW_CONSUMER });
  telemetry.attach(stats.handle);
  for (let i = 0; i < 3; i++) telemetry.emit("socket.open", {}, { api_version: 2, user_id: i });
  telemetry.emit("socket.close", { duration_ms: 5 }, { code: CLOSE.SLOW_CONSUMER, user_id: 0, api_version: 2 });
  join(telemetry, "room:1");
  join(telemetry, "room:2", "error");
  telemetry.emit("channel.message.in", { bytes: 10 }, { topic: "room:1", event: "message:new" });
  telemetry.emit("broadcast.fanout", { deliveries: 40 }, { topic: "room:1", event: "message:new" });
  const { sockets } = stats.take(1000);
  t.deepEqual(sockets, {
    open: 2,
    joins_per_s: 1,
    join_errors_per_s: 1,
    messages_in_per_s: 1,
    deliveries_per_s: 40,
    slow_consumer_disconnects: 1,
  });
  t.is(stats.take(1000).sockets.open, 2, "the gauge carries over; rates do not");
});

test("topics: the busiest K by events, then by subscribers, with presence counts read for them; only joined topics are recorded", (t) => {
  const telemetry = createTelemetry();
  const read: string[] = [];
  const stats = createLiveStats({
    topTopics: 2,
    presences: (topic) => (read.push(topic), topic === "room:3" ? 2 : 0),
  });
  telemetry.attach(stats.handle);
  for (const topic of ["room:1", "room:2", "room:2", "room:3", "room:3", "room:3"]) join(telemetry, topic);
  telemetry.emit("broadcast.fanout", { deliveries: 10 }, { topic: "room:1", event: "message:new" });
  // Presence counts are read, not counted from diffs: a diff changes nothing.
  telemetry.emit("presence.change", { joins: 3, leaves: 1 }, { topic: "room:1" });
  telemetry.emit("channel.message.in", { bytes: 1 }, { topic: "room:999", event: "x" }); // never joined: no row
  const first = stats.take(1000).topics;
  t.is(first.count, 3);
  t.deepEqual(first.top, [
    { topic: "room:1", subscribers: 1, presences: 0, rate: 10 },
    { topic: "room:3", subscribers: 3, presences: 2, rate: 0 },
  ]);
  t.deepEqual(read.sort(), ["room:1", "room:3"], "presences are read for the listed topics only (O(K))");
  telemetry.emit("channel.leave", {}, { topic: "room:1", reason: "leave" });
  const second = stats.take(1000).topics;
  t.is(second.count, 2, "a topic without subscribers leaves the table");
  t.deepEqual(
    second.top.map((r) => r.topic),
    ["room:3", "room:2"],
  );
});

test("the duration histogram reads percentiles within a bucket (at most 19% high)", (t) => {
  const h = createDurationHistogram();
  t.is(h.percentile(0.5), 0);
  for (let ms = 1; ms <= 1000; ms++) h.record(ms);
  for (const [q, truth] of [
    [0.5, 500],
    [0.99, 990],
    [1, 1000],
  ] as const) {
    const read = h.percentile(q);
    t.true(read >= truth && read <= truth * 1.19, `p${q * 100}: ${read} for ${truth}`);
  }
  h.record(0);
  h.record(1e9);
  t.is(h.count, 1002);
  h.reset();
  t.is(h.count, 0);
});
