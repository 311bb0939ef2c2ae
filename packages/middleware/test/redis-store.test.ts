import t from 'tap'
import { Redis } from 'ioredis'
import { createClient } from '@redis/client'
import { RedisStore, SessionManager, newId } from '../src/index.js'
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

t.test('log out everywhere: the owner set is written by the apply script, expires with its longest session, and is pruned', async (t) => {
  const admin = redis.client()
  const prefix = `own:${newId().slice(0, 6)}:`
  const store = new RedisStore({ url: redis.url, prefix })
  t.teardown(() => store.close())
  t.same(store.capabilities, { destroyAll: true })
  const set = `${prefix}owner:ada`
  const a = newId()
  const b = newId()
  await admin.config('RESETSTAT')
  await store.apply(a, { ...create([['user', '"ada"']], 60_000, 7_200_000), owner: 'ada' })
  t.equal(parseCommandStats(await admin.info('commandstats')).evalsha, 1, 'the index rides in the one write script')
  await store.apply(b, { ...create([['user', '"ada"']], 60_000, 3_600_000), owner: 'ada' })
  t.same((await admin.smembers(set)).sort(), [store.key(a), store.key(b)].sort(), 'the set holds the hash keys')
  const pttl = await admin.pttl(set)
  t.ok(pttl > 7_100_000 && pttl <= 7_200_000, `the set lives as long as the longest absolute deadline (${pttl} ms)`)
  // A retried write (same write id) is answered from the record and changes no index.
  const c = newId()
  const first = await store.apply(c, { ...create([['user', '"ada"']]), owner: 'ada', writeId: 'w1' })
  await store.apply(c, update({ set: [['user', '"bob"']], owner: 'bob' }))
  t.same(await store.apply(c, { ...create([['user', '"ada"']]), owner: 'ada', writeId: 'w1' }), first, 'the repeat is answered, not applied')
  t.notOk((await admin.smembers(set)).includes(store.key(c)), 're-owned: left the old owner\'s set')
  // Sessions that expired leave their id in the set until a write prunes it (a few random
  // members per owner write) or destroyAll does.
  await admin.del(store.key(a), store.key(b))
  const d = newId()
  await store.apply(d, { ...create([['user', '"ada"']]), owner: 'ada' })
  t.same(await admin.smembers(set), [store.key(d)], 'dead members pruned by the next owner write (4 sampled, the set held 2)')
  const live = await admin.scard(set)
  t.equal(await store.destroyAll!('ada'), live, 'every live one destroyed')
  t.equal(await admin.exists(set), 0, 'the set is gone with them')
  t.equal(await store.destroyAll!('bob'), 1)
})

t.test('log out everywhere is heard by the near-cache channel, and a late write cannot bring the session back', async (t) => {
  const prefix = `ownnc:${newId().slice(0, 6)}:`
  const store = new RedisStore({ url: redis.url, prefix })
  t.teardown(() => store.close())
  const heard: Array<string | null> = []
  const channel = store.invalidations((id) => { heard.push(id) }, { maxLag: 1000 })
  t.teardown(() => channel.close())
  for (let i = 0; i < 200 && !channel.live(Date.now()); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  const id = newId()
  await store.apply(id, { ...create([['user', '"ada"']]), owner: 'ada' })
  heard.length = 0
  const late = update({ incr: [['n', 1]] })
  t.equal(await store.destroyAll!('ada'), 1)
  for (let i = 0; i < 200 && !heard.includes(id); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.ok(heard.includes(id), 'the destroyed session is invalidated on every node')
  t.notOk(heard.some((h) => h !== null && h.includes('owner:')), 'the owner set is not mistaken for a session')
  t.same(await store.apply(id, { ...late, writeId: 'in-flight' }), { ok: false, reason: 'gone' }, 'a request in flight is refused')
  t.equal(await store.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), undefined)
})

t.test('log out everywhere on the shared Redis (6379), through the session manager', async (t) => {
  const prefix = `w14own:${newId().slice(0, 8)}:`
  const admin = new Redis(6379, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 })
  admin.on('error', () => {})
  try { await admin.connect() } catch { admin.disconnect(); t.plan(0, 'no Redis on 127.0.0.1:6379'); return }
  const store = new RedisStore({ url: 'redis://127.0.0.1:6379', prefix })
  t.teardown(async () => {
    await store.close()
    const keys = await admin.keys(`${prefix}*`)
    if (keys.length > 0) await admin.del(...keys)
    admin.disconnect()
  })
  const manager = new SessionManager({ secret: 'x'.repeat(32), store, owner: 'user' })
  const ids = [newId(), newId()]
  for (const id of ids) await store.apply(id, { ...create([['user', '"ada"']]), owner: 'ada' })
  t.equal(await manager.destroyAllFor('ada'), 2)
  for (const id of ids) t.equal(await store.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), undefined)
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
  // A store closed while its connections are still in the TLS handshake with a server it
  // refuses: ioredis stopped listening to the socket, whose late alert then crashed the process
  // (about 1 in 3 closes). tap reports such an uncaught error as a failure of this test.
  for (let i = 0; i < 12; i++) {
    const closing = new RedisStore({ url, driver: 'ioredis', commandTimeout: 300 })
    await closing.load(newId(), { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }).catch(() => {})
    await closing.close()
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.pass('12 stores closed mid-handshake, no uncaught TLS error')
})
