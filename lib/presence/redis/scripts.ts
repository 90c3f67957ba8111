/**
 * The Redis presence adapter's Lua scripts. Each state change and the
 * publish of its diff run as one script, so every node sees a topic's diffs in the order the
 * state changed, and a diff is never published for a change that did not happen.
 *
 * Keys under `rt:<prefix>`: `p:<topic>` HASH `<nodeId>|<phx_ref>` → `{"key","meta"}`;
 * `pn:<nodeId>` SET of that node's topics (purge index); `nodes` ZSET nodeId → lease expiry (ms,
 * Redis TIME); `epoch` STRING (gone = Redis lost its data); `reap:<nodeId>` the reap lock.
 * Diffs go to `pd:<topic>` as `{"v":1,"node","kind":"change"|"reap","joins","leaves"}`.
 *
 * REAP builds its channel and hash keys from the purge index (not declared in KEYS): fine on one
 * Redis, to be split per topic (one script call per key slot) before Redis Cluster.
 */

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * KEYS: hash, purge set, channel, nodes. ARGV: nodeId, topic, diff json, n, then n fields to
 * delete, then field/entry pairs to set. One change of this node (track, untrack, update).
 * Refused (0, nothing written or published) when the node has no lease: a write of an incarnation
 * already reaped must not bring its entries back. Publishes only when something changed, so an
 * untrack of an entry the reaper already removed sends no second leave.
 */
export const CHANGE = `
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then return -1 end
local n = tonumber(ARGV[4])
local changed = false
for i = 5, 4 + n do if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then changed = true end end
for i = 5 + n, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) changed = true end
if #ARGV >= 5 + n then redis.call('SADD', KEYS[2], ARGV[2]) end
if changed then redis.call('PUBLISH', KEYS[3], ARGV[3]) end
return changed and 1 or 0`;

/**
 * KEYS: hash, purge set, channel, nodes. ARGV: nodeId, topic, then field/entry pairs: every entry
 * this node has in the topic. Re-asserts what is missing and retracts what is no longer there
 * (writes that failed while Redis was away), publishing one diff of the difference. -1 without a
 * lease, else the number of entries changed.
 */
export const RECONCILE = `
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then return -1 end
local pre = ARGV[1] .. '|'
local want, wanted = {}, false
for i = 3, #ARGV, 2 do want[ARGV[i]] = ARGV[i + 1] wanted = true end
local joins, leaves, n = {}, {}, 0
local function add(side, json)
  local entry = cjson.decode(json)
  local slot = side[entry.key]
  if not slot then slot = { metas = {} } side[entry.key] = slot end
  table.insert(slot.metas, entry.meta)
  n = n + 1
end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, #pre) == pre then
    if want[f] == nil then redis.call('HDEL', KEYS[1], f) add(leaves, all[i + 1]) else want[f] = nil end
  end
end
for f, json in pairs(want) do redis.call('HSET', KEYS[1], f, json) add(joins, json) end
if wanted then redis.call('SADD', KEYS[2], ARGV[2]) else redis.call('SREM', KEYS[2], ARGV[2]) end
if n > 0 then redis.call('PUBLISH', KEYS[3], cjson.encode({ v = 1, node = ARGV[1], kind = 'change', joins = joins, leaves = leaves })) end
return n`;

/**
 * KEYS: nodes, epoch. ARGV: nodeId, leaseMs, expected epoch ("" = register), fresh epoch.
 * Returns {1, epoch} when the lease was extended, {0, epoch} when this incarnation must end:
 * its lease is gone or already expired (it may have been reaped) or the epoch changed.
 */
export const HEARTBEAT = `
${NOW}
local epoch = redis.call('GET', KEYS[2])
if not epoch then epoch = ARGV[4] redis.call('SET', KEYS[2], epoch) end
if ARGV[3] ~= '' then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if epoch ~= ARGV[3] or not score or tonumber(score) < now then return {0, epoch} end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return {1, epoch}`;

/** KEYS: nodes. The node ids whose lease has expired. */
export const EXPIRED = `
${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)`;

/** KEYS: hash, nodes. The topic's entries of live nodes only (read-time filtering), flat [field, value, …]. */
export const SNAPSHOT = `
${NOW}
local all = redis.call('HGETALL', KEYS[1])
local live, out = {}, {}
for i = 1, #all, 2 do
  local node = string.match(all[i], '^(.*)|[^|]*$') or ''
  if live[node] == nil then
    local score = redis.call('ZSCORE', KEYS[2], node)
    live[node] = score ~= false and tonumber(score) >= now
  end
  if live[node] then out[#out + 1] = all[i] out[#out + 1] = all[i + 1] end
end
return out`;

/**
 * KEYS: purge set of the dead node, nodes. ARGV: dead nodeId, reaper nodeId, key prefix "rt:<p>:".
 * Per topic: removes the dead node's entries and publishes ONE leaves diff grouped by key; then
 * drops the purge index and the lease. Returns the number of entries removed.
 */
export const REAP = `
local pre = ARGV[1] .. '|'
local removed = 0
for _, topic in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local hash = ARGV[3] .. 'p:' .. topic
  local all = redis.call('HGETALL', hash)
  local leaves, n = {}, 0
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, #pre) == pre then
      redis.call('HDEL', hash, all[i])
      local entry = cjson.decode(all[i + 1])
      local slot = leaves[entry.key]
      if not slot then slot = { metas = {} } leaves[entry.key] = slot end
      table.insert(slot.metas, entry.meta)
      n = n + 1
    end
  end
  if n > 0 then
    redis.call('PUBLISH', ARGV[3] .. 'pd:' .. topic, cjson.encode({ v = 1, node = ARGV[2], kind = 'reap', joins = {}, leaves = leaves }))
    removed = removed + n
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return removed`;
