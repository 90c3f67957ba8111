/**
 * One bounded load run with autocannon's programmatic API, and the statistics the HTTP
 * benchmark reports. Latencies are taken from every response at autocannon's own hrtime
 * resolution (its histogram rounds to whole milliseconds, too coarse for sub-millisecond p50s).
 *
 *     const run = await runLoad({ url, headers: { accept: "application/json" } }, { seconds: 6, connections: 10 })
 *     run.requestsPerSecond, percentile(run.latencies, 0.99)
 */
import autocannon from "autocannon";

export interface Target {
  url: string;
  headers: Record<string, string>;
}

export interface LoadOptions {
  seconds: number;
  connections: number;
}

export interface LoadRun {
  requests: number;
  requestsPerSecond: number;
  /** Milliseconds, sorted ascending. */
  latencies: Float64Array;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
}

export function runLoad(target: Target, options: LoadOptions): Promise<LoadRun> {
  return new Promise((resolve, reject) => {
    let latencies = new Float64Array(1 << 16);
    let count = 0;
    const instance = autocannon(
      {
        url: target.url,
        headers: target.headers,
        connections: options.connections,
        pipelining: 1,
        duration: options.seconds,
        timeout: 10,
      },
      (error, result) => {
        if (error !== null && error !== undefined) {
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        const sorted = latencies.slice(0, count).sort();
        resolve({
          requests: result.requests.total,
          requestsPerSecond: result.requests.total / result.duration,
          latencies: sorted,
          non2xx: result.non2xx,
          errors: result.errors,
        });
      },
    );
    instance.on("response", (_client, _status, _bytes, responseTime) => {
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = responseTime;
    });
  });
}

/** Nearest-rank percentile of ascending values (q in 0..1). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: readonly number[]): number {
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
