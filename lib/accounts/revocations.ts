/**
 * The revoked-session set (private to accounts): the ids of sessions revoked recently enough that
 * socket tokens minted under them could still be unexpired. Kept in memory so the upgrade path
 * checks it without a database read; loaded at boot from `revoked_sessions` and updated by every
 * revocation, this node's and (through the PubSub) every other node's.
 *
 *     const set = createRevocationSet(86_400_000)
 *     set.add([7, 9], Date.now())
 *     set.has(7, Date.now()) // → true, for one token lifetime
 *
 * An entry lives one socket-token lifetime after its revocation: every token minted under the
 * session before it was revoked has expired by then. Expired entries are swept as new ones come,
 * so memory is bounded by the revocations of one lifetime.
 */

export interface RevocationSet {
  /** Marks sessions revoked at `revokedAtMs` (epoch ms). */
  add(sessionIds: readonly number[], revokedAtMs: number): void;
  has(sessionId: number, nowMs: number): boolean;
  size(): number;
}

export function createRevocationSet(ttlMs: number): RevocationSet {
  // Insertion order ≈ revocation order, so the sweep stops at the first live entry.
  const until = new Map<number, number>();
  function sweep(nowMs: number): void {
    for (const [id, end] of until) {
      if (end > nowMs) return;
      until.delete(id);
    }
  }
  return {
    add(sessionIds, revokedAtMs) {
      sweep(Date.now());
      for (const id of sessionIds) {
        const end = revokedAtMs + ttlMs;
        if ((until.get(id) ?? 0) < end) {
          until.delete(id);
          until.set(id, end);
        }
      }
    },
    has(sessionId, nowMs) {
      const end = until.get(sessionId);
      return end !== undefined && end > nowMs;
    },
    size: () => until.size,
  };
}
