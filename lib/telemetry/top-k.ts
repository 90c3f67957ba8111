/**
 * Space-Saving (Metwally, Agrawal, El Abbadi, 2005): the heaviest hitters of an unbounded stream
 * in a fixed number of counters, with O(1) work per item however many distinct items go by.
 *
 * At most `capacity` items are monitored. An unmonitored item replaces the one with the smallest
 * count and inherits that count as its `error`, so each estimate over-counts by at most `error`
 * (never under-counts), and any item seen more than N / capacity times is sure to be monitored.
 * The counters live in the "stream summary": buckets of equal count in a doubly linked list
 * ordered by count, so an increment moves one entry to the next bucket and an eviction takes
 * the head bucket's entry, both without searching.
 *
 *     const top = createSpaceSaving<number>(100)
 *     top.add(42); top.add(42); top.add(7)
 *     top.entries() // → [{ item: 42, count: 2, error: 0 }, { item: 7, count: 1, error: 0 }]
 */

export interface Counted<T> {
  readonly item: T;
  /** An upper bound of the item's true count. */
  readonly count: number;
  /** How much of `count` may be inherited from an evicted item: true count ≥ count − error. */
  readonly error: number;
}

export interface SpaceSaving<T> {
  /** Counts one occurrence of the item. O(1). */
  add(item: T): void;
  /** The monitored items, highest count first. O(capacity). */
  entries(): Counted<T>[];
  /** Items seen in total. */
  readonly total: number;
}

interface Bucket<T> {
  count: number;
  entries: Set<Entry<T>>;
  prev: Bucket<T> | undefined;
  next: Bucket<T> | undefined;
}

interface Entry<T> {
  item: T;
  error: number;
  bucket: Bucket<T>;
}

export function createSpaceSaving<T>(capacity: number): SpaceSaving<T> {
  if (!Number.isInteger(capacity) || capacity < 1)
    throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  const index = new Map<T, Entry<T>>();
  let head: Bucket<T> | undefined; // the smallest count
  let total = 0;

  /**
   * Moves the entry from its bucket to the bucket of count + 1 (created after it when missing).
   * An entry alone in its bucket, with no bucket of count + 1 after it, takes its bucket along: a
   * caller far ahead of the rest (one client calling a deprecated version in a loop) then costs
   * no new bucket and set per request.
   */
  function increment(entry: Entry<T>): void {
    const from = entry.bucket;
    const count = from.count + 1;
    let to = from.next;
    if (from.entries.size === 1 && (to === undefined || to.count !== count)) {
      from.count = count;
      return;
    }
    if (to === undefined || to.count !== count) {
      to = { count, entries: new Set(), prev: from, next: from.next };
      if (from.next !== undefined) from.next.prev = to;
      from.next = to;
    }
    from.entries.delete(entry);
    to.entries.add(entry);
    entry.bucket = to;
    if (from.entries.size === 0) unlink(from);
  }

  function unlink(bucket: Bucket<T>): void {
    if (bucket.prev !== undefined) bucket.prev.next = bucket.next;
    else head = bucket.next;
    if (bucket.next !== undefined) bucket.next.prev = bucket.prev;
  }

  return {
    add(item) {
      total += 1;
      const known = index.get(item);
      if (known !== undefined) return increment(known);
      if (index.size < capacity) {
        // A new entry of count 1 goes into the head bucket, or a new head before it.
        if (head === undefined || head.count !== 1) {
          const bucket: Bucket<T> = { count: 1, entries: new Set(), prev: undefined, next: head };
          if (head !== undefined) head.prev = bucket;
          head = bucket;
        }
        const entry: Entry<T> = { item, error: 0, bucket: head };
        head.entries.add(entry);
        index.set(item, entry);
        return;
      }
      // Full: the new item takes over an entry of the smallest count (any of them will do).
      const victim = head!.entries.values().next().value!;
      index.delete(victim.item);
      victim.item = item;
      victim.error = victim.bucket.count;
      index.set(item, victim);
      increment(victim);
    },
    entries() {
      const out: Counted<T>[] = [];
      for (let b = head; b !== undefined; b = b.next)
        for (const e of b.entries) out.push({ item: e.item, count: b.count, error: e.error });
      return out.reverse();
    },
    get total() {
      return total;
    },
  };
}
