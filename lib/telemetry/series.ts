/**
 * Metric series fed on the request path without prom-client's per-observation work. prom-client
 * hashes and validates the labels object on every `observe`/`inc`, its `labels(...)` children
 * included (they keep the labels, not the series); that is a few hundred nanoseconds per call, and
 * a request makes several. Here each label combination is looked up by a key the caller builds
 * cheaply from the label values (its labels object is made once, the first time), and then only
 * numbers change:
 *
 * - `SeriesHistogram`: a histogram registered on the registry that renders exactly what a
 *   prom-client `Histogram` with the same name, help, labels and buckets renders.
 * - `Tally`: counts added to a prom-client `Counter` when it is scraped (its `collect`), so the
 *   counter, its output and its series order stay prom-client's.
 *
 *     const tally = new Tally<"api_version">()
 *     const requests = new Counter({ name, help, labelNames: ["api_version"], registers, collect() { tally.addTo(this) } })
 *     tally.add(version, () => ({ api_version: String(version) }))
 *
 * Callers keep the label values bounded (route patterns, versions), as the key space is the
 * series space.
 */
import type { Counter, Metric, Registry } from "prom-client";

type Key = string | number;

/** Counts per label combination, handed to a prom-client counter at scrape time. */
export class Tally<L extends string> {
  readonly #pending = new Map<Key, { labels: Record<L, string>; count: number }>();

  /** Adds `count` (default 1) to the combination under `key`; `labels()` is called once per key. */
  add(key: Key, labels: () => Record<L, string>, count = 1): void {
    const entry = this.#pending.get(key);
    if (entry !== undefined) entry.count += count;
    else this.#pending.set(key, { labels: labels(), count });
  }

  /** Moves what was counted since the last call into `counter` (call it from the counter's `collect`). */
  addTo(counter: Counter<L>): void {
    for (const entry of this.#pending.values()) {
      if (entry.count === 0) continue;
      counter.inc(entry.labels, entry.count);
      entry.count = 0;
    }
  }
}

export interface SeriesHistogramOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  /** Upper bounds, ascending (as prom-client requires). */
  buckets: readonly number[];
  registers: Registry[];
}

/** One label combination of a `SeriesHistogram`. */
export interface HistogramSeries {
  observe(value: number): void;
}

class Series implements HistogramSeries {
  /** Observations per bucket (not cumulative); past the last bound only count and sum move. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }
}

/** The value lines prom-client's Registry formats (what `Histogram.getForPromString` returns). */
interface ValueLine {
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

export class SeriesHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly labelNames: readonly L[];
  readonly #bounds: readonly number[];
  /** In order of first observation, as prom-client's series are. */
  #series = new Map<Key, Series>();

  constructor(options: SeriesHistogramOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.#bounds = Object.freeze([...options.buckets]);
    for (let i = 1; i < this.#bounds.length; i++) {
      if (!(this.#bounds[i]! > this.#bounds[i - 1]!)) throw new Error(`${this.name}: buckets must ascend`);
    }
    // The Registry only reads name, type and getForPromString/get: the Metric contract in practice.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series under `key`; `labels()` is called once, when the key is new. Keep it or look it up again. */
  series(key: Key, labels: () => Record<L, string>): HistogramSeries {
    let series = this.#series.get(key);
    if (series === undefined) {
      series = new Series(labels(), this.#bounds);
      this.#series.set(key, series);
    }
    return series;
  }

  reset(): void {
    this.#series = new Map();
  }

  /** What the Registry formats: the lines of prom-client's Histogram, in its order. */
  getForPromString(): Promise<{
    name: string;
    help: string;
    type: "histogram";
    values: ValueLine[];
    aggregator: "sum";
  }> {
    const bucket = `${this.name}_bucket`;
    const values: ValueLine[] = [];
    for (const series of this.#series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += series.counts[i]!;
        const le = this.#bounds[i]!;
        values.push({
          labels: { le },
          sharedLabels: series.labels,
          value: cumulative,
          metricName: bucket,
          exemplar: null,
        });
      }
      const shared = series.labels;
      values.push(
        { labels: { le: "+Inf" }, sharedLabels: shared, value: series.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: shared, value: series.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        {
          labels: {},
          sharedLabels: shared,
          value: series.count,
          metricName: `${this.name}_count`,
          exemplar: undefined,
        },
      );
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** As prom-client's `get()`: the shared labels spread into each line's. */
  async get() {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, ...line }) => ({
        ...line,
        labels: { ...labels, ...sharedLabels },
      })),
    };
  }
}
