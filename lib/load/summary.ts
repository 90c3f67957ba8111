/**
 * What a person reads: the live progress line (rewritten in place on a terminal, plain lines
 * otherwise) and the summary table at the end of a run.
 *
 *     progressLine(point, totals, "publish") // "  12s publish  conn 400  joined 400  failed 0  deliv/s 40,112  p99 3.1 ms (so far 3.4 ms)  client cpu 40%  lag 4 ms"
 *     console.log(summaryTable(result))
 */
import type { Percentiles } from "./histograms.ts";
import type { LoadResult, TimelinePoint, WorkerCounters } from "./types.ts";

const n = (v: number, digits = 0) =>
  Number.isFinite(v)
    ? v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "–";
const ms = (p: Percentiles) =>
  p.count === 0 ? "–" : `${n(p.p50, 1)} / ${n(p.p90, 1)} / ${n(p.p99, 1)} / ${n(p.max, 1)}`;

export function progressLine(point: TimelinePoint, totals: WorkerCounters, phase: string): string {
  return (
    `${n(point.t).padStart(4)}s ${phase.padEnd(8)} conn ${n(point.connected)}  joined ${n(totals.joined)}  failed ${n(totals.failed)}` +
    `  deliv/s ${n(point.deliveries_per_s)}  p99 ${Number.isFinite(point.p99) ? `${n(point.p99, 1)} ms` : "–"} (so far ${Number.isFinite(point.p99_so_far) ? `${n(point.p99_so_far, 1)} ms` : "–"})  client cpu ${n(point.client_cpu * 100)}%  lag ${n(point.lag_p99_ms)} ms`
  );
}

export function summaryTable(r: LoadResult): string {
  const rows: Array<[string, string]> = [
    ["scenario", `${r.scenario} on ${r.target.topic} (${r.duration_s} s)`],
    ["valid", r.valid ? "yes" : `NO — ${r.invalid_reasons.join("; ")}`],
    [
      "connections attempted / joined / failed / closed",
      `${n(r.connections.attempted)} / ${n(r.connections.joined)} / ${n(r.connections.failed)} / ${n(r.connections.closed)}`,
    ],
    ["connect ms p50 / p90 / p99 / max", ms(r.connect_ms)],
    ["join ms p50 / p90 / p99 / max", ms(r.join_ms)],
  ];
  if (r.scenario === "fanout" || r.scenario === "churn") {
    rows.push(
      [
        "messages published / acknowledged / refused / unanswered",
        `${n(r.messages.published)} / ${n(r.messages.acknowledged)} / ${n(r.messages.refused)} / ${n(r.messages.unacknowledged)}`,
      ],
      ["messages due but never sent", n(r.messages.unsent)],
      ["push→reply ms p50 / p90 / p99 / max", ms(r.reply_ms)],
      ["deliveries expected / received", `${n(r.deliveries.expected)} / ${n(r.deliveries.received)}`],
      [
        "missing / duplicates / out of order",
        `${n(r.deliveries.missing)} / ${n(r.deliveries.duplicates)} / ${n(r.deliveries.out_of_order)}`,
      ],
      ["completeness", `${n(r.deliveries.completeness * 100, 3)}%`],
      ["publish→delivery ms p50 / p90 / p99 / max", ms(r.latency_ms)],
      ["deliveries per second", n(r.throughput.deliveries_per_s)],
    );
    if (r.by_url.length > 1)
      for (const u of r.by_url)
        rows.push([
          `  via ${u.url.replace(/\?.*/, "")}`,
          `${n(u.subscribers)} subs, ${n(u.received)} deliveries, ${ms(u.latency_ms)} ms`,
        ]);
  }
  if (r.presence !== undefined) {
    rows.push(
      [
        "presence views complete",
        `${n(r.presence.complete)} of ${n(r.presence.sockets)} (each seeing ${n(r.presence.target_metas)} metas)`,
      ],
      ["view complete ms p50 / p90 / p99 / max", ms(r.presence.view_complete_ms)],
      ["storm complete (first connect → last view)", `${n(r.presence.storm_complete_ms)} ms`],
      [
        "presence diffs per socket p50 / p99 / max",
        `${n(r.presence.diffs_per_socket.p50)} / ${n(r.presence.diffs_per_socket.p99)} / ${n(r.presence.diffs_per_socket.max)}`,
      ],
    );
  }
  if (r.churn !== undefined)
    rows.push(
      ["churn leaves / rejoins", `${n(r.churn.leaves)} / ${n(r.churn.rejoins)}`],
      ["rejoin ms p50 / p90 / p99 / max", ms(r.churn.rejoin_ms)],
    );
  for (const [group, counts] of Object.entries(r.errors)) {
    const list = Object.entries(counts);
    if (list.length > 0) rows.push([`errors: ${group}`, list.map(([k, v]) => `${k} ×${n(v)}`).join(", ")]);
  }
  rows.push([
    "client",
    `${r.client.kind}, ${r.client.workers} worker(s), ${n(r.client.cpu_s, 2)} CPU s, ${n(r.client.cpu_us_per_frame, 2)} µs CPU per frame, busiest ${n(r.client.max_core_fraction * 100)}% of a core, lag p99 ≤ ${n(r.client.lag_p99_ms)} ms`,
  ]);
  if (r.server !== undefined)
    rows.push([
      "server (metrics)",
      `${n(r.server.cpu_s, 2)} CPU s, RSS ≤ ${n(r.server.rss_max_mib, 1)} MiB, sockets ≤ ${n(r.server.sockets_max)} (${r.server.samples} samples)`,
    ]);
  for (const w of r.warnings) rows.push(["warning", w]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${v}`).join("\n");
}
