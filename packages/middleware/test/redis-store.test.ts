import t from 'tap'
import { Redis } from 'ioredis'
import { RedisStore, newId } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { create, storeConformance, update } from './store-conformance.js'

const redis = await startRedis(t)

storeConformance(t, 'RedisStore', async (t) => {
  const store = new RedisStore({ url: redis.url, prefix: `conf:${newId().slice(0, 6)}:` })
  t.teardown(() => store.close())
  return store
})

t.test('one round trip per operation, run by SHA', async (t) => {
  const admin = redis.client()
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  const id = newId()
  await store.apply(id, create([['a', '1']])) // first use loads the scripts (EVAL after NOSCRIPT)
  await store.load(id, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 })
  await admin.config('RESETSTAT')
  await store.load(id, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 })
  await store.apply(id, update({ set: [['b', '2']], del: ['a'], incr: [['n', 1]] }))
  const stats = parseCommandStats(await admin.info('commandstats'))
  t.equal(stats.evalsha, 2, 'one EVALSHA for the load, one for the write')
  t.equal(stats.eval ?? 0, 0, 'no script text resent')
  t.equal(stats.hgetall, 1, 'the load is an HGETALL inside the script')
  t.equal(stats.hset, 1, 'HSET inside the write script')
  t.equal(stats.hdel, 1, 'HDEL inside the write script')
})

t.test('keys: one hash per session under the prefix, with a cluster hash tag', async (t) => {
  const admin = redis.client()
  const store = new RedisStore({ url: redis.url, prefix: 'app1:' })
  t.teardown(() => store.close())
  const id = newId()
  await store.apply(id, create([['cart', '{"items":[]}']]))
  t.equal(store.key(id), `app1:{${id}}`)
  const hash = await admin.hgetall(`app1:{${id}}`)
  t.equal(hash.cart, '{"items":[]}', 'one field per top-level key, JSON-encoded')
  const ttl = await admin.pttl(`app1:{${id}}`)
  t.ok(ttl > 3_500_000 && ttl <= 3_600_000, 'TTL set in the same write')
  t.throws(() => new RedisStore({ url: redis.url, prefix: 'a{b}' }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new RedisStore({} as never), { code: 'TETHER_ERR_INVALID_OPTION' })
})

t.test('accepts an ioredis client it does not own, and a URL with ACL credentials', async (t) => {
  const admin = redis.client()
  await admin.acl('SETUSER', 'app', 'on', '>s3cret-pass', '~*', '&*', '+@all')
  const client = new Redis(`redis://app:s3cret-pass@127.0.0.1:${redis.port}`)
  t.teardown(() => client.disconnect())
  const store = new RedisStore({ client })
  const id = newId()
  t.ok((await store.apply(id, create([['a', '1']]))).ok, 'works through an ACL user')
  await store.close()
  t.equal(await client.ping(), 'PONG', 'closing the store leaves a borrowed client open')
  const wrong = new RedisStore({ url: `redis://app:wrong@127.0.0.1:${redis.port}` })
  t.teardown(() => wrong.close())
  await t.rejects(wrong.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), 'bad credentials fail')
})

t.test('a hash not written by RedisStore is reported as corrupt, not adopted', async (t) => {
  const admin = redis.client()
  const store = new RedisStore({ url: redis.url, prefix: 'corrupt:' })
  t.teardown(() => store.close())
  const id = newId()
  await admin.hset(`corrupt:{${id}}`, 'user', '"mallory"')
  await t.rejects(store.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), { code: 'TETHER_ERR_STORE_CORRUPT' })
})

function parseCommandStats (info: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2])
  return out
}
