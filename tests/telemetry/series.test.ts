/**
 * The request path's metric series render exactly what prom-client renders for the same
 * observations: each test feeds one registry through series.ts and another through prom-client's
 * own Histogram/Counter, and compares the scrapes.
 */
import test from "ava";
import { Counter, Histogram, Registry } from "prom-client";
import { SeriesHistogram, Tally } from "../../lib/telemetry/series.ts";

const BUCKETS = [0.001, 0.01, 0.1, 1];
const LABELS = ["route", "status"] as const;
/** Interleaved combinations; values on bounds, between them, past the last, zero. */
const OBSERVATIONS: Array<[route: string, status: string, value: number]> = [
  ["/users/:id", "200", 0.0004],
  ["/rooms", "201", 0.01],
  ["/users/:id", "200", 0.5],
  ['/odd "quoted" \\ path\nline', "404", 3],
  ["/rooms", "201", 0],
  ["/users/:id", "500", 1],
  ["/users/:id", "200", 0.001],
  ["/rooms", "201", 12.25],
];

test("SeriesHistogram renders as prom-client's Histogram, series in order of first observation", async (t) => {
  const ours = new Registry();
  const theirs = new Registry();
  const common = { name: "x_duration_seconds", help: "A duration.", labelNames: LABELS, buckets: BUCKETS };
  const histogram = new SeriesHistogram({ ...common, registers: [ours] });
  const reference = new Histogram({ ...common, registers: [theirs] });
  for (const [route, status, value] of OBSERVATIONS) {
    histogram.series(`${route} ${status}`, () => ({ route, status })).observe(value);
    reference.observe({ route, status }, value);
  }
  t.is(await ours.metrics(), await theirs.metrics());
  t.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
  t.regex(await ours.metrics(), /x_duration_seconds_bucket\{le="\+Inf",route="\/rooms",status="201"\} 3/);
});

test("SeriesHistogram refuses a non-finite value (as prom-client does) and buckets that do not ascend", (t) => {
  const histogram = new SeriesHistogram({ name: "y", help: "y", labelNames: [], buckets: BUCKETS, registers: [] });
  t.throws(() => histogram.series("", () => ({})).observe(Number.NaN), { instanceOf: TypeError });
  t.throws(() => new SeriesHistogram({ name: "z", help: "z", labelNames: [], buckets: [1, 0.5], registers: [] }), {
    message: /buckets must ascend/,
  });
});

test("a Tally scraped into a Counter renders as incrementing the Counter directly, across scrapes", async (t) => {
  const ours = new Registry();
  const theirs = new Registry();
  const tally = new Tally<"version">();
  const common = { name: "x_requests_total", help: "Requests.", labelNames: ["version"] as const };
  const counter = new Counter({
    ...common,
    registers: [ours],
    collect() {
      tally.addTo(this);
    },
  });
  const reference = new Counter({ ...common, registers: [theirs] });
  counter.labels({ version: "2" }).inc(0);
  reference.labels({ version: "2" }).inc(0);
  const add = (version: number | undefined) => {
    tally.add(version ?? "none", () => ({ version: version === undefined ? "none" : String(version) }));
    reference.inc({ version: version === undefined ? "none" : String(version) });
  };
  for (const v of [1, undefined, 2, 1, 1]) add(v);
  t.is(await ours.metrics(), await theirs.metrics());
  t.regex(await ours.metrics(), /x_requests_total\{version="1"\} 3/);
  for (const v of [2, 2, undefined]) add(v);
  t.is(await ours.metrics(), await theirs.metrics(), "a second scrape adds only what came since the first");
  t.regex(await ours.metrics(), /x_requests_total\{version="2"\} 3/);
});
