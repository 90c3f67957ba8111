/**
 * Space-Saving (lib/telemetry/top-k.ts): exact while the distinct items fit, and Space-Saving's
 * guarantees on any stream (property-tested): no estimate below the truth, none above it by more
 * than its error, every item seen more than N / capacity times monitored, memory bounded.
 */
import test from "ava";
import fc from "fast-check";
import { createSpaceSaving } from "../../lib/telemetry/top-k.ts";

test("counts exactly while the distinct items fit, heaviest first", (t) => {
  const top = createSpaceSaving<number>(3);
  for (const item of [7, 42, 42, 7, 42, 1]) top.add(item);
  t.deepEqual(top.entries(), [
    { item: 42, count: 3, error: 0 },
    { item: 7, count: 2, error: 0 },
    { item: 1, count: 1, error: 0 },
  ]);
  t.is(top.total, 6);
});

test("a new item evicts one of the smallest count and inherits it as its error", (t) => {
  const top = createSpaceSaving<string>(2);
  for (const item of ["a", "a", "a", "b", "c"]) top.add(item);
  t.deepEqual(top.entries(), [
    { item: "a", count: 3, error: 0 },
    { item: "c", count: 2, error: 1 },
  ]);
});

test("an item far ahead of the rest keeps an exact count, however its bucket moves", (t) => {
  const top = createSpaceSaving<number>(3);
  for (let i = 0; i < 1000; i++) top.add(1);
  top.add(2);
  top.add(2);
  for (let i = 0; i < 3; i++) top.add(3);
  t.deepEqual(top.entries(), [
    { item: 1, count: 1000, error: 0 },
    { item: 3, count: 3, error: 0 },
    { item: 2, count: 2, error: 0 },
  ]);
});

test("refuses a capacity that is not a positive integer, saying what it got", (t) => {
  t.throws(() => createSpaceSaving(0), { message: /positive integer, got 0/ });
});

test("on any stream: bounded memory, estimates bracket the truth, heavy hitters are kept", (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 400 }),
      (capacity, stream) => {
        const top = createSpaceSaving<number>(capacity);
        const truth = new Map<number, number>();
        for (const item of stream) {
          top.add(item);
          truth.set(item, (truth.get(item) ?? 0) + 1);
        }
        const entries = top.entries();
        if (entries.length > capacity || top.total !== stream.length) return false;
        for (let i = 1; i < entries.length; i++) if (entries[i - 1]!.count < entries[i]!.count) return false;
        for (const e of entries) {
          const real = truth.get(e.item) ?? 0;
          if (e.count < real || e.count - e.error > real) return false;
        }
        const monitored = new Set(entries.map((e) => e.item));
        for (const [item, n] of truth) if (n > stream.length / capacity && !monitored.has(item)) return false;
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});
