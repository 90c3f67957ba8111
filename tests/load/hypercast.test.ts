/**
 * The load generator against a real Hypercast (HTTP and sockets on port 0, PGlite or PostgreSQL):
 * it mints its own socket token over the API, and a few hundred sockets fan out, hold and storm a
 * presence-tracked room in seconds. Hypercast's per-socket and API rate limits are raised, as a
 * load test of one's own server would raise them.
 */
import test from "ava";
import { startTestServer, type TestServer } from "../helpers/http.ts";
import { renderReport } from "../../lib/load/report.ts";
import { load } from "./helpers.ts";

let app: TestServer;
test.before(async () => {
  app = await startTestServer({
    SOCKET_RATE_LIMIT: "100000",
    SOCKET_RATE_BURST: "100000",
    API_RATE_LIMIT: "100000",
    SOCKETS_PER_USER: "100000",
    RATE_LIMITS: "off",
  });
});
test.after.always(async () => {
  await app?.stop();
});

const credentials = () => [
  "--api",
  app.url,
  "--email",
  `load-${Math.random().toString(36).slice(2)}@example.com`,
  "--password",
  "load test password",
];

test.serial("fanout: 300 subscribers, every message persisted, acknowledged and delivered once", async (t) => {
  const r = await load([
    "fanout",
    "--url",
    app.server.socketUrl,
    ...credentials(),
    "--subscribers",
    "300",
    "--rate",
    "20",
    "--duration",
    "3",
    "--workers",
    "2",
    "--metrics",
    `${app.url}/metrics`,
  ]);
  t.regex(r.target.topic, /^room:\d+$/);
  t.is(r.connections.joined, 301);
  t.true(r.messages.published >= 55, `published ${r.messages.published}`);
  t.is(r.messages.acknowledged, r.messages.published);
  t.is(r.deliveries.expected, r.messages.published * 300);
  t.is(r.deliveries.missing, 0);
  t.is(r.deliveries.duplicates, 0);
  t.is(r.deliveries.out_of_order, 0);
  const stored = await app.deps.db("messages").count<Array<{ count: string | number }>>({ count: "*" });
  t.true(Number(stored[0]!.count) >= r.messages.published);
  t.true(r.server!.samples > 0);
  t.true(r.server!.sockets_max >= 300, `server sockets ${r.server!.sockets_max}`);
  t.true(r.server!.rss_max_mib > 10);
  t.true(Number.isFinite(r.server!.cpu_s) && r.server!.cpu_s > 0, `server cpu_s ${r.server!.cpu_s}`);
  t.true(
    r.timeline.some((p) => Number.isFinite(p.server_cpu)),
    "a timeline point carries the server's CPU",
  );
  const html = await renderReport(r);
  t.true(html.includes('"title":"server CPU (cores)"'), "the report charts the server's CPU");
  t.true(html.includes('"title":"server RSS (MiB) and sockets"'));
});

test.serial("connect: 300 sockets connect, join and hold; a bad token is refused with 403", async (t) => {
  const r = await load([
    "connect",
    "--url",
    app.server.socketUrl,
    ...credentials(),
    "--subscribers",
    "300",
    "--duration",
    "2",
  ]);
  t.is(r.connections.joined, 300);
  t.is(r.connections.closed, 0);
  t.is(r.join_ms.count, 300);
  const refused = await load([
    "connect",
    "--url",
    app.server.socketUrl,
    "--topic",
    "room:1",
    "--param",
    "token=forged",
    "--subscribers",
    "5",
    "--duration",
    "0",
  ]);
  t.is(refused.errors["connect"]?.["upgrade_403"], 5);
  t.false(refused.valid);
  t.deepEqual(refused.invalid_reasons, ["no socket joined: nothing was measured"]);
});

test.serial("presence: a join storm of 100 tracked sockets ends with every socket seeing all 100", async (t) => {
  const r = await load([
    "presence",
    "--url",
    app.server.socketUrl,
    ...credentials(),
    "--subscribers",
    "100",
    "--duration",
    "20",
  ]);
  t.is(r.connections.joined, 100);
  t.is(r.presence!.complete, 100);
  t.is(r.presence!.view_complete_ms.count, 100);
  t.true(Number.isFinite(r.presence!.storm_complete_ms));
  // From the first dial: at least the slowest socket's own wait, and not the run's whole length.
  t.true(r.presence!.storm_complete_ms >= r.presence!.view_complete_ms.max - 1);
  t.true(r.presence!.storm_complete_ms < r.duration_s * 1000);
  // Diffs are coalesced: far fewer diff frames per socket than joins.
  t.true(r.presence!.diffs_per_socket.max < 100, `diffs per socket max ${r.presence!.diffs_per_socket.max}`);
});

test.serial("a join refused by the server is counted by reason", async (t) => {
  const r = await load([
    "connect",
    "--url",
    app.server.socketUrl,
    ...credentials(),
    "--topic",
    "room:999999",
    "--subscribers",
    "3",
    "--duration",
    "0",
  ]);
  t.is(r.errors["join"]?.["not_found"], 3);
  t.is(r.connections.failed, 3);
});
