/**
 * The Lua scripts behind RedisStore. Each store operation is exactly one of them, run by SHA
 * (ioredis `defineCommand`: EVALSHA, with EVAL only after a NOSCRIPT), so every operation is
 * one round trip and atomic.
 *
 * Layout: one hash per session. User keys are hash fields holding JSON text; metadata fields
 * start with NUL so they can never collide with a user key (the core refuses such keys):
 *   \0c created at (ms)   \0a absolute deadline (ms)   \0v version   \0l lock sequence
 * The lock lives in its own key `<hash key>:lock`; both keys carry the session's hash tag, so
 * they share a Redis Cluster slot.
 */

/** KEYS: hash. ARGV: now, idleTimeout, refreshBelow. → nil | { HGETALL, pttl, refreshed } */
export const LOAD = `
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return nil end
local pttl = redis.call('PTTL', KEYS[1])
local refreshed = 0
local below = tonumber(ARGV[3])
if below > 0 and pttl >= 0 and pttl < below then
  local abs = tonumber(redis.call('HGET', KEYS[1], '\\0a'))
  local ttl = tonumber(ARGV[2])
  if abs ~= nil then ttl = math.min(ttl, abs - tonumber(ARGV[1])) end
  if ttl > pttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
    pttl = ttl
    refreshed = 1
  end
end
return { all, pttl, refreshed }
`

/**
 * KEYS: hash, lock. ARGV: createdAt|'' , absoluteExpiry|'', ttl, fence|'', nSet, nDel, nIncr,
 * now, then nSet field/value pairs, nDel fields, nIncr field/step pairs.
 * → { 'ok', version, counter... } | { 'gone' } | { 'exists' } | { 'fenced' } | { 'notint', field }
 *
 * Everything is validated before the first write: Redis does not roll a script back, so a
 * check that failed halfway would leave half a change behind.
 */
export const APPLY = `
local creating = ARGV[1] ~= ''
local exists = redis.call('EXISTS', KEYS[1]) == 1
if creating then
  if exists then return { 'exists' } end
elseif not exists then
  return { 'gone' }
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return { 'fenced' } end
local nSet, nDel, nIncr = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local abs = creating and tonumber(ARGV[2]) or tonumber(redis.call('HGET', KEYS[1], '\\0a'))
local ttl = tonumber(ARGV[3])
if abs ~= nil then ttl = math.min(ttl, abs - tonumber(ARGV[8])) end
if ttl <= 0 then
  if not creating then redis.call('DEL', KEYS[1]) end
  return { 'gone' }
end
local setAt = 9
local delAt = setAt + 2 * nSet
local incrAt = delAt + nDel
for k = 0, nIncr - 1 do
  local field = ARGV[incrAt + 2 * k]
  local cur = redis.call('HGET', KEYS[1], field)
  if cur and not string.match(cur, '^%-?%d+$') then return { 'notint', field } end
end
if creating then
  redis.call('HSET', KEYS[1], '\\0c', ARGV[1], '\\0a', ARGV[2])
end
local chunk = 200
for from = 0, nSet - 1, chunk do
  local args = {}
  for k = from, math.min(from + chunk, nSet) - 1 do
    args[#args + 1] = ARGV[setAt + 2 * k]
    args[#args + 1] = ARGV[setAt + 2 * k + 1]
  end
  redis.call('HSET', KEYS[1], unpack(args))
end
for from = 0, nDel - 1, chunk do
  local args = {}
  for k = from, math.min(from + chunk, nDel) - 1 do args[#args + 1] = ARGV[delAt + k] end
  redis.call('HDEL', KEYS[1], unpack(args))
end
local out = { 'ok', 0 }
for k = 0, nIncr - 1 do
  out[#out + 1] = redis.call('HINCRBY', KEYS[1], ARGV[incrAt + 2 * k], ARGV[incrAt + 2 * k + 1])
end
out[2] = redis.call('HINCRBY', KEYS[1], '\\0v', 1)
redis.call('PEXPIRE', KEYS[1], ttl)
return out
`

/** KEYS: hash. ARGV: ttl, now. → 1 | 0 (gone) */
export const TOUCH = `
local abs = redis.call('HGET', KEYS[1], '\\0a')
if not abs then return 0 end
local ttl = math.min(tonumber(ARGV[1]), tonumber(abs) - tonumber(ARGV[2]))
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`

/** KEYS: hash, lock. ARGV: lease. → { token, 0 } | { 0, pttl } (held) | { -1, 0 } (no session) */
export const LOCK = `
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1, 0 } end
local pttl = redis.call('PTTL', KEYS[2])
if pttl ~= -2 then return { 0, pttl } end
local token = redis.call('HINCRBY', KEYS[1], '\\0l', 1)
redis.call('SET', KEYS[2], token, 'PX', ARGV[1])
return { token, 0 }
`

/** KEYS: lock. ARGV: token, lease. → 1 | 0 (lost) */
export const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

/** KEYS: lock. ARGV: token, channel, session id. → 1 | 0 (not ours any more) */
export const UNLOCK = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`
