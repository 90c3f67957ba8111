/**
 * HDR histograms (hdr-histogram-js) as the load generator keeps them: values in microseconds, three
 * significant digits, up to an hour; encoded to compressed base64 to cross process boundaries and
 * added up in the coordinator.
 *
 *     const h = createHistogram(); h.recordValue(toMicros(12.5))
 *     const merged = decodeInto(createHistogram(), encode(h)); summarize(merged) // {p50, p90, p99, max} in ms
 */
import * as hdr from "hdr-histogram-js";

export type Histogram = hdr.Histogram;

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  count: number;
}

const HIGHEST_MICROS = 3_600_000_000;

export function createHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_MICROS,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });
}

export function toMicros(ms: number): number {
  return Math.min(HIGHEST_MICROS, Math.max(1, Math.round(ms * 1000)));
}

export function encode(histogram: Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

/** Adds an encoded histogram into `into` and returns `into`. */
export function decodeInto(into: Histogram, base64: string): Histogram {
  if (base64 === "") return into;
  const other = hdr.decodeFromCompressedBase64(base64, 32);
  into.add(other);
  other.destroy();
  return into;
}

const round = (micros: number): number => Math.round(micros) / 1000;

/** p50/p90/p99/max in ms (NaN when empty) and the number of values. */
export function summarize(histogram: Histogram): Percentiles {
  if (histogram.totalCount === 0)
    return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, count: 0 };
  return {
    p50: round(histogram.getValueAtPercentile(50)),
    p90: round(histogram.getValueAtPercentile(90)),
    p99: round(histogram.getValueAtPercentile(99)),
    max: round(histogram.maxValue),
    count: histogram.totalCount,
  };
}

/**
 * A worker's delivery latencies. Each is recorded once, in this second's histogram of its URL; once
 * a second `fold` adds those up into the second's histogram of all URLs (the timeline's), each URL's
 * and the run's. A record costs hdr-histogram-js a `Math.pow`: one per delivery, not three.
 *
 *     const latencies = new Latencies(2)
 *     latencies.record(1, 1500)
 *     latencies.fold().totalCount // 1: this second's, all URLs together
 *     latencies.run.totalCount    // 1, and latencies.byUrl[1].totalCount 1
 */
export class Latencies {
  readonly run = createHistogram();
  readonly byUrl: Histogram[];
  private readonly second = createHistogram();
  private readonly secondByUrl: Histogram[];

  constructor(urls: number) {
    this.byUrl = Array.from({ length: urls }, createHistogram);
    this.secondByUrl = Array.from({ length: urls }, createHistogram);
  }

  record(url: number, micros: number): void {
    this.secondByUrl[url]!.recordValue(micros);
  }

  /** Adds up what was recorded since the last call; returns it, all URLs together, until the next call. */
  fold(): Histogram {
    this.second.reset();
    for (let url = 0; url < this.secondByUrl.length; url++) {
      const recorded = this.secondByUrl[url]!;
      if (recorded.totalCount === 0) continue;
      this.second.add(recorded);
      this.byUrl[url]!.add(recorded);
      recorded.reset();
    }
    this.run.add(this.second);
    return this.second;
  }
}
