/**
 * The self-check (pure): could the client processes keep up? From every worker's per-second CPU
 * (fraction of one core) and event-loop lag p99 samples, and the index of each worker's first
 * sample inside the measured phase, it returns why the run is not valid and what to warn about.
 *
 *     judgeClients({ cpu: [[0.95, 0.97]], lag: [[4, 5]], measureFrom: [0], cores: 1, maxClientCpu: 0.9, maxLagMs: 100 })
 *     // { invalid: ["client worker 1 was saturated: ≥ 90% of a core for 2 s (…)"], warnings: [] }
 */

export interface ClientSamples {
  /** Per worker, CPU per second as a fraction of one core. */
  cpu: number[][];
  /** Per worker, event-loop lag p99 per second, ms. */
  lag: number[][];
  /** Per worker, the index of its first sample inside the measured phase. */
  measureFrom: number[];
  /** Cores the workers may use together: min(workers, cores of the machine). */
  cores: number;
  maxClientCpu: number;
  maxLagMs: number;
}

/** Two consecutive samples at or over the bound. */
const saturated = (series: number[], bound: number) =>
  series.some((v, j) => j > 0 && v >= bound && series[j - 1]! >= bound);

export function judgeClients(s: ClientSamples): { invalid: string[]; warnings: string[] } {
  const invalid: string[] = [];
  const warnings: string[] = [];
  const measured = (series: number[], i: number) => series.slice(s.measureFrom[i] ?? 0);
  s.cpu.forEach((series, i) => {
    if (saturated(measured(series, i), s.maxClientCpu))
      invalid.push(
        `client worker ${i + 1} was saturated: ≥ ${Math.round(s.maxClientCpu * 100)}% of a core for 2 s (the figures would measure the client, not the server)`,
      );
  });
  // Summed second by second over the workers, as a fraction of the cores they may use.
  const length = Math.max(0, ...s.cpu.map((series) => series.length));
  const combined = Array.from({ length }, (_, j) => s.cpu.reduce((a, series) => a + (series[j] ?? 0), 0) / s.cores);
  if (saturated(combined.slice(Math.min(...s.measureFrom)), s.maxClientCpu))
    invalid.push(
      `the client processes together saturated the ${s.cores} core(s) they may use (≥ ${Math.round(s.maxClientCpu * 100)}% for 2 s)`,
    );
  s.lag.forEach((series, i) => {
    const worst = Math.max(0, ...measured(series, i));
    if (worst > s.maxLagMs)
      invalid.push(
        `client worker ${i + 1}'s event loop lagged ${worst.toFixed(0)} ms (p99 over 1 s) past the bound of ${s.maxLagMs} ms`,
      );
  });
  s.cpu.forEach((series, i) => {
    if (saturated(series.slice(0, s.measureFrom[i]), s.maxClientCpu))
      warnings.push(
        `client worker ${i + 1} was saturated while connecting: connect_ms and join_ms include client queueing`,
      );
  });
  return { invalid, warnings };
}
