/**
 * A fixed log-scale histogram of durations for cheap percentiles: recording is one logarithm and
 * one array increment, memory is a few hundred numbers whatever the traffic, and a percentile is
 * read as the upper bound of its bucket (4 buckets per doubling: at most 19% above the truth).
 * The dashboard keeps one per interval and resets it after each snapshot.
 *
 *     const h = createDurationHistogram()
 *     h.record(1.2); h.record(30)
 *     h.percentile(0.5) // → 1.19 (the bucket holding the median, in ms)
 *     h.reset()
 */

export interface DurationHistogram {
  record(ms: number): void;
  /** The value below which the fraction `q` (0–1) of recorded durations fall, in ms; 0 when empty. */
  percentile(q: number): number;
  readonly count: number;
  reset(): void;
}

/** 10 µs is the floor; 4 buckets per doubling up to 2^24 × 10 µs ≈ 168 s, the last bucket takes the rest. */
const FLOOR_MS = 0.01;
const PER_DOUBLING = 4;
const BUCKETS = 24 * PER_DOUBLING + 1;

export function createDurationHistogram(): DurationHistogram {
  const counts = new Float64Array(BUCKETS);
  let count = 0;
  return {
    record(ms) {
      const i = ms <= FLOOR_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log2(ms / FLOOR_MS) * PER_DOUBLING));
      counts[i]! += 1;
      count += 1;
    },
    percentile(q) {
      if (count === 0) return 0;
      const rank = Math.max(1, Math.ceil(q * count));
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += counts[i]!;
        if (seen >= rank) return upperBound(i);
      }
      return upperBound(BUCKETS - 1);
    },
    get count() {
      return count;
    },
    reset() {
      counts.fill(0);
      count = 0;
    },
  };
}

function upperBound(i: number): number {
  return Math.round(FLOOR_MS * 2 ** (i / PER_DOUBLING) * 1000) / 1000;
}
