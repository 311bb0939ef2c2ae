import t from 'tap'
import { createRequire } from 'node:module'
import { createClient } from 'redis'
import { RedisStore as ConnectRedis } from 'connect-redis'
import { ConnectStore, newId } from '../src/index.js'
import type { ConnectCompatibleStore } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { create, storeConformance, update } from './helpers/store-conformance.js'

// express-session is CommonJS; its MemoryStore is the reference callback-only store.
const { MemoryStore: SessionMemoryStore } = createRequire(import.meta.url)('express-session') as { MemoryStore: new () => ConnectCompatibleStore }

const redis = await startRedis(t)

// What whole-object stores cannot promise, by conformance case. Shared by every wrapped store.
const WHOLE_OBJECT = {
  'two-writers': 'whole-object store: overlapping read-modify-writes of one session, last writer wins (no partial writes in the express-session store API)',
  increments: 'whole-object store: concurrent increments are read-modify-writes and can be lost (no atomic increment in the express-session store API)',
  locks: 'express-session stores have no lock; lock mode is refused at start-up (TETHER_ERR_LOCK_UNSUPPORTED)',
  fencing: 'express-session stores have no lock, so no fencing token',
  'exactly-once': 'whole-object store: a write id cannot be checked and recorded in one atomic step (no conditional write in the express-session store API), so the core never retries a write here',
  'exactly-once-racing': 'whole-object store: no atomic check of a write id (see exactly-once)'
} as const

async function connectRedis (t: Parameters<Parameters<typeof storeConformance>[2]>[0], prefix = `c:${newId().slice(0, 6)}:`) {
  const client = createClient({ url: redis.url, disableOfflineQueue: true })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.destroy())
  return { client, store: new ConnectStore(new ConnectRedis({ client, prefix })) }
}

storeConformance(t, 'ConnectStore(connect-redis 9)', async (t) => (await connectRedis(t)).store, {
  skip: {
    ...WHOLE_OBJECT,
    expiry: 'idle expiry is the wrapped store\'s TTL, and connect-redis rounds it up to whole seconds (a 300 ms session lives 1 s)'
  }
})

storeConformance(t, 'ConnectStore(express-session MemoryStore)', async () => new ConnectStore(new SessionMemoryStore()), { skip: WHOLE_OBJECT })

t.test('connect-redis: one JSON string per session under its prefix, TTL from cookie.expires', async (t) => {
  const { client, store } = await connectRedis(t, 'legacy:')
  const id = newId()
  t.ok((await store.apply(id, create([['user', '"ada"'], ['__proto__', '{"admin":true}']], 90_000))).ok)
  const raw = await client.get(`legacy:${id}`)
  const record = JSON.parse(raw!) as { cookie: { expires: string }, tether: { fields: unknown } }
  t.same(record.tether.fields, [['user', '"ada"'], ['__proto__', '{"admin":true}']], 'fields as [key, JSON text] pairs')
  const ttl = await client.ttl(`legacy:${id}`)
  t.ok(ttl > 85 && ttl <= 90, `Redis TTL follows cookie.expires (${ttl} s)`)
  t.equal(({} as Record<string, unknown>).admin, undefined, 'nothing reached Object.prototype')
})

t.test('a TTL refresh on load touches the store without rewriting the record', async (t) => {
  const { client, store } = await connectRedis(t, 'refresh:')
  const id = newId()
  await store.apply(id, create([['a', '1']], 20_000))
  const before = await client.get(`refresh:${id}`)
  const s = await store.load(id, { now: Date.now(), idleTimeout: 600_000, refreshBelow: 590_000 })
  t.equal(s?.refreshed, true, 'refreshed')
  t.ok((await client.ttl(`refresh:${id}`)) > 500, 'store TTL extended by touch()')
  t.equal(await client.get(`refresh:${id}`), before, 'record text untouched: a read never writes data back')
})

t.test('a record ConnectStore did not write is reported as corrupt', async (t) => {
  const { client, store } = await connectRedis(t, 'foreign:')
  const id = newId()
  // What express-session itself stores: a session object without Tether's record.
  await client.set(`foreign:${id}`, JSON.stringify({ cookie: { expires: null }, user: 'mallory' }))
  await t.rejects(store.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), { code: 'TETHER_ERR_STORE_CORRUPT' })
})

t.test('Redis down: every operation fails fast with TETHER_ERR_STORE_UNAVAILABLE', async (t) => {
  const down = await startRedis(t)
  const client = createClient({ url: down.url, disableOfflineQueue: true, socket: { reconnectStrategy: () => 100 } })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.destroy())
  const store = new ConnectStore(new ConnectRedis({ client }))
  const id = newId()
  t.ok((await store.apply(id, create([['a', '1']]))).ok, 'works while Redis is up')
  await down.stop()
  const started = Date.now()
  await t.rejects(store.load(id, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), { code: 'TETHER_ERR_STORE_UNAVAILABLE', message: /ConnectStore\(RedisStore\)/ })
  await t.rejects(store.apply(id, update({ set: [['a', '2']] })), { code: 'TETHER_ERR_STORE_UNAVAILABLE' })
  await t.rejects(store.destroy(id), { code: 'TETHER_ERR_STORE_UNAVAILABLE' })
  t.ok(Date.now() - started < 2000, 'no wait for a reconnect')
})

t.test('a store that never calls back times out instead of hanging the request', async (t) => {
  // Fault injection: a backend that accepts a call and never answers cannot be produced on cue
  // by a real store; this one wraps express-session's MemoryStore and swallows get().
  const inner = new SessionMemoryStore()
  const silent: ConnectCompatibleStore = {
    get: () => undefined,
    set: (sid, s, cb) => inner.set(sid, s, cb),
    destroy: (sid, cb) => inner.destroy(sid, cb)
  }
  const store = new ConnectStore(silent, { timeout: 150 })
  const started = Date.now()
  await t.rejects(store.load(newId(), { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), { code: 'TETHER_ERR_STORE_UNAVAILABLE', message: /did not answer within 150 ms/ })
  t.ok(Date.now() - started >= 140, 'waited for the timeout')
})

t.test('promise-only rejections are caught; callback errors are wrapped', async (t) => {
  // Fault injection: a backend that rejects or reports an error on cue.
  const rejecting: ConnectCompatibleStore = {
    get: async () => { throw new Error('backend exploded') },
    set: (_sid, _s, cb) => { cb(new Error('disk full')) },
    destroy: (_sid, cb) => { cb() }
  }
  const store = new ConnectStore(rejecting)
  await t.rejects(store.load(newId(), { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), { code: 'TETHER_ERR_STORE_UNAVAILABLE', message: /backend exploded/ })
  const full = new ConnectStore({ ...rejecting, get: (_sid, cb) => { cb(null, null) } })
  await t.rejects(full.apply(newId(), create([['a', '1']])), { code: 'TETHER_ERR_STORE_UNAVAILABLE', message: /disk full/ })
  await t.resolves(store.destroy(newId()), 'destroy of an unknown id resolves')
})

t.test('bad construction is refused at start-up', async (t) => {
  t.throws(() => new ConnectStore({} as never), { code: 'TETHER_ERR_INVALID_OPTION', message: /get\(\) is missing/ })
  t.throws(() => new ConnectStore(new SessionMemoryStore(), { timeout: 0 }), { code: 'TETHER_ERR_INVALID_OPTION' })
})
