/**
 * A load run ends by destroying the generator's sockets, so handlers of abandoned requests may
 * still be querying after a server closes: closing the pool (or dropping the schema) under them
 * would log errors. Waits until a knex pool has been idle for 100 ms, at most 5 s.
 *
 *     await settle(db)
 *     await db.destroy()
 */
import type { Knex } from "knex";

export async function settle(db: Knex): Promise<void> {
  const pool = (db.client as { pool?: { numUsed(): number; numPendingAcquires(): number } }).pool;
  const deadline = Date.now() + 5000;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    const busy = pool !== undefined && (pool.numUsed() > 0 || pool.numPendingAcquires() > 0);
    if (busy) quietSince = Date.now();
    else if (Date.now() - quietSince >= 100) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
