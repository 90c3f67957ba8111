/**
 * Test helpers for the shared Redis (6379, or TEST_REDIS_URL): a key prefix unique to each run and
 * its cleanup. A redis-server a test owns (to kill and restart) comes from
 * tests/helpers/processes.ts `startRedisServer`.
 *
 *     const prefix = uniquePrefix("presence")
 *     test.after.always(() => cleanupPrefix(SHARED_REDIS_URL, `rt:${prefix}*`))
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

export const SHARED_REDIS_URL = process.env["TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";

export function uniquePrefix(label: string): string {
  return `test-${label}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** Deletes every key matching `pattern` (e.g. `rt:<prefix>*`, or `<prefix>:*` for rate-limit keys). */
export async function cleanupPrefix(url: string, pattern: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
