// The near-cache: copies kept current by the store's invalidations, whatever the routing;
// each client protected by the version it presents. Two nodes share one MemoryStore here (its
// channel is synchronous) or one real redis-server; a "laggy" channel holds invalidations back
// to show what the version cookie alone guarantees.
import t from 'tap'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createClient } from '@redis/client'
import { ConnectStore, MemoryStore, NearCache, RedisStore, SqliteStore, newId } from '../src/index.js'
import type { ConnectCompatibleStore, InvalidationChannel, SessionOptions, SessionStore } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { makeApp } from './helpers/fastify-app.js'
import { RecordingStore } from './helpers/recording-store.js'

/** A MemoryStore whose invalidations wait in a queue until `deliver()`: a slow network. */
class LaggyStore extends RecordingStore {
  readonly held: string[] = []
  readonly #listeners: Array<(id: string | null) => void> = []
  constructor () {
    super(new MemoryStore())
    this.inner.invalidations!((id) => { if (id !== null) this.held.push(id) }, { maxLag: 1000 })
    this.invalidations = (listener: (id: string | null) => void): InvalidationChannel => {
      this.#listeners.push(listener)
      return { live: () => true, close: async () => {} }
    }
  }

  deliver (): void {
    for (const id of this.held.splice(0)) for (const l of this.#listeners) l(id)
  }
}

async function node (t: Parameters<typeof makeApp>[0], store: SessionStore, options: Partial<SessionOptions> = {}): Promise<FastifyInstance> {
  const app = await makeApp(t, { store, nearCache: true, ...options })
  app.get('/set', async (req) => { req.session.user = (req.query as { v: string }).v; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null, n: req.session.n ?? null }))
  app.get('/incr', async (req) => ({ n: req.session.increment('n') }))
  app.get('/logout', async (req) => { await req.session.destroy(); return 'ok' })
  return app
}

/** A client with its own cookies (session and version), like a browser tab. */
class Client {
  readonly cookies = new Map<string, string>()
  async get (app: FastifyInstance, url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await app.inject({ url, headers: { ...(cookie !== '' ? { cookie } : {}), ...headers } })
    const raw = res.headers['set-cookie']
    for (const line of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
      const [pair] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq)
      if (/Max-Age=0/.test(line)) this.cookies.delete(name)
      else this.cookies.set(name, pair!.slice(eq + 1))
    }
    return res
  }

  /** A second holder of the same session cookie, without this client's version cookie. */
  share (): Client {
    const other = new Client()
    other.cookies.set('tether.sid', this.cookies.get('tether.sid')!)
    return other
  }
}

t.test('MemoryStore: reads of a cached session cost no store call, under any routing', async (t) => {
  const store = new RecordingStore(new MemoryStore())
  const a = await node(t, store)
  const c = new Client()
  await c.get(a, '/set?v=ada')
  t.equal(store.ops('apply').length, 1)
  await c.get(a, '/me')
  const loads = store.ops('load').length
  for (let i = 0; i < 5; i++) t.same((await c.get(a, '/me', { 'x-tether-route': i % 2 === 0 ? 'moved' : 'new' })).json(), { user: 'ada', n: null })
  t.equal(store.ops('load').length, loads, 'five reads, whatever the route header says, no load')
})

t.test('x-tether-cache tells the balancer hit or miss, and only the balancer', async (t) => {
  const store = new RecordingStore(new MemoryStore())
  const a = await node(t, store)
  const c = new Client()
  const via = { 'x-tether-route': 'sticky' }
  t.equal((await c.get(a, '/set?v=ada', via)).headers['x-tether-cache'], undefined, 'no session cookie yet: no read to report')
  const results: unknown[] = []
  for (let i = 0; i < 4; i++) results.push((await c.get(a, '/me', via)).headers['x-tether-cache'])
  t.same(results, ['miss', 'hit', 'hit', 'hit'], 'one load after the write, then the copy')
  t.equal(store.ops('load').length, 1, 'and the store saw exactly the one load reported as a miss')
  t.equal((await c.get(a, '/me')).headers['x-tether-cache'], undefined, 'not through tether-balancer: nothing sent')
  const plain = await makeApp(t, { store })
  plain.get('/me', async (req) => ({ user: req.session.user ?? null }))
  t.equal((await c.get(plain, '/me', via)).headers['x-tether-cache'], undefined, 'without the near-cache: nothing sent')
})

t.test('reproduction 1: an old sticky cookie never reads a value older than the store', async (t) => {
  const store = new MemoryStore()
  const a = await node(t, store)
  const b = await node(t, store)
  const c = new Client()
  await c.get(a, '/set?v=v1')
  const oldTab = c.share()
  t.same((await oldTab.get(a, '/me', { 'x-tether-route': 'sticky' })).json().user, 'v1', 'a caches v1')
  await c.get(b, '/set?v=v2', { 'x-tether-route': 'moved' })
  t.same((await oldTab.get(a, '/me', { 'x-tether-route': 'sticky' })).json().user, 'v2', 'a dropped its copy when b wrote')
  t.same((await c.get(a, '/me', { 'x-tether-route': 'sticky' })).json().user, 'v2')
})

t.test('reproduction 2: a logout cuts off every other holder of the cookie, on every node', async (t) => {
  const store = new MemoryStore()
  const a = await node(t, store)
  const owner = new Client()
  await owner.get(a, '/set?v=secret')
  const second = owner.share()
  t.same((await second.get(a, '/me', { 'x-tether-route': 'sticky' })).json().user, 'secret', 'the second holder reads through a (cached)')
  const c = await node(t, store)
  await owner.get(c, '/logout')
  t.same((await second.get(a, '/me', { 'x-tether-route': 'sticky' })).json(), { user: null, n: null }, 'after the logout, a serves nothing of it')
})

t.test('reproduction 3: an assignment equal to the loaded value is written', async (t) => {
  const store = new LaggyStore() // a's copy stays old: the invalidation is "in flight"
  const a = await node(t, store)
  const b = await node(t, store)
  const c = new Client()
  await c.get(b, '/set?v=x')
  const oldTab = c.share()
  await oldTab.get(b, '/me') // b holds x
  await c.get(a, '/set?v=y')
  const applies = store.ops('apply').length
  await oldTab.get(b, '/set?v=x') // b's copy says x already
  t.equal(store.ops('apply').length, applies + 1, 'the assignment reached the store')
  store.deliver()
  t.same((await c.get(a, '/me')).json().user, 'x', 'the store holds the acknowledged x')
})

t.test('reproduction 4: a write sent straight to the store is seen by the next read', async (t) => {
  const inner = new MemoryStore()
  const a = await node(t, inner)
  const c = new Client()
  await c.get(a, '/set?v=one')
  await c.get(a, '/me')
  const id = c.cookies.get('tether.sid')!.split('.')[0]!
  const r = await inner.apply(id, { set: [['user', '"cron"']], del: [], incr: [], ttl: 60_000, now: Date.now() })
  t.ok(r.ok)
  t.same((await c.share().get(a, '/me')).json().user, 'cron')
})

t.test('read-your-writes and monotonic reads per client, before any invalidation arrives', async (t) => {
  const store = new LaggyStore()
  const [a, b, d] = [await node(t, store), await node(t, store), await node(t, store)]
  const c = new Client()
  await c.get(a, '/set?v=v1')
  const other = c.share()
  for (const n of [a, b, d]) {
    t.same((await c.get(n, '/me')).json().user, 'v1')
    t.same((await other.get(n, '/me')).json().user, 'v1') // every node holds v1
  }
  await c.get(b, '/set?v=v2') // the invalidations to a and d are held back
  t.same((await c.get(a, '/me')).json().user, 'v2', 'the writer never reads its own older value on another node')
  t.same((await other.get(d, '/me')).json().user, 'v1', 'another client may, until the invalidation arrives (the documented cross-client bound)')
  t.same((await other.get(a, '/me')).json().user, 'v2', 'other reads v2 on a…')
  t.same((await other.get(d, '/me')).json().user, 'v2', '…and, having seen v2, never goes back to v1 on d (monotonic reads)')
  store.deliver()
  t.same((await c.share().get(d, '/me')).json().user, 'v2', 'once delivered, every client reads v2')
  await c.get(a, '/incr')
  await c.get(b, '/incr')
  t.same((await c.get(d, '/me')).json().n, 2, 'increments: read-your-writes too')
})

t.test('stores without an invalidation channel are refused at start-up', async (t) => {
  // express-session is CommonJS; its MemoryStore is the reference callback-only store.
  const { MemoryStore: SessionMemoryStore } = createRequire(import.meta.url)('express-session') as { MemoryStore: new () => ConnectCompatibleStore }
  t.throws(() => new NearCache(new ConnectStore(new SessionMemoryStore())), { code: 'TETHER_ERR_NEAR_CACHE_UNSUPPORTED' })
  const sqlite = new SqliteStore({ path: ':memory:' })
  t.teardown(() => sqlite.close())
  t.throws(() => new NearCache(sqlite), { code: 'TETHER_ERR_NEAR_CACHE_UNSUPPORTED' })
  const io = new RedisStore({ url: 'redis://127.0.0.1:1', driver: 'ioredis' })
  t.teardown(() => io.close())
  t.throws(() => new NearCache(io), { code: 'TETHER_ERR_NEAR_CACHE_UNSUPPORTED', message: /ioredis/ })
  await t.rejects(makeApp(t, { store: sqlite, nearCache: true }), { code: 'TETHER_ERR_NEAR_CACHE_UNSUPPORTED' })
  const mem = new MemoryStore()
  t.teardown(() => mem.close())
  t.throws(() => new NearCache(mem, { maxEntries: 0 }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new NearCache(mem, { maxLag: 1 }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.doesNotThrow(() => new NearCache(mem, { trustedProxies: ['127.0.0.1'] }), 'the former stickyCache options still start')
})

t.test('memory is bounded in entries and bytes (LRU)', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const cache = new NearCache(store, { maxEntries: 3, maxBytes: 4096 })
  const session = (text: string) => ({ fields: new Map([['k', text]]), createdAt: 0, absoluteExpiry: Date.now() + 60_000, expiresAt: Date.now() + 60_000, version: 1, refreshed: false })
  const put = (id: string, text: string): void => { const tk = cache.begin(id); cache.install(tk, session(text), Date.now()); cache.end(tk) }
  for (const id of ['a', 'b', 'c', 'd']) put(id, '"x"')
  t.equal(cache.size, 3, 'entries capped')
  t.equal(cache.get('a', 0, Date.now(), 0), undefined, 'least recently used evicted')
  put('big', `"${'x'.repeat(1500)}"`)
  t.ok(cache.bytes <= 4096, `bytes capped (${cache.bytes})`)
})

t.test('a load overtaken by an invalidation does not install its result', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const cache = new NearCache(store)
  const id = newId()
  await store.apply(id, { create: { createdAt: Date.now(), absoluteExpiry: Date.now() + 60_000 }, set: [['k', '1']], del: [], incr: [], ttl: 60_000, now: Date.now() })
  const ticket = cache.begin(id)
  const old = (await store.load(id, { now: Date.now(), idleTimeout: 60_000, refreshBelow: 0 }))!
  await store.apply(id, { set: [['k', '2']], del: [], incr: [], ttl: 60_000, now: Date.now() }) // heard while the "reply" was in flight
  cache.install(ticket, old, Date.now())
  cache.end(ticket)
  t.equal(cache.get(id, 0, Date.now(), 0), undefined, 'the old value was not installed')
})

t.test('Redis: invalidated by any client, by expiry and by FLUSHALL; bypassed while the channel is down', async (t) => {
  const redis = await startRedis(t)
  const prefix = `nc:${newId().slice(0, 6)}:`
  const store = new RecordingStore(new RedisStore({ url: redis.url, prefix }))
  t.teardown(() => store.close())
  const a = await node(t, store, { nearCache: { maxLag: 500 } })
  const admin = redis.client()
  const c = new Client()
  await c.get(a, '/set?v=ada')
  const id = c.cookies.get('tether.sid')!.split('.')[0]!
  const loads = () => store.ops('load').length
  const cachedRead = async (): Promise<unknown> => {
    const until = Date.now() + 10_000
    for (;;) {
      const before = loads()
      const body = (await c.share().get(a, '/me')).json()
      if (loads() === before || Date.now() > until) return body
      await sleep(20)
    }
  }
  t.same(await cachedRead(), { user: 'ada', n: null }, 'served from the copy')
  const before = loads()
  await admin.hset(`${prefix}{${id}}`, 'user', '"eve"')
  await sleep(50)
  t.same((await c.share().get(a, '/me')).json().user, 'eve', 'a write by another Redis client drops the copy')
  t.equal(loads(), before + 1, 'one load')
  await cachedRead()
  await admin.flushall()
  await sleep(50)
  t.same((await c.share().get(a, '/me')).json(), { user: null, n: null }, 'FLUSHALL: nothing served')

  await c.get(a, '/set?v=bob')
  await cachedRead()
  // Drop the tracking connection: until tracking is back, every read goes to the store.
  const list = await admin.call('CLIENT', 'LIST') as string
  const tracking = list.split('\n').find((l) => l.includes(`name=tether-near-cache-${process.pid}`))
  t.ok(tracking, 'the tracking connection is named')
  const cid = /id=(\d+)/.exec(tracking!)![1]!
  await admin.call('CLIENT', 'KILL', 'ID', cid)
  await admin.hset(`${prefix}{${c.cookies.get('tether.sid')!.split('.')[0]}}`, 'user', '"mallory"') // during the gap
  t.same((await c.share().get(a, '/me')).json().user, 'mallory', 'a change made while the channel was down is read')
  t.same(await cachedRead(), { user: 'mallory', n: null }, 'tracking back: cached again')

  await admin.pexpire(`${prefix}{${c.cookies.get('tether.sid')!.split('.')[0]}}`, 50)
  await sleep(400)
  t.same((await c.share().get(a, '/me')).json(), { user: null, n: null }, 'expired in Redis: the copy went with it')
})

t.test('Redis: a node-redis client the app passes works (the channel is its own duplicate)', async (t) => {
  const redis = await startRedis(t)
  const client = createClient({ url: redis.url })
  await client.connect()
  t.teardown(() => client.close())
  const store = new RedisStore({ client, prefix: `ncc:${newId().slice(0, 6)}:` })
  t.teardown(() => store.close())
  const a = await node(t, store)
  const b = await node(t, store)
  const c = new Client()
  await c.get(a, '/set?v=1')
  await c.get(a, '/me')
  await sleep(100)
  await c.get(b, '/set?v=2')
  await sleep(100)
  t.same((await c.share().get(a, '/me')).json().user, '2')
})
