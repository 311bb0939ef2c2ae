// Issue 4's guarantees on MemoryStore, within one process (the Redis runs are in the root
// test/no-lost-updates.test.ts, across three processes).
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryStore } from '../src/index.js'
import type { FastifyInstance } from 'fastify'
import { Jar, idOf, makeApp, sessionCookie } from './helpers/fastify-app.js'

async function app (t: Parameters<typeof makeApp>[0], store: MemoryStore, lockWait = 20_000): Promise<FastifyInstance> {
  const a = await makeApp(t, { store, lock: { lease: 1000, wait: lockWait } })
  a.get('/incr', async (req) => ({ n: req.session.increment('n') }))
  a.get('/rmw', async (req) => { const n = req.session.n ?? 0; await sleep(1); req.session.n = n + 1; return { n: req.session.n } })
  a.get('/rmw-locked', { config: { session: { lock: true } } }, async (req) => { const n = req.session.n ?? 0; await sleep(1); req.session.n = n + 1; return { n: req.session.n } })
  a.get('/set/:k', async (req) => { req.session[(req.params as { k: string }).k] = 1; return 'ok' })
  a.get('/slow', async (req) => { await sleep(300); req.session.flash = 'late'; return 'ok' })
  a.get('/logout', async (req) => { await req.session.destroy(); return 'ok' })
  a.get('/me', async (req) => req.session.toJSON())
  return a
}

async function storm (a: FastifyInstance, url: (i: number) => string, cookie: string, n: number): Promise<number[]> {
  const res = await Promise.all(Array.from({ length: n }, (_, i) => a.inject({ url: url(i), headers: { cookie } })))
  return res.map((r) => r.statusCode)
}

t.test('MemoryStore: lock mode, 300 concurrent read-modify-writes end at exactly 301', async (t) => {
  const store = new MemoryStore()
  const a = await app(t, store)
  const jar = new Jar(a)
  await jar.get('/incr')
  t.same([...new Set(await storm(a, () => '/rmw-locked', jar.cookie!, 300))], [200])
  t.same((await jar.get('/me')).json(), { n: 301 })
})

t.test('MemoryStore: 300 concurrent increments end at exactly 301', async (t) => {
  const store = new MemoryStore()
  const a = await app(t, store)
  const jar = new Jar(a)
  await jar.get('/incr')
  t.same([...new Set(await storm(a, () => '/incr', jar.cookie!, 300))], [200])
  t.same((await jar.get('/me')).json(), { n: 301 })
})

t.test('MemoryStore: merge mode keeps all 300 concurrently set keys', async (t) => {
  const store = new MemoryStore()
  const a = await app(t, store)
  const jar = new Jar(a)
  await jar.get('/incr')
  await storm(a, (i) => `/set/k${i}`, jar.cookie!, 300)
  const data = (await jar.get('/me')).json()
  t.equal(Object.keys(data).filter((k) => k.startsWith('k')).length, 300)
  t.equal(data.n, 1)
})

t.test('MemoryStore: a slow request cannot resurrect a destroyed session', async (t) => {
  const store = new MemoryStore()
  const a = await app(t, store)
  const jar = new Jar(a)
  await jar.get('/incr')
  const cookie = jar.cookie!
  const slow = a.inject({ url: '/slow', headers: { cookie } })
  await sleep(50)
  await a.inject({ url: '/logout', headers: { cookie } })
  const late = await slow
  t.match(sessionCookie(late), /^tether\.sid=$/, 'the late response clears the cookie')
  t.same((await a.inject({ url: '/me', headers: { cookie } })).json(), {}, 'still destroyed')
  t.equal(store.size, 0, 'nothing recreated')
})

t.test('MemoryStore: a stuck holder blocks for at most its lease; waits are bounded', async (t) => {
  const store = new MemoryStore()
  const a = await app(t, store, 3000)
  const jar = new Jar(a)
  await jar.get('/incr')
  const id = idOf(jar.cookie)!
  // A holder that never releases and never renews: what a crashed process leaves behind.
  const stuck = await store.lock(id, { lease: 500, wait: 100, renew: false })
  t.ok(stuck)
  const started = Date.now()
  const res = await jar.get('/rmw-locked')
  const waited = Date.now() - started
  t.equal(res.statusCode, 200)
  t.ok(waited >= 400 && waited < 1500, `granted once the 500 ms lease ran out (${waited} ms)`)

  const impatient = await app(t, store, 200)
  const held = await store.lock(id, { lease: 5000, wait: 100 })
  const blocked = await impatient.inject({ url: '/rmw-locked', headers: { cookie: jar.cookie! } })
  t.equal(blocked.statusCode, 503)
  t.equal(blocked.json().code, 'TETHER_ERR_LOCK_TIMEOUT')
  await held!.release()
})
