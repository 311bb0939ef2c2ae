import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import { Signer } from '@fastify/cookie'
import { fastifySession, MemoryStore, newId } from '../src/index.js'
import type { SessionStore } from '../src/index.js'
import { Jar, makeApp, OLD_SECRET, SECRET, idOf, sessionCookie, sessionCookieLine } from './helpers/fastify-app.js'
import { RecordingStore } from './helpers/recording-store.js'

t.test('a session nobody writes stores nothing and sends no cookie', async (t) => {
  const store = new RecordingStore()
  const app = await makeApp(t, { store })
  app.get('/', async (req) => ({ visits: req.session.visits ?? 0, id: req.session.id.length }))
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { visits: 0, id: 32 })
  t.equal(res.headers['set-cookie'], undefined, 'no cookie')
  t.same(store.calls, [], 'no store call at all for a cookieless request')
})

t.test('a written session gets a signed, HttpOnly, SameSite=Lax cookie and reads back', async (t) => {
  const app = await makeApp(t)
  app.get('/inc', async (req) => { req.session.visits = (req.session.visits ?? 0) + 1; return { visits: req.session.visits } })
  const jar = new Jar(app)
  const first = await jar.get('/inc')
  const line = sessionCookieLine(first)!
  t.match(line, /^tether\.sid=[A-Za-z0-9_-]{32}\.[A-Za-z0-9+/]{43}; Path=\/; HttpOnly; SameSite=Lax$/, 'default attributes; not Secure over plain HTTP')
  const second = await jar.get('/inc')
  t.same(second.json(), { visits: 2 })
  t.equal(second.headers['set-cookie'], undefined, 'no cookie re-sent for an existing session')
})

t.test("secure: 'auto' marks the cookie Secure when the request came over HTTPS", async (t) => {
  const app = await makeApp(t, {}, { trustProxy: '127.0.0.1' })
  app.get('/', async (req) => { req.session.user = 'ada'; return 'ok' })
  const viaTls = await app.inject({ url: '/', headers: { 'x-forwarded-proto': 'https' } })
  t.match(sessionCookieLine(viaTls), /; Secure$/)
  const plain = await app.inject({ url: '/' })
  t.notMatch(sessionCookieLine(plain), /Secure/)
})

t.test('cookie name, domain, path, maxAge and partitioned are configurable', async (t) => {
  const app = await makeApp(t, { cookieName: 'sid', cookie: { domain: 'example.com', path: '/app', maxAge: 3_600_000, partitioned: true, secure: true, sameSite: 'strict' }, absoluteTimeout: 7_200_000, idleTimeout: 3_600_000 })
  app.get('/app', async (req) => { req.session.user = 'ada'; return 'ok' })
  const line = sessionCookieLine(await app.inject('/app'), 'sid')!
  t.match(line, /^sid=[^;]+; Path=\/app; Domain=example\.com; HttpOnly; SameSite=Strict; Partitioned; Max-Age=3600; Expires=[^;]+ GMT; Secure$/)
})

t.test('change tracking: only changed top-level keys are written, nested mutations included', async (t) => {
  const store = new RecordingStore()
  const app = await makeApp(t, { store })
  app.get('/setup', async (req) => { req.session.cart = { items: [1] }; req.session.user = 'ada'; req.session.flash = 'hi'; return 'ok' })
  app.get('/read', async (req) => ({ cart: req.session.cart, user: req.session.user }))
  app.get('/push', async (req) => { req.session.cart!.items.push(2); return 'ok' })
  app.get('/same', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/del', async (req) => { delete req.session.flash; return 'ok' })
  const jar = new Jar(app)
  await jar.get('/setup')
  const applies = () => store.ops('apply').map((c) => c.arg as { set: unknown[], del: unknown[], incr: unknown[] })

  await jar.get('/read')
  t.equal(applies().length, 1, 'reading (even objects) writes nothing')
  await jar.get('/push')
  t.match(applies()[1], { set: [['cart', '{"items":[1,2]}']], del: [], incr: [] }, 'push into a nested array writes cart alone')
  t.equal((applies()[1]!.set as unknown[]).length, 1, 'and nothing else')
  await jar.get('/same')
  // The loaded value may be older than the store's: an assignment is a write (issue 11).
  t.match(applies()[2], { set: [['user', '"ada"']], del: [], incr: [] }, 'assigning an equal value still writes that key, alone')
  await jar.get('/del')
  t.match(applies()[3], { set: [], del: ['flash'], incr: [] }, 'delete writes the deletion alone')
  const res = await jar.get('/read')
  t.same(res.json(), { cart: { items: [1, 2] }, user: 'ada' })
})

t.test('the write completes before the response is sent', async (t) => {
  const inner = new MemoryStore()
  const slow: SessionStore = {
    load: (id, o) => inner.load(id, o),
    apply: async (id, c) => { await sleep(150); return await inner.apply(id, c) },
    destroy: (id) => inner.destroy(id),
    touch: (id, ttl, now) => inner.touch(id, ttl, now)
  }
  const app = await makeApp(t, { store: slow })
  app.get('/', async (req) => { req.session.user = 'ada'; return 'ok' })
  const started = Date.now()
  const res = await app.inject('/')
  t.ok(Date.now() - started >= 140, 'the response waited for the write')
  const stored = await inner.load(idOf(sessionCookie(res))!, { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 })
  t.equal(stored?.fields.get('user'), '"ada"', 'stored by the time the client has the response')
})

t.test('regenerate: new id, old id dead, data kept unless told otherwise', async (t) => {
  const app = await makeApp(t)
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/regen', async (req) => { await req.session.regenerate(); req.session.flash = 'welcome'; return 'ok' })
  app.get('/regen-empty', async (req) => { await req.session.regenerate({ keepData: false }); req.session.flash = 'fresh'; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null, flash: req.session.flash ?? null }))
  const jar = new Jar(app)
  await jar.get('/login')
  const before = jar.cookie
  await jar.get('/regen')
  t.not(idOf(jar.cookie), idOf(before), 'new id issued')
  t.same((await jar.get('/me')).json(), { user: 'ada', flash: 'welcome' }, 'data kept')
  const old = await app.inject({ url: '/me', headers: { cookie: before! } })
  t.same(old.json(), { user: null, flash: null }, 'the old id no longer works')
  await jar.get('/regen-empty')
  t.same((await jar.get('/me')).json(), { user: null, flash: 'fresh' }, 'keepData: false drops the data')
})

t.test('destroy: the session is deleted and the cookie cleared', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const app = await makeApp(t, { store })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/logout', async (req) => { await req.session.destroy(); return 'bye' })
  app.get('/logout-flash', async (req) => { await req.session.destroy(); req.session.flash = 'logged out'; return 'bye' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null, flash: req.session.flash ?? null }))
  const jar = new Jar(app)
  await jar.get('/login')
  const cookie = jar.cookie!
  const out = await jar.get('/logout')
  t.match(sessionCookieLine(out), /^tether\.sid=; Path=\/; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970/, 'cookie cleared')
  t.equal(store.size, 0, 'deleted from the store')
  t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: null, flash: null }, 'replaying the old cookie gives an empty session')
  await jar.get('/login')
  const old = jar.cookie
  const flash = await jar.get('/logout-flash')
  t.not(idOf(sessionCookie(flash)), idOf(old), 'a write after destroy starts a new session under a new id')
  t.same((await jar.get('/me')).json(), { user: null, flash: 'logged out' })
})

t.test('save, reload and touch', async (t) => {
  const store = new RecordingStore()
  const app = await makeApp(t, { store })
  app.get('/save', async (req) => {
    req.session.n = 1
    await req.session.save()
    const afterSave = store.ops('apply').length
    req.session.user = 'ada'
    return { afterSave }
  })
  app.get('/reload', async (req) => { req.session.n = 99; await req.session.reload(); return { n: req.session.n } })
  app.get('/touch', async (req) => { await req.session.touch(); return 'ok' })
  app.get('/me', async (req) => ({ n: req.session.n, user: req.session.user }))
  const jar = new Jar(app)
  const saved = await jar.get('/save')
  t.same(saved.json(), { afterSave: 1 }, 'save() wrote immediately')
  t.equal(store.ops('apply').length, 2, 'the change after save() was written at the end')
  t.same((await jar.get('/me')).json(), { n: 1, user: 'ada' })
  t.same((await jar.get('/reload')).json(), { n: 1 }, 'reload() dropped the unsaved change')
  t.equal(store.ops('apply').length, 2, 'and wrote nothing')
  await jar.get('/touch')
  t.equal(store.ops('touch').length, 1, 'touch() refreshed the TTL in the store')
})

t.test('increment is exact under concurrency and combines with assignments', async (t) => {
  const app = await makeApp(t)
  app.get('/hit', async (req) => ({ n: req.session.increment('n') }))
  app.get('/mix', async (req) => { req.session.increment('n', 5); req.session.n = 100; req.session.increment('n'); return { n: req.session.n } })
  app.get('/me', async (req) => ({ n: req.session.n }))
  app.get('/bad', async (req) => { req.session.user = 'ada'; req.session.increment('user' as 'n'); return 'no' })
  const jar = new Jar(app)
  await jar.get('/hit')
  const cookie = jar.cookie!
  await Promise.all(Array.from({ length: 50 }, () => app.inject({ url: '/hit', headers: { cookie } })))
  t.same((await jar.get('/me')).json(), { n: 51 }, '1 + 50 concurrent increments')
  t.same((await jar.get('/mix')).json(), { n: 101 }, 'assignment then increment in one request')
  t.same((await jar.get('/me')).json(), { n: 101 })
  const bad = await jar.get('/bad')
  t.equal(bad.statusCode, 500)
  t.equal(bad.json().code, 'TETHER_ERR_NOT_A_COUNTER')
})

t.test('forged, tampered and malformed cookies lead to a new session, never a crash', async (t) => {
  const store = new RecordingStore()
  const app = await makeApp(t, { store })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null }))
  app.get('/write', async (req) => { req.session.flash = 'x'; return { id: req.session.id } })
  const jar = new Jar(app)
  await jar.get('/login')
  const good = jar.cookie!
  const [name, value] = good.split('=') as [string, string]
  const [id, sig] = value.split('.') as [string, string]
  const otherSigner = new Signer('another-secret-that-is-long-enough-000000')
  const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1)
  const cases: Array<[string, string]> = [
    ['tampered signature', `${name}=${id}.${flip(sig)}`],
    ['tampered id', `${name}=${flip(id)}.${sig}`],
    ['signed with another secret', `${name}=${otherSigner.sign(id)}`],
    ['no signature', `${name}=${id}`],
    ['empty', `${name}=`],
    ['garbage', `${name}=%%%`],
    ['short id, correctly signed', `${name}=${new Signer(SECRET).sign('abc')}`],
    ['path traversal id, correctly signed', `${name}=${new Signer(SECRET).sign('../../../../etc/passwd/xxxxxxxxxx')}`],
    ['oversized', `${name}=${'A'.repeat(8000)}.${sig}`],
    ['no equals sign', `${name}`],
    ['unknown but well-formed id, correctly signed', `${name}=${new Signer(SECRET).sign(newId())}`],
    ['control characters', `${name}=\u0001\u0002.\u0003`]
  ]
  for (const [what, cookie] of cases) {
    const me = await app.inject({ url: '/me', headers: { cookie } })
    t.equal(me.statusCode, 200, `${what}: 200`)
    t.same(me.json(), { user: null }, `${what}: not the real session`)
    const w = await app.inject({ url: '/write', headers: { cookie } })
    t.not(w.json().id, id, `${what}: a write gets a fresh id`)
    t.equal(idOf(sessionCookie(w)), w.json().id, `${what}: and the cookie carries the fresh id`)
  }
  t.same(store.ops('load').map((c) => c.id), [idOf(cases[10]![1]), idOf(cases[10]![1])], 'only the correctly signed, well-formed unknown id was ever looked up (twice); forged ones never reach the store')
  const dup = await app.inject({ url: '/me', headers: { cookie: `${name}=junk; other=1; ${good}` } })
  t.same(dup.json(), { user: 'ada' }, 'a junk cookie of the same name does not mask the valid one')
  const encoded = await app.inject({ url: '/me', headers: { cookie: `${name}=${encodeURIComponent(value)}` } })
  t.same(encoded.json(), { user: 'ada' }, 'a percent-encoded cookie is accepted')
  const lookalike = await app.inject({ url: '/me', headers: { cookie: `x${good}` } })
  t.same(lookalike.json(), { user: null }, 'a cookie whose name merely ends with ours is not ours')
})

t.test('secret rotation: an old-secret cookie is accepted and re-signed with the new secret', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const before = await makeApp(t, { store, secret: OLD_SECRET })
  before.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  const jar = new Jar(before)
  await jar.get('/login')
  const oldCookie = jar.cookie!
  const after = await makeApp(t, { store, secret: [SECRET, OLD_SECRET] })
  after.get('/me', async (req) => ({ user: req.session.user ?? null }))
  const res = await after.inject({ url: '/me', headers: { cookie: oldCookie } })
  t.same(res.json(), { user: 'ada' }, 'old cookie still verifies')
  const renewed = sessionCookie(res)
  t.ok(renewed, 're-signed cookie sent')
  t.equal(idOf(renewed), idOf(oldCookie), 'same session id')
  t.equal(renewed!.split('=')[1], new Signer(SECRET).sign(idOf(oldCookie)!), 'signed with the new secret')
  const again = await after.inject({ url: '/me', headers: { cookie: renewed! } })
  t.equal(again.headers['set-cookie'], undefined, 'a current cookie is not re-signed')
})

t.test('start-up refuses short secrets and bad options with a clear error', async (t) => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['short secret', { secret: 'too-short' }, 'TETHER_ERR_SECRET_TOO_SHORT', /9 characters; use at least 32/],
    ['short secret in a rotation list', { secret: [SECRET, 'short'] }, 'TETHER_ERR_SECRET_TOO_SHORT', /secret\[1\]/],
    ['missing secret', {}, 'TETHER_ERR_INVALID_OPTION', /'secret' is required/],
    ['bad cookie name', { secret: SECRET, cookieName: 'a b' }, 'TETHER_ERR_INVALID_OPTION', /'cookieName'/],
    ['bad sameSite', { secret: SECRET, cookie: { sameSite: 'sometimes' } }, 'TETHER_ERR_INVALID_OPTION', /'cookie\.sameSite'/],
    ['sameSite none without Secure', { secret: SECRET, cookie: { sameSite: 'none', secure: false } }, 'TETHER_ERR_INVALID_OPTION', /Secure/],
    ['negative idle timeout', { secret: SECRET, idleTimeout: -1 }, 'TETHER_ERR_INVALID_OPTION', /'idleTimeout'/],
    ['absolute shorter than idle', { secret: SECRET, idleTimeout: 10_000, absoluteTimeout: 5_000 }, 'TETHER_ERR_INVALID_OPTION', /'absoluteTimeout'/],
    ['domain with a semicolon', { secret: SECRET, cookie: { domain: 'a.com; evil' } }, 'TETHER_ERR_INVALID_OPTION', /'cookie\.domain'/],
    ['unknown mode', { secret: SECRET, mode: 'yolo' }, 'TETHER_ERR_INVALID_OPTION', /'mode'/]
  ]
  for (const [what, options, code, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(fastifySession, options as never).ready() }, { code, message }, what)
    await app.close().catch(() => {})
  }
})

t.test('unserialisable data is a clear 500 at save time, and nothing is written', async (t) => {
  const store = new RecordingStore()
  const app = await makeApp(t, { store })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/circular', async (req) => { const a: Record<string, unknown> = {}; a.self = a; req.session.flash = 'x'; req.session.cart = a as never; return 'ok' })
  app.get('/bigint', async (req) => { req.session.n = 10n as never; return 'ok' })
  app.get('/fn', async (req) => { req.session.flash = (() => 1) as never; return 'ok' })
  const jar = new Jar(app)
  await jar.get('/login')
  for (const [url, what] of [['/circular', 'circular'], ['/bigint', 'bigint'], ['/fn', 'function']] as const) {
    const res = await jar.get(url)
    t.equal(res.statusCode, 500, `${what}: 500`)
    t.equal(res.json().code, 'TETHER_ERR_SESSION_UNSERIALIZABLE', `${what}: typed code`)
    t.match(res.json().message, /cannot be (serialised|stored as JSON)/, `${what}: says why`)
  }
  t.equal(store.ops('apply').length, 1, 'only the login was written')
})

t.test('reserved names and symbols cannot be used as data keys', async (t) => {
  const app = await makeApp(t)
  app.get('/save', async (req) => { (req.session as unknown as Record<string, unknown>).save = 1; return 'no' })
  app.get('/then', async (req) => { (req.session as unknown as Record<string, unknown>).then = 1; return 'no' })
  app.get('/await', async (req) => { const s = await Promise.resolve(req.session); return { same: s === req.session } })
  for (const url of ['/save', '/then']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 500)
    t.equal(res.json().code, 'TETHER_ERR_RESERVED_KEY')
  }
  t.same((await app.inject('/await')).json(), { same: true }, 'a session is not a thenable')
})

t.test('__proto__ and constructor in stored data never reach a prototype', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const id = newId()
  const now = Date.now()
  await store.apply(id, {
    create: { createdAt: now, absoluteExpiry: now + 60_000 },
    set: [
      ['__proto__', '{"polluted":"top"}'],
      ['constructor', '{"prototype":{"polluted":"ctor"}}'],
      ['cart', '{"__proto__":{"polluted":"nested"},"constructor":{"prototype":{"polluted":"nested-ctor"}},"items":[1]}']
    ],
    del: [],
    incr: [],
    ttl: 60_000,
    now
  })
  const app = await makeApp(t, { store })
  app.get('/', async (req) => {
    const cart = req.session.cart as unknown as Record<string, unknown>
    const copy = { ...req.session }
    return {
      plainPolluted: ({} as Record<string, unknown>).polluted ?? null,
      cartPolluted: cart.polluted ?? null,
      cartProtoIsObject: Object.getPrototypeOf(cart) === Object.prototype,
      cartKeys: Object.keys(cart),
      copyPolluted: (copy as Record<string, unknown>).polluted ?? null,
      sessionPolluted: (req.session as unknown as Record<string, unknown>).polluted ?? null
    }
  })
  const res = await app.inject({ url: '/', headers: { cookie: `tether.sid=${new Signer(SECRET).sign(id)}` } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { plainPolluted: null, cartPolluted: null, cartProtoIsObject: true, cartKeys: ['items'], copyPolluted: null, sessionPolluted: null })
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched in the test process too')
})

t.test('corrupt stored JSON is a clear 500, not an empty session', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const id = newId()
  const now = Date.now()
  await store.apply(id, { create: { createdAt: now, absoluteExpiry: now + 60_000 }, set: [['user', '{not json']], del: [], incr: [], ttl: 60_000, now })
  const app = await makeApp(t, { store })
  app.get('/', async (req) => ({ user: req.session.user ?? null }))
  const res = await app.inject({ url: '/', headers: { cookie: `tether.sid=${new Signer(SECRET).sign(id)}` } })
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'TETHER_ERR_STORE_CORRUPT')
})

t.test('idle and absolute timeouts are enforced by the server, not the cookie', async (t) => {
  // Margins of 200 ms or more around every deadline, so a loaded CI machine cannot flip a result.
  const app = await makeApp(t, { idleTimeout: 600, absoluteTimeout: 1400, touchAfter: 1 })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null }))
  const idle = new Jar(app)
  await idle.get('/login')
  const cookie = idle.cookie!
  await sleep(900)
  t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: null }, 'idle session expired though the browser still has the cookie')

  const active = new Jar(app)
  await active.get('/login')
  const activeCookie = active.cookie!
  const alive: boolean[] = []
  for (let i = 0; i < 4; i++) {
    await sleep(300)
    alive.push((await app.inject({ url: '/me', headers: { cookie: activeCookie } })).json().user === 'ada')
  }
  t.same(alive, [true, true, true, true], 'activity keeps it alive past the idle timeout (sliding)')
  await sleep(500)
  t.same((await app.inject({ url: '/me', headers: { cookie: activeCookie } })).json(), { user: null }, 'but not past the absolute timeout')
})

t.test('read-only requests refresh the TTL lazily: no write until touchAfter has elapsed', async (t) => {
  const store = new RecordingStore()
  const app = await makeApp(t, { store, idleTimeout: 10_000, touchAfter: 300 })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null }))
  const jar = new Jar(app)
  await jar.get('/login')
  await jar.get('/me')
  t.match(store.ops('load')[0]!.arg, { idleTimeout: 10_000, refreshBelow: 9_700 }, 'the load carries the refresh threshold')
  t.equal(store.ops('apply').length + store.ops('touch').length, 1, 'a read costs one load and no write')
})

t.test('saveUninitialized: true stores and sends a cookie for untouched sessions', async (t) => {
  const store = new RecordingStore()
  const app = await makeApp(t, { store, saveUninitialized: true })
  app.get('/', async () => 'ok')
  const res = await app.inject('/')
  t.ok(sessionCookie(res), 'cookie sent')
  t.equal(store.ops('apply').length, 1, 'empty session stored')
})

t.test('a handler error still saves what the request wrote', async (t) => {
  const app = await makeApp(t)
  app.get('/fail', async (req) => { req.session.flash = 'oops'; throw Object.assign(new Error('bad input'), { statusCode: 400 }) })
  app.get('/me', async (req) => ({ flash: req.session.flash ?? null }))
  const jar = new Jar(app)
  const res = await jar.get('/fail')
  t.equal(res.statusCode, 400)
  t.same((await jar.get('/me')).json(), { flash: 'oops' })
})

t.test('session data is enumerable like plain properties and serialises as data', async (t) => {
  const app = await makeApp(t)
  app.get('/', async (req) => {
    req.session.user = 'ada'
    req.session.n = 2
    return { keys: Object.keys(req.session), json: JSON.parse(JSON.stringify(req.session)), has: 'user' in req.session, get: req.session.get('user') }
  })
  t.same((await app.inject('/')).json(), { keys: ['user', 'n'], json: { user: 'ada', n: 2 }, has: true, get: 'ada' })
})
