/**
 * The Lua scripts behind RedisStore's writes. Each write is exactly one of them, run by SHA
 * (EVAL only after a NOSCRIPT), so every write is one round trip and atomic. Reads need no
 * script: a load is one HGETALL.
 *
 * Layout: one hash per session. User keys are hash fields holding JSON text; metadata fields
 * start with NUL so they can never collide with a user key (the core refuses such keys):
 *   \0c created at (ms)   \0a absolute deadline (ms)   \0e idle expiry (ms)
 *   \0v version           \0l lock sequence       \0o owner (the `owner` option's value)
 * \0e mirrors the key's TTL so that a load learns it without a PTTL (or a script). The lock
 * lives in its own key `<hash key>:lock`, the results of the session's recent writes by write id
 * in `<hash key>:w` (a hash: write id → "version,counter…", so a repeated write id is answered,
 * not applied again); all carry the session's hash tag, so they share a Redis Cluster slot.
 * The owner index (log out everywhere) is one set per owner, `<prefix>owner:<owner>`, of the
 * hash keys of its sessions; it has no hash tag (a user's sessions span slots), which is why
 * RedisStore offers log out everywhere on standalone and Sentinel Redis only.
 */
import { luaScript } from './driver.js'

/**
 * KEYS: hash, lock, writes[, the new owner's set]. ARGV: createdAt|'' , absoluteExpiry|'', ttl,
 * fence|'', nSet, nDel, nIncr, now, writeId|'', then nSet field/value pairs, nDel fields, nIncr
 * field/step pairs, then optionally the owner change: 'set'|'clear', owner, owner-set key prefix.
 * → { 'ok', version, counter... } | { 'gone' } | { 'exists' } | { 'fenced' } | { 'notint', field }
 *
 * Everything is validated before the first write: Redis does not roll a script back, so a
 * check that failed halfway would leave half a change behind. A write id already in the writes
 * hash is answered from there before any check: that change was applied (and is not again).
 */
export const APPLY = luaScript(`
local wid = ARGV[9]
if wid ~= '' then
  local seen = redis.call('HGET', KEYS[3], wid)
  if seen then
    local out = { 'ok' }
    for part in string.gmatch(seen, '[^,]+') do out[#out + 1] = part end
    return out
  end
end
local creating = ARGV[1] ~= ''
local now = tonumber(ARGV[8])
local abs
if creating then
  if redis.call('EXISTS', KEYS[1]) == 1 then return { 'exists' } end
  abs = tonumber(ARGV[2])
else
  -- Every hash RedisStore writes has its deadline field: none means no session (gone).
  abs = tonumber(redis.call('HGET', KEYS[1], '\\0a'))
  if abs == nil then return { 'gone' } end
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return { 'fenced' } end
local ttl = math.min(tonumber(ARGV[3]), abs - now)
if ttl <= 0 then
  if not creating then redis.call('DEL', KEYS[1]) end
  return { 'gone' }
end
local nSet, nDel, nIncr = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local setAt = 10
local delAt = setAt + 2 * nSet
local incrAt = delAt + nDel
for k = 0, nIncr - 1 do
  local field = ARGV[incrAt + 2 * k]
  local cur = redis.call('HGET', KEYS[1], field)
  if cur and not string.match(cur, '^%-?%d+$') then return { 'notint', field } end
end
-- Metadata rides in the first HSET with the changed fields.
local args = { '\\0e', now + ttl }
if creating then
  args[3] = '\\0c'; args[4] = ARGV[1]; args[5] = '\\0a'; args[6] = ARGV[2]
end
local chunk = 200
local k = 0
while true do
  local last = math.min(k + chunk, nSet)
  while k < last do
    args[#args + 1] = ARGV[setAt + 2 * k]
    args[#args + 1] = ARGV[setAt + 2 * k + 1]
    k = k + 1
  end
  redis.call('HSET', KEYS[1], unpack(args))
  if k >= nSet then break end
  args = {}
end
for from = 0, nDel - 1, chunk do
  local fields = {}
  for d = from, math.min(from + chunk, nDel) - 1 do fields[#fields + 1] = ARGV[delAt + d] end
  redis.call('HDEL', KEYS[1], unpack(fields))
end
local out = { 'ok', 0 }
for i = 0, nIncr - 1 do
  out[#out + 1] = redis.call('HINCRBY', KEYS[1], ARGV[incrAt + 2 * i], ARGV[incrAt + 2 * i + 1])
end
out[2] = redis.call('HINCRBY', KEYS[1], '\\0v', 1)
redis.call('PEXPIRE', KEYS[1], ttl)
-- The owner index (log out everywhere), in the same script as the write it indexes.
local oop = ARGV[incrAt + 2 * nIncr]
if oop == 'set' or oop == 'clear' then
  local owner = ARGV[incrAt + 2 * nIncr + 1]
  local opfx = ARGV[incrAt + 2 * nIncr + 2]
  local old = redis.call('HGET', KEYS[1], '\\0o')
  if old and (oop == 'clear' or old ~= owner) then redis.call('SREM', opfx .. old, KEYS[1]) end
  if oop == 'clear' then
    redis.call('HDEL', KEYS[1], '\\0o')
  else
    redis.call('HSET', KEYS[1], '\\0o', owner)
    -- A few random members whose session is gone or now belongs to someone else are dropped
    -- (bounded work per write), so a long-lived user's set does not collect dead ids.
    for _, m in ipairs(redis.call('SRANDMEMBER', KEYS[4], 4)) do
      if m ~= KEYS[1] and redis.call('HGET', m, '\\0o') ~= owner then redis.call('SREM', KEYS[4], m) end
    end
    redis.call('SADD', KEYS[4], KEYS[1])
    -- No session outlives its absolute deadline, and a refresh never moves that deadline: the
    -- set lives as long as the longest-lived session it indexes, and no longer.
    local pttl = redis.call('PTTL', KEYS[4])
    if pttl < abs - now then redis.call('PEXPIRE', KEYS[4], abs - now) end
  end
end
if wid ~= '' then
  -- %d keeps integers exact (tostring would print 14 significant digits).
  local rec = {}
  for i = 2, #out do rec[#rec + 1] = string.format('%d', out[i]) end
  redis.call('HSET', KEYS[3], wid, table.concat(rec, ','))
  -- Keep the writes of the last 16 versions or more: far more than can be in flight at once.
  if redis.call('HLEN', KEYS[3]) > 64 then
    local all = redis.call('HGETALL', KEYS[3])
    for i = 1, #all, 2 do
      if tonumber(string.match(all[i + 1], '^%d+')) <= out[2] - 16 then redis.call('HDEL', KEYS[3], all[i]) end
    end
  end
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return out
`)

/**
 * KEYS: the owner's set. ARGV: owner. → how many live sessions were deleted.
 *
 * Log out everywhere, atomically: every member whose hash still names this owner is deleted
 * with its write-id record; members that expired or changed owner are only dropped from the
 * set. A write in flight on a deleted session then finds no hash and is refused (gone), as
 * after destroy(). The members are keys the script computes, not KEYS: Redis allows that
 * outside Cluster only, and RedisStore offers log out everywhere outside Cluster only.
 */
export const DESTROY_ALL = luaScript(`
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HGET', m, '\\0o') == ARGV[1] then
    n = n + redis.call('DEL', m)
    redis.call('DEL', m .. ':w')
  end
end
redis.call('DEL', KEYS[1])
return n
`)

/** KEYS: hash. ARGV: ttl, now. → 1 | 0 (gone). Also the lazy refresh a load sends when due. */
export const TOUCH = luaScript(`
local abs = redis.call('HGET', KEYS[1], '\\0a')
if not abs then return 0 end
local ttl = math.min(tonumber(ARGV[1]), tonumber(abs) - tonumber(ARGV[2]))
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], '\\0e', tonumber(ARGV[2]) + ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`)

/** KEYS: hash, lock. ARGV: lease. → { token, 0 } | { 0, pttl } (held) | { -1, 0 } (no session) */
export const LOCK = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1, 0 } end
local pttl = redis.call('PTTL', KEYS[2])
if pttl ~= -2 then return { 0, pttl } end
local token = redis.call('HINCRBY', KEYS[1], '\\0l', 1)
redis.call('SET', KEYS[2], token, 'PX', ARGV[1])
return { token, 0 }
`)

/** KEYS: lock. ARGV: token, lease. → 1 | 0 (lost) */
export const RENEW = luaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

/** KEYS: lock. ARGV: token, channel, session id. → 1 | 0 (not ours any more) */
export const UNLOCK = luaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)
