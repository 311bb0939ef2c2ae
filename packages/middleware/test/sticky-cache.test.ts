// The sticky near-cache: reads served from this process's copy while the trusted balancer says
// the request was routed by its sticky cookie; dropped the moment it says otherwise.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryStore, StickyCache } from '../src/index.js'
import type { FastifyInstance } from 'fastify'
import { makeApp, sessionCookie } from './helpers/fastify-app.js'
import { RecordingStore } from './helpers/recording-store.js'

const BALANCER = '127.0.0.1'
const sticky = { 'x-tether-route': 'sticky' }

async function node (t: Parameters<typeof makeApp>[0], store: RecordingStore, maxAge?: number): Promise<FastifyInstance> {
  const app = await makeApp(t, { store, stickyCache: { trustedProxies: [BALANCER, '10.0.0.0/8'], ...(maxAge !== undefined ? { maxAge } : {}) } })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null, n: req.session.n ?? null }))
  app.get('/incr', async (req) => ({ n: req.session.increment('n') }))
  app.get('/set', async (req) => { req.session.user = (req.query as { v: string }).v; return 'ok' })
  app.get('/logout', async (req) => { await req.session.destroy(); return 'ok' })
  return app
}

function get (app: FastifyInstance, url: string, cookie: string | undefined, headers: Record<string, string> = {}, remoteAddress = BALANCER) {
  return app.inject({ url, remoteAddress, headers: { ...(cookie ? { cookie } : {}), ...headers } })
}

t.test('sticky reads cost no store call; writes cost one', async (t) => {
  const store = new RecordingStore()
  const app = await node(t, store)
  const cookie = sessionCookie(await get(app, '/login', undefined, { 'x-tether-route': 'new' }))!
  t.equal(store.ops('apply').length, 1)
  for (let i = 0; i < 5; i++) t.same((await get(app, '/me', cookie, sticky)).json(), { user: 'ada', n: null })
  t.equal(store.ops('load').length, 0, 'five sticky reads, zero loads (the session was cached when created)')
  await get(app, '/incr', cookie, sticky)
  await get(app, '/incr', cookie, sticky)
  t.same((await get(app, '/me', cookie, sticky)).json(), { user: 'ada', n: 2 }, 'the copy follows our own writes')
  t.equal(store.ops('load').length, 0, 'still no load')
  t.equal(store.ops('apply').length, 3, 'one apply per writing request')
})

t.test('moved, new and untrusted requests never use the copy', async (t) => {
  const store = new RecordingStore()
  const app = await node(t, store)
  const cookie = sessionCookie(await get(app, '/login', undefined, sticky))!
  const loads = () => store.ops('load').length
  await get(app, '/me', cookie, sticky)
  t.equal(loads(), 0)
  await get(app, '/me', cookie, { 'x-tether-route': 'moved', 'x-tether-moved': '1' })
  t.equal(loads(), 1, 'moved: loaded from the store')
  await get(app, '/me', cookie, { 'x-tether-route': 'new' })
  t.equal(loads(), 2, 'new: loaded')
  await get(app, '/me', cookie, sticky, '203.0.113.7')
  t.equal(loads(), 3, 'sticky header from an untrusted peer: ignored, loaded')
  await get(app, '/me', cookie, sticky)
  t.equal(loads(), 4, 'the copy was dropped by the untrusted request, so the next sticky one loads')
  await get(app, '/me', cookie, sticky)
  t.equal(loads(), 4, 'and caches again')
  await get(app, '/me', cookie, sticky, '10.1.2.3')
  t.equal(loads(), 4, 'CIDR-trusted peer')
  await get(app, '/me', cookie, sticky, '::ffff:127.0.0.1')
  t.equal(loads(), 4, 'IPv4-mapped IPv6 peer')
})

t.test('a write made elsewhere is detected by version and drops the copy; moved reads it at once', async (t) => {
  const store = new RecordingStore(new MemoryStore())
  const a = await node(t, store)
  const b = await node(t, store)
  const cookie = sessionCookie(await get(a, '/login', undefined, sticky))!
  await get(a, '/me', cookie, sticky)
  await get(b, '/set?v=grace', cookie, { 'x-tether-route': 'moved', 'x-tether-moved': '1' }) // failover to b
  t.same((await get(a, '/me', cookie, { 'x-tether-route': 'moved', 'x-tether-moved': '1' })).json(), { user: 'grace', n: null }, 'failing back to a: a drops its copy and reads b\'s write')
  await get(b, '/set?v=linus', cookie, { 'x-tether-route': 'new' })
  await get(a, '/incr', cookie, sticky) // a's copy is stale (a misrouted write happened on b); the version gap shows it
  t.same((await get(a, '/me', cookie, sticky)).json(), { user: 'linus', n: 1 }, 'after the version gap, a reloads and sees the store')
})

t.test('copies expire after maxAge, and with the session', async (t) => {
  const store = new RecordingStore()
  const app = await node(t, store, 200)
  const cookie = sessionCookie(await get(app, '/login', undefined, sticky))!
  await get(app, '/me', cookie, sticky)
  t.equal(store.ops('load').length, 0)
  await sleep(250)
  await get(app, '/me', cookie, sticky)
  t.equal(store.ops('load').length, 1, 'older than maxAge: reloaded')
  await get(app, '/logout', cookie, sticky)
  t.same((await get(app, '/me', cookie, sticky)).json(), { user: null, n: null }, 'destroyed: no copy survives')
})

t.test('the lazy TTL refresh still reaches the store', async (t) => {
  const store = new RecordingStore()
  const app = await makeApp(t, { store, idleTimeout: 1000, touchAfter: 200, stickyCache: { trustedProxies: [BALANCER] } })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null }))
  const cookie = sessionCookie(await get(app, '/login', undefined, sticky))!
  await get(app, '/me', cookie, sticky)
  t.equal(store.ops('load').length, 0, 'fresh: from the copy')
  await sleep(300)
  t.same((await get(app, '/me', cookie, sticky)).json(), { user: 'ada' })
  t.equal(store.ops('load').length, 1, 'refresh due: the store load refreshed the idle TTL')
  await sleep(900)
  t.same((await get(app, '/me', cookie, sticky)).json(), { user: 'ada' }, 'alive thanks to that refresh')
})

t.test('trustedProxies is validated at start-up', async (t) => {
  t.throws(() => new StickyCache({ trustedProxies: [] }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new StickyCache({ trustedProxies: ['balancer.local'] }), { code: 'TETHER_ERR_INVALID_OPTION', message: /balancer\.local/ })
  t.throws(() => new StickyCache({ trustedProxies: ['10.0.0.0/x'] }), { code: 'TETHER_ERR_INVALID_OPTION' })
  const c = new StickyCache({ trustedProxies: ['::1', '192.168.0.0/16'] })
  t.equal(c.route('::1', 'sticky', undefined), 'sticky')
  t.equal(c.route('192.168.4.4', undefined, '1'), 'moved')
  t.equal(c.route('192.169.0.1', 'sticky', undefined), 'untrusted')
  t.equal(c.route(undefined, 'sticky', undefined), 'untrusted')
})
