/**
 * `--report FILE`: one self-contained HTML file that opens offline — the result's summary, and
 * charts drawn by uPlot (its minified build and stylesheet are read from node_modules and inlined):
 * publish→delivery percentiles over time, connections over time, deliveries per second, and the
 * server's CPU, RSS and sockets when --metrics was given.
 *
 *     await writeReport("run.html", result)
 */
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { summaryTable } from "./summary.ts";
import type { LoadResult } from "./types.ts";

const require = createRequire(import.meta.url);

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
// JSON inside <script>: "</script>" and U+2028/9 must not end or break the script.
const scriptJson = (v: unknown) =>
  JSON.stringify(v)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");

export async function renderReport(result: LoadResult): Promise<string> {
  const script = await readFile(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8");
  const style = await readFile(require.resolve("uplot/dist/uPlot.min.css"), "utf8");
  const nan = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : v);
  const t = result.timeline.map((p) => p.t);
  const charts: Array<{ title: string; series: Record<string, Array<number | null>> }> = [
    {
      title: "publish→delivery latency (ms), per second",
      series: {
        p50: result.timeline.map((p) => nan(p.p50)),
        p90: result.timeline.map((p) => nan(p.p90)),
        p99: result.timeline.map((p) => nan(p.p99)),
        max: result.timeline.map((p) => nan(p.max)),
      },
    },
    {
      title: "connections",
      series: { open: result.timeline.map((p) => p.connected), joined: result.timeline.map((p) => p.joined) },
    },
    { title: "deliveries per second", series: { "deliveries/s": result.timeline.map((p) => nan(p.deliveries_per_s)) } },
    {
      title: "client CPU (cores) and event-loop lag p99 (s)",
      series: {
        "client cpu": result.timeline.map((p) => p.client_cpu),
        "lag s": result.timeline.map((p) => p.lag_p99_ms / 1000),
      },
    },
  ];
  if (result.server !== undefined) {
    charts.push(
      { title: "server CPU (cores)", series: { "server cpu": result.timeline.map((p) => nan(p.server_cpu)) } },
      {
        title: "server RSS (MiB) and sockets",
        series: {
          "rss MiB": result.timeline.map((p) => nan(p.server_rss_mib)),
          sockets: result.timeline.map((p) => nan(p.server_sockets)),
        },
      },
    );
  }
  const verdict = result.valid
    ? `<p class="ok">valid</p>`
    : `<p class="bad">NOT VALID: ${escapeHtml(result.invalid_reasons.join("; "))}</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hypercast-load ${escapeHtml(result.scenario)} ${escapeHtml(result.started_at)}</title>
<style>${style}
body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}pre{background:#f4f4f4;padding:1em;overflow-x:auto}.ok{color:#070}.bad{color:#b00;font-weight:bold}
</style></head><body>
<h1>hypercast-load: ${escapeHtml(result.scenario)}</h1>
<p>${escapeHtml(result.started_at)} · ${escapeHtml(result.target.urls.join(", "))} · ${escapeHtml(result.target.topic)}</p>
${verdict}
<pre>${escapeHtml(summaryTable(result))}</pre>
<div id="charts"></div>
<details><summary>JSON result</summary><pre>${escapeHtml(JSON.stringify(result, null, 2))}</pre></details>
<script>${script}</script>
<script>
const t = ${scriptJson(t)};
const charts = ${scriptJson(charts)};
const colors = ["#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd"];
for (const chart of charts) {
  const el = document.createElement("div");
  document.getElementById("charts").appendChild(el);
  const names = Object.keys(chart.series);
  new uPlot({ title: chart.title, width: 960, height: 260, scales: { x: { time: false } },
    axes: [{ label: "seconds since start" }, {}],
    series: [{ label: "s" }, ...names.map((n, i) => ({ label: n, stroke: colors[i % colors.length], width: 1.5, spanGaps: true }))] },
    [t, ...names.map((n) => chart.series[n])], el);
}
</script>
</body></html>
`;
}

export async function writeReport(file: string, result: LoadResult): Promise<void> {
  await writeFile(file, await renderReport(result));
}
