import t from 'tap'
import { Redis } from 'ioredis'
import { createClient } from '@redis/client'
import { RedisStore, newId } from '../src/index.js'
import type { NodeRedisClient } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { startRedisTls } from '../../../test/helpers/redis-tls.js'
import { create, storeConformance, update } from './helpers/store-conformance.js'

const redis = await startRedis(t)

storeConformance(t, 'RedisStore (node-redis, the default)', async (t) => {
  const store = new RedisStore({ url: redis.url, prefix: `conf:${newId().slice(0, 6)}:` })
  t.teardown(() => store.close())
  return store
}, { invalidations: true })

storeConformance(t, 'RedisStore (ioredis)', async (t) => {
  const store = new RedisStore({ url: redis.url, driver: 'ioredis', prefix: `confio:${newId().slice(0, 6)}:` })
  t.teardown(() => store.close())
  return store
})

for (const driver of ['node-redis', 'ioredis'] as const) {
  t.test(`${driver}: a read is one HGETALL, a write one EVALSHA`, async (t) => {
    const admin = redis.client()
    const store = new RedisStore({ url: redis.url, driver })
    t.teardown(() => store.close())
    t.equal(store.driver, driver)
    const id = newId()
    // Every write sets an idle TTL of half an hour, so the load below with a one-hour refresh
    // threshold finds the refresh due whatever the clock did in between. The first use loads
    // the script (EVAL after NOSCRIPT).
    const halfHour = 1_800_000
    await store.apply(id, create([['a', '1']], halfHour, 7_200_000))
    await admin.config('RESETSTAT')
    const opts = { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }
    await store.load(id, opts)
    await store.apply(id, update({ set: [['b', '2']], del: ['a'], incr: [['n', 1]] }, halfHour))
    const stats = parseCommandStats(await admin.info('commandstats'))
    t.equal(stats.hgetall, 1, 'the load: one HGETALL, no script')
    t.equal(stats.evalsha, 1, 'the write: one EVALSHA')
    t.equal(stats.eval ?? 0, 0, 'no script text resent')
    t.equal(stats.hdel, 1, 'HDEL inside the write script')
    t.equal(stats.pexpire, 1, 'PEXPIRE inside the write script')
    // A load that finds the idle TTL due for a refresh sends it alongside.
    await admin.config('RESETSTAT')
    const due = await store.load(id, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 3_600_000 })
    t.equal(due!.refreshed, true)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const after = parseCommandStats(await admin.info('commandstats'))
    t.equal(after.hgetall, 1)
    t.equal(after.evalsha, 1, 'the refresh: one EVALSHA, not waited for by the load')
  })
}

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

t.test('borrowed clients (node-redis and ioredis) and ACL credentials in URLs', async (t) => {
  // A server whose default user needs a password, so wrong credentials cannot fall back to it.
  const locked = await startRedis(t, ['--requirepass', 'admin-pass'])
  const admin = locked.client()
  await admin.acl('SETUSER', 'app', 'on', '>s3cret-pass', '~*', '&*', '+@all')
  const url = `redis://app:s3cret-pass@127.0.0.1:${locked.port}`
  const id = newId()

  const ioClient = new Redis(url)
  t.teardown(() => ioClient.disconnect())
  const viaIoredis = new RedisStore({ client: ioClient })
  t.equal(viaIoredis.driver, 'ioredis', 'an ioredis client selects the ioredis driver')
  t.ok((await viaIoredis.apply(id, create([['a', '1']]))).ok, 'works through an ACL user')
  await viaIoredis.close()
  t.equal(await ioClient.ping(), 'PONG', 'closing the store leaves a borrowed ioredis client open')

  const nodeClient = createClient({ url })
  nodeClient.on('error', () => {})
  await nodeClient.connect()
  t.teardown(() => { nodeClient.destroy() })
  const viaNodeRedis = new RedisStore({ client: nodeClient as unknown as NodeRedisClient })
  t.equal(viaNodeRedis.driver, 'node-redis')
  t.equal((await viaNodeRedis.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }))?.fields.get('a'), '1', 'reads what the other driver wrote')
  await viaNodeRedis.close()
  t.equal(await nodeClient.ping(), 'PONG', 'closing the store leaves a borrowed node-redis client open')

  for (const driver of ['node-redis', 'ioredis'] as const) {
    const wrong = new RedisStore({ url: `redis://app:wrong@127.0.0.1:${locked.port}`, driver, commandTimeout: 500 })
    await t.rejects(wrong.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), `${driver}: bad credentials fail`)
    await wrong.close()
  }
  t.throws(() => new RedisStore({ client: {} as never }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new RedisStore({ url, driver: 'jedis' as never }), { code: 'TETHER_ERR_INVALID_OPTION' })
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

const tls = await startRedisTls(t)
t.test('rediss:// — TLS with a private CA, through both drivers', { skip: tls === undefined ? 'openssl is not installed, so no test certificate can be made' : false }, async (t) => {
  if (tls === undefined) return
  const url = `rediss://127.0.0.1:${tls.port}`
  for (const driver of ['node-redis', 'ioredis'] as const) {
    const store = new RedisStore({ url, driver, tls: { ca: tls.ca } })
    const id = newId()
    t.ok((await store.apply(id, create([['over', '"tls"']]))).ok, `${driver}: a write over TLS`)
    t.equal((await store.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }))?.fields.get('over'), '"tls"', `${driver}: and its read`)
    await store.close()
    const untrusted = new RedisStore({ url, driver, commandTimeout: 500 })
    await t.rejects(untrusted.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), `${driver}: a server certificate from an unknown CA is refused`)
    await untrusted.close()
  }
})
