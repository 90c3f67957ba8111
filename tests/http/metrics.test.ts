/**
 * GET /metrics on a real server: the Prometheus text format, outside version negotiation and the
 * hypermedia; request histograms labelled by route pattern (never the raw path), method, status
 * and version; requests per version; database query durations and pool use; the realtime and
 * cluster series present from the start.
 */
import test from "ava";
import { startTestServer, type TestServer } from "../helpers/http.ts";

let app: TestServer;
let user: { id: number; token: string };

test.before(async () => {
  app = await startTestServer();
  user = await app.signUp("Metrics");
});
test.after.always(async () => {
  await app?.stop();
});

async function scrape(): Promise<string> {
  const res = await app.request("GET", "/metrics", { accept: "text/plain" });
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${res.text}`);
  return res.text;
}

/** The value of one series, e.g. `hypercast_http_requests_total{api_version="1"}` (0 when absent). */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

test.serial("served as Prometheus text to a scraper's Accept, and to an Accept the API would refuse", async (t) => {
  for (const accept of [
    "text/plain",
    "text/plain;version=0.0.4;q=1,*/*;q=0.1",
    "application/vnd.app.v3+json",
    "text/html",
  ]) {
    const res = await app.request("GET", "/metrics", { accept });
    t.is(res.status, 200, accept);
    t.is(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    t.regex(res.text, /^# HELP hypercast_http_request_duration_seconds /m);
    t.regex(res.text, /^# TYPE hypercast_http_request_duration_seconds histogram$/m);
  }
  t.is((await app.request("POST", "/metrics")).status, 405);
  t.is((await app.request("GET", "/v1/metrics")).status, 404, "not a versioned resource");
});

test.serial("not in the API's hypermedia", async (t) => {
  const root = await app.request("GET", "/");
  t.is(root.status, 200);
  t.notRegex(root.text, /metrics|health|ready/);
});

test.serial("request histogram: route pattern, method, status, api version — never the raw path", async (t) => {
  const before = await scrape();
  const v1 = `hypercast_http_request_duration_seconds_count{route="/users/:id",method="GET",status="200",api_version="1"}`;
  const v2 = `hypercast_http_request_duration_seconds_count{route="/users/:id",method="GET",status="200",api_version="2"}`;
  const missing = `hypercast_http_request_duration_seconds_count{route="/users/:id",method="GET",status="404",api_version="2"}`;
  const unmatched = `hypercast_http_request_duration_seconds_count{route="unmatched",method="GET",status="404",api_version="2"}`;
  t.is((await app.request("GET", `/v1/users/${user.id}`, { token: user.token })).status, 200);
  t.is(
    (await app.request("GET", `/users/${user.id}`, { token: user.token, accept: "application/vnd.app.v1+json" }))
      .status,
    200,
  );
  t.is((await app.request("GET", `/v2/users/${user.id}`, { token: user.token })).status, 200);
  t.is((await app.request("GET", "/users/987654", { token: user.token })).status, 404);
  t.is((await app.request("GET", "/no/such/place/123")).status, 404);
  const after = await scrape();
  t.is(sample(after, v1) - sample(before, v1), 2);
  t.is(sample(after, v2) - sample(before, v2), 1);
  t.is(sample(after, missing) - sample(before, missing), 1);
  t.is(sample(after, unmatched) - sample(before, unmatched), 1);
  const routes = new Set([...after.matchAll(/route="([^"]*)"/g)].map((m) => m[1]));
  for (const route of routes)
    t.true(route === "unmatched" || /^\/[a-z/:_-]*$/.test(route ?? ""), `route label ${route}`);
  t.false(after.includes(`/users/${user.id}"`));
  t.false(after.includes("/no/such/place"));
  t.false(after.includes('route="/v1'));
});

test.serial("requests per api version, what decides when v1 can be sunset", async (t) => {
  const before = await scrape();
  await app.request("GET", "/v1/");
  await app.request("GET", "/", { accept: "application/vnd.app.v1+json" });
  await app.request("GET", "/");
  await app.request("GET", "/", { accept: "text/html" }); // 406: no version served
  const after = await scrape();
  const delta = (v: string) =>
    sample(after, `hypercast_http_requests_total{api_version="${v}"}`) -
    sample(before, `hypercast_http_requests_total{api_version="${v}"}`);
  t.is(delta("1"), 2);
  t.is(delta("2"), 1);
  t.is(delta("none"), 2, "the 406 and the first scrape itself");
});

test.serial("database: query durations and pool use", async (t) => {
  const before = await scrape();
  t.is((await app.request("GET", "/users", { token: user.token })).status, 200);
  const after = await scrape();
  const count = (text: string) =>
    [...text.matchAll(/^hypercast_db_query_duration_seconds_count\{[^}]*\} (\d+)$/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
  t.true(count(after) - count(before) >= 2, "the token lookup and the page of users");
  t.regex(
    after,
    /^hypercast_db_query_duration_seconds_bucket\{le="0\.005",method="(select|first)",outcome="ok"\} \d+$/m,
  );
  t.regex(after, /^hypercast_db_pool_connections\{state="used"\} \d+$/m);
  t.regex(after, /^hypercast_db_pool_connections\{state="free"\} \d+$/m);
  t.regex(after, /^hypercast_db_pool_pending_acquires \d+$/m);
  const used = sample(after, 'hypercast_db_pool_connections{state="used"}');
  const free = sample(after, 'hypercast_db_pool_connections{state="free"}');
  t.true(used + free >= 1, "at least one connection is open after queries");
});

test.serial("realtime and cluster series are registered before any socket connects", async (t) => {
  const text = await scrape();
  for (const name of [
    "hypercast_realtime_sockets_open",
    "hypercast_realtime_channel_joins_total",
    "hypercast_realtime_channel_leaves_total",
    "hypercast_realtime_messages_in_total",
    "hypercast_realtime_messages_out_total",
    "hypercast_realtime_fanout_deliveries_total",
    "hypercast_realtime_presence_entries",
    "hypercast_cluster_publish_dropped_total",
  ]) {
    t.regex(text, new RegExp(`^# TYPE ${name} (counter|gauge)$`, "m"), name);
  }
  t.is(sample(text, "hypercast_cluster_publish_dropped_total"), 0);
  t.regex(text, /^nodejs_eventloop_lag_seconds /m, "process metrics");
});
