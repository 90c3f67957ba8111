/**
 * The cluster's socket quota in Redis: per user a hash `rt:<prefix>:spu:<userId>` holding
 * `{<node incarnation>: <open sockets there>}`, and per node a lease key
 * `rt:<prefix>:spu-node:<incarnation>` that the node renews every `heartbeatMs` and that expires
 * `leaseMs` after its last renewal. A Lua script counts only the fields of live nodes (deleting the
 * others) and increments this node's field in one atomic step, so N upgrades at once never pass
 * the limit, and the sockets of a crashed node stop counting one lease after it died.
 *
 *     const quota = await createRedisSocketQuota({ url, limit: 50, heartbeatMs: 5000, leaseMs: 15000 })
 *     await quota.acquire(7) // → true while user 7 has fewer than 50 sockets on live nodes
 *
 * Redis trouble never locks users out: an acquire that cannot reach Redis is admitted on this
 * node's word (`onError` reports it), and the node's true counts — it keeps them in memory — are
 * written back at the next renewal that succeeds, as they are when its lease had lapsed.
 * The scripts build key names from the node field, so a Redis Cluster would need hash tags; a
 * single Redis (with replicas) is what Hypercast runs on.
 */
import type { Redis } from "ioredis";
import { createNodeId } from "../cluster/node-id.ts";
import { closeRedis, connectRedis } from "../cluster/redis.ts";
import type { Telemetry } from "../telemetry/index.ts";
import type { SocketQuota } from "./index.ts";

export interface RedisSocketQuotaOptions {
  url: string;
  limit: number;
  heartbeatMs: number;
  leaseMs: number;
  name?: string;
  /** Key namespace (default "hypercast"); tests use one per run. */
  prefix?: string;
  onError?: (error: Error, where: string) => void;
  /** Traces its commands (lib/cluster/redis.ts). */
  telemetry?: Telemetry;
}

const ACQUIRE = `
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  if redis.call('EXISTS', ARGV[3] .. fields[i]) == 1 then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
if total >= tonumber(ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
return 1`;

const RELEASE = `
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1`;

export async function createRedisSocketQuota(options: RedisSocketQuotaOptions): Promise<SocketQuota> {
  const prefix = `rt:${options.prefix ?? "hypercast"}`;
  const node = createNodeId(options.name);
  const liveKey = `${prefix}:spu-node:${node}`;
  const userKey = (userId: number) => `${prefix}:spu:${userId}`;
  const onError = options.onError ?? (() => {});
  // A reply may take as long as a lease (at most 5 s) before Redis counts as hung and the upgrade is
  // admitted on this node's word: a slow but working Redis (a loaded machine) is waited for, since
  // admitting early passes the limit. A Redis known to be away admits at once (acquire below).
  const redis: Redis = await connectRedis(options.url, {
    role: "command",
    name: `hypercast:quota:${node}`,
    onError: (e) => onError(e, "connection"),
    commandTimeoutMs: Math.min(options.leaseMs, 5000),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
  });
  // This node's own counts: the truth Redis is brought back to after trouble.
  const counts = new Map<number, number>();
  const touched = new Set<number>(); // users whose Redis field may differ from `counts`
  let stale = false;

  await redis.set(liveKey, "1", "PX", options.leaseMs);

  async function renew(): Promise<void> {
    const renewed = await redis.set(liveKey, "1", "PX", options.leaseMs, "XX");
    if (renewed === null) {
      // The lease lapsed (Redis restarted, or we were away): other nodes dropped our fields.
      await redis.set(liveKey, "1", "PX", options.leaseMs);
      stale = true;
      for (const userId of counts.keys()) touched.add(userId);
    }
    if (!stale) return;
    const users = [...touched];
    const pipeline = redis.pipeline();
    for (const userId of users) {
      const count = counts.get(userId) ?? 0;
      if (count > 0) pipeline.hset(userKey(userId), node, count);
      else pipeline.hdel(userKey(userId), node);
    }
    await pipeline.exec();
    for (const userId of users) touched.delete(userId);
    stale = touched.size > 0;
  }
  const timer = setInterval(() => {
    renew().catch((error: unknown) => onError(error as Error, "renew"));
  }, options.heartbeatMs);
  timer.unref();

  function bump(userId: number, by: number): void {
    const count = (counts.get(userId) ?? 0) + by;
    if (count > 0) counts.set(userId, count);
    else counts.delete(userId);
  }

  function admitLocally(userId: number): true {
    bump(userId, 1);
    touched.add(userId);
    stale = true;
    return true;
  }

  async function acquireInRedis(userId: number): Promise<boolean> {
    try {
      const ok = (await redis.eval(ACQUIRE, 1, userKey(userId), options.limit, node, `${prefix}:spu-node:`)) === 1;
      if (ok) bump(userId, 1);
      return ok;
    } catch (error) {
      onError(error as Error, "acquire");
      return admitLocally(userId);
    }
  }

  return {
    acquire(userId) {
      // Redis known to be away: admit on this node's word at once (written back once it is back),
      // rather than holding the upgrade until a command times out.
      if (redis.status !== "ready") return admitLocally(userId);
      return acquireInRedis(userId);
    },
    release(userId) {
      bump(userId, -1);
      redis.eval(RELEASE, 1, userKey(userId), node).catch((error: unknown) => {
        onError(error as Error, "release");
        touched.add(userId);
        stale = true;
      });
    },
    async close() {
      clearInterval(timer);
      await redis.del(liveKey).catch(() => {});
      await closeRedis(redis);
    },
  };
}
