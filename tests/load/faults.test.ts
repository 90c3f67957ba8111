/**
 * The load generator against a Phoenix server that misbehaves on purpose (./phoenix-server.ts):
 * every kind of fault it is meant to expose must show in the result, counted exactly where the
 * fault is countable.
 */
import test from "ava";
import { load, startPhoenixServer } from "./helpers.ts";

const SUBSCRIBERS = 40;
const fanout = (url: string, extra: string[] = []) => [
  "fanout",
  "--url",
  url,
  "--topic",
  "room:1",
  "--subscribers",
  String(SUBSCRIBERS),
  "--rate",
  "50",
  "--duration",
  "2",
  "--drain",
  "2",
  ...extra,
];

test.serial("a well-behaved server: every delivery received once, in order, nothing missing", async (t) => {
  const server = await startPhoenixServer();
  t.teardown(server.stop);
  const r = await load(fanout(server.url, ["--workers", "2"]));
  t.true(r.messages.published >= 90, `published ${r.messages.published}`);
  t.is(r.messages.acknowledged, r.messages.published);
  t.is(r.connections.joined, SUBSCRIBERS + 1);
  t.is(r.deliveries.expected, r.messages.published * SUBSCRIBERS);
  t.is(r.deliveries.received, r.deliveries.expected);
  t.is(r.deliveries.missing, 0);
  t.is(r.deliveries.duplicates, 0);
  t.is(r.deliveries.out_of_order, 0);
  t.is(r.deliveries.completeness, 1);
  t.is(r.latency_ms.count, r.deliveries.received);
  t.deepEqual(r.errors["connect"], {});
});

test.serial("dropped broadcasts are reported as missing, exactly", async (t) => {
  const server = await startPhoenixServer({ dropEvery: 10 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  const dropped = Math.floor(r.messages.published / 10);
  t.true(dropped >= 9);
  t.is(r.deliveries.missing, dropped * SUBSCRIBERS);
  t.is(r.deliveries.received, (r.messages.published - dropped) * SUBSCRIBERS);
  t.is(r.deliveries.completeness, (r.messages.published - dropped) / r.messages.published);
});

test.serial("duplicated broadcasts are reported as duplicates and not counted as deliveries", async (t) => {
  const server = await startPhoenixServer({ duplicateEvery: 5 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  t.is(r.deliveries.duplicates, Math.floor(r.messages.published / 5) * SUBSCRIBERS);
  t.is(r.deliveries.received, r.deliveries.expected);
  t.is(r.deliveries.missing, 0);
});

test.serial("reordered broadcasts are reported as out of order", async (t) => {
  const server = await startPhoenixServer({ reorderEvery: 4 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  const held = Math.floor(r.messages.published / 4);
  // The last held message is lost when publishing ends right after it.
  const released = r.messages.published % 4 === 0 ? held - 1 : held;
  t.is(r.deliveries.out_of_order, released * SUBSCRIBERS);
  t.is(r.deliveries.missing, (held - released) * SUBSCRIBERS);
});

test.serial("a 200 ms delay shows in every percentile", async (t) => {
  const server = await startPhoenixServer({ delayMs: 200 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  t.true(r.latency_ms.p50 >= 200, `p50 ${r.latency_ms.p50}`);
  t.true(r.deliveries.completeness === 1);
});

test.serial(
  "a 1 s stall of the server in a 10 s run shows in p99 (latency from the scheduled send time)",
  async (t) => {
    const server = await startPhoenixServer({ stallAfterMs: 4000, stallMs: 1000 });
    t.teardown(server.stop);
    const r = await load([
      "fanout",
      "--url",
      server.url,
      "--topic",
      "room:1",
      "--subscribers",
      "20",
      "--rate",
      "50",
      "--duration",
      "10",
      "--drain",
      "3",
    ]);
    // Messages due during the stall wait up to 1 s: a tenth of all messages, so the top 1 % waited ≥ ~0.9 s.
    t.true(r.latency_ms.p99 >= 800, `p99 ${r.latency_ms.p99} ms`);
    t.true(r.latency_ms.max >= 900, `max ${r.latency_ms.max} ms`);
    t.true(r.reply_ms.max >= 900, `push→reply max ${r.reply_ms.max} ms`);
    t.is(r.deliveries.completeness, 1);
    // The publisher kept its schedule through the stall (open loop): nothing was held back.
    t.true(r.messages.published >= 495, `published ${r.messages.published}`);
  },
);

test.serial("refused upgrades are counted by status", async (t) => {
  const server = await startPhoenixServer({ refuseUpgrades: 2 });
  t.teardown(server.stop);
  const r = await load(["connect", "--url", server.url, "--topic", "room:1", "--subscribers", "40", "--duration", "1"]);
  t.is(r.connections.attempted, 40);
  t.is(r.errors["connect"]?.["upgrade_403"], 20);
  t.is(r.connections.failed, 20);
  t.is(r.connections.joined, 20);
});

test.serial("churn: sockets leave and rejoin while the steady subscribers miss nothing", async (t) => {
  const server = await startPhoenixServer();
  t.teardown(server.stop);
  const r = await load([
    "churn",
    "--url",
    server.url,
    "--topic",
    "room:1",
    "--subscribers",
    "30",
    "--churners",
    "10",
    "--churn-rate",
    "20",
    "--rate",
    "40",
    "--duration",
    "2",
  ]);
  t.true(r.churn!.leaves >= 20, `leaves ${r.churn!.leaves}`);
  t.true(r.churn!.rejoins >= r.churn!.leaves - 10);
  t.is(r.churn!.rejoin_ms.count, r.churn!.rejoins);
  t.is(r.deliveries.expected, r.messages.published * 30);
  t.is(r.deliveries.completeness, 1);
});

test.serial("two runs on one topic (two client machines) each account for their own messages only", async (t) => {
  const server = await startPhoenixServer();
  t.teardown(server.stop);
  const [a, b] = await Promise.all([load(fanout(server.url)), load(fanout(server.url))]);
  for (const r of [a!, b!]) {
    t.is(r.deliveries.received, r.deliveries.expected);
    t.is(r.deliveries.duplicates, 0);
    t.is(r.deliveries.foreign, 0);
  }
  t.not(a!.run_id, b!.run_id);
});

test.serial("sockets the server closes are counted, by close code, and their deliveries missing", async (t) => {
  const server = await startPhoenixServer({ closeAfter: 10, closeCode: 4503 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  t.is(r.connections.closed, SUBSCRIBERS);
  t.is(r.errors["close"]?.["4503"], SUBSCRIBERS);
  // Nothing after the 10th message reached a subscriber (a few of the first ten may still have been in flight).
  t.true(r.deliveries.received <= 10 * SUBSCRIBERS, `received ${r.deliveries.received}`);
  t.is(r.deliveries.missing, r.deliveries.expected - r.deliveries.received);
  t.true(r.deliveries.completeness < 0.2);
});
