/**
 * Socket quota: at most `limit` open sockets per user, counted across the cluster. The realtime
 * tier acquires a slot at the upgrade (a refusal is HTTP 429) and releases it when the socket
 * closes. In-process counts here; lib/socket-quota/redis.ts counts across nodes.
 *
 *     const quota = createLocalSocketQuota(50)
 *     if (await quota.acquire(userId)) { … open … quota.release(userId) }
 *
 * `acquire` answers synchronously when it can (in-process counts): the realtime tier then decides
 * the upgrade inside uWebSockets.js's upgrade callback, which is the safe path (transport.ts).
 */

export interface SocketQuota {
  /** Takes a slot for one more socket of the user; false when the user already has `limit`. */
  acquire(userId: number): boolean | Promise<boolean>;
  /** Gives back a slot taken by `acquire`. */
  release(userId: number): void;
  close(): Promise<void>;
}

/** Counts of one process; the check and the increment are one synchronous step, so bursts cannot overshoot. */
export function createLocalSocketQuota(limit: number): SocketQuota {
  const counts = new Map<number, number>();
  return {
    acquire(userId) {
      const count = counts.get(userId) ?? 0;
      if (count >= limit) return false;
      counts.set(userId, count + 1);
      return true;
    },
    release(userId) {
      const count = (counts.get(userId) ?? 0) - 1;
      if (count > 0) counts.set(userId, count);
      else counts.delete(userId);
    },
    async close() {
      counts.clear();
    },
  };
}
