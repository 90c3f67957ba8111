/**
 * The server's own view during a run: scrapes a Prometheus text endpoint every second and keeps
 * CPU (rate of `process_cpu_seconds_total`), RSS (`process_resident_memory_bytes`) and open sockets
 * (the first gauge whose name ends in `sockets_open`, `_connections` or `websockets`, summed over
 * its labels). Names may carry a prefix (Hypercast's `hypercast_`…, prom-client's defaults are bare).
 *
 *     const scraper = startScraper("http://127.0.0.1:4000/metrics"); …; scraper.stop(); scraper.samples
 */

export interface ServerSample {
  at: number;
  cpuSeconds: number;
  rssBytes: number;
  sockets: number;
}

export interface Scraper {
  samples: ServerSample[];
  errors: number;
  stop(): Promise<void>;
}

/** Sums the samples of every series whose metric name matches. */
function sum(text: string, name: RegExp): number {
  let total = Number.NaN;
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match === null || !name.test(match[1]!)) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value)) total = (Number.isNaN(total) ? 0 : total) + value;
  }
  return total;
}

export function parseMetrics(text: string, at: number): ServerSample {
  return {
    at,
    cpuSeconds: sum(text, /(^|_)process_cpu_seconds_total$/),
    rssBytes: sum(text, /(^|_)process_resident_memory_bytes$/),
    sockets: sum(text, /(sockets_open|websocket_connections|ws_connections|websockets)$/),
  };
}

export function startScraper(url: string, everyMs = 1000): Scraper {
  const scraper: Scraper = { samples: [], errors: 0, stop: async () => {} };
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  const scrape = async () => {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(500, everyMs - 100)) });
      if (!response.ok) throw new Error(String(response.status));
      scraper.samples.push(parseMetrics(await response.text(), Date.now()));
    } catch {
      scraper.errors++;
    }
  };
  const timer = setInterval(() => {
    if (!stopped) inFlight = scrape();
  }, everyMs);
  inFlight = scrape();
  scraper.stop = async () => {
    stopped = true;
    clearInterval(timer);
    await inFlight;
  };
  return scraper;
}
