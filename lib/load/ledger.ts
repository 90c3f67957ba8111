/**
 * Delivery accounting for one subscriber socket (pure): which (publisher, seq) it has received, so
 * that every delivery is counted once, a second copy is a duplicate, and a message older than the
 * newest one already seen from the same publisher is out of order.
 *
 *     const ledger = createLedger(2, 100)
 *     ledger.record(0, 5)  // "new"
 *     ledger.record(0, 5)  // "duplicate"
 *     ledger.record(0, 3)  // "out_of_order" (new, but older than seq 5 from publisher 0)
 *     ledger.record(9, 1)  // "foreign": no such publisher in this run
 */

export type Outcome = "new" | "out_of_order" | "duplicate" | "foreign";

export interface Ledger {
  record(publisher: number, seq: number): Outcome;
}

/** `publishers` publishers, each expected to send about `perPublisher` messages (bitsets grow past it). */
export function createLedger(publishers: number, perPublisher: number): Ledger {
  const seen: Array<Uint8Array | undefined> = new Array(publishers);
  const newest = new Int32Array(publishers).fill(-1);
  return {
    record(publisher, seq) {
      if (publisher >= publishers || seq < 0) return "foreign";
      let bits = seen[publisher];
      if (bits === undefined || seq >> 3 >= bits.length) {
        const grown = new Uint8Array(Math.max((perPublisher >> 3) + 1, ((seq >> 3) + 1) * 2));
        if (bits !== undefined) grown.set(bits);
        seen[publisher] = bits = grown;
      }
      const mask = 1 << (seq & 7);
      if (bits[seq >> 3]! & mask) return "duplicate";
      bits[seq >> 3]! |= mask;
      if (seq < newest[publisher]!) return "out_of_order";
      newest[publisher] = seq;
      return "new";
    },
  };
}
