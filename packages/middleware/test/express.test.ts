// The Express middleware through real HTTP: one table of cases, run against Express 4 and
// Express 5, each app listening on an ephemeral port, sessions in a private redis-server, and a
// second Express process on the same Redis for "the very next request, on another node".
import t from 'tap'
import type { Test } from 'tap'
import http from 'node:http'
import type { Server } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { RedisStore, newId } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import type { RedisServer } from '../../../test/helpers/redis.js'
import { buildApp, flavours, listen, SECRET } from './helpers/express-app.js'
import type { ExpressFactory } from './helpers/express-app.js'
import { Browser, COOKIE, headersOf, idOf, sessionLines } from './helpers/express-client.js'
import { spawnNode } from './helpers/spawn.js'
import type { NodeProcess } from './helpers/spawn.js'

interface Ctx {
  readonly flavour: string
  readonly factory: ExpressFactory
  /** The app in this process. */
  readonly url: string
  /** The same app in another process, on the same Redis. */
  readonly other: NodeProcess
  readonly store: RedisStore
  readonly prefix: string
  readonly redis: RedisServer
  /** Start one more app in this process (other options), closed at the end of `t`. */
  app (t: Test, options?: Parameters<typeof buildApp>[1]): Promise<string>
}

const OLD_SECRET = 'express-old-secret-0123456789-abcdefghijklmno'

const redis = await startRedis(t)

const cases: Array<[string, (t: Test, ctx: Ctx) => Promise<void>]> = [
  ['a cookie is sent only when the session is written', async (t, { url }) => {
    const b = new Browser()
    t.same(sessionLines(await b.get(`${url}/noop`)), [], 'no session access: no cookie')
    const read = await b.get(`${url}/get?k=user`)
    t.same(sessionLines(read), [], 'read-only access to a new session: no cookie')
    t.equal(read.json().isNew, true)
    const write = await b.post(`${url}/set?k=user&v="ada"`)
    const [line] = sessionLines(write)
    t.match(line, /^tether\.sid=[A-Za-z0-9_-]{32}\.[A-Za-z0-9+/]{43}; Path=\/; HttpOnly; SameSite=Lax$/, 'signed cookie, default attributes, no Secure over http')
    t.equal(idOf(b.cookie), write.json().id, 'req.sessionID is the id in the cookie')
    const again = await b.get(`${url}/get?k=user`)
    t.same(again.json(), { value: 'ada', id: idOf(b.cookie), isNew: false })
    t.same(sessionLines(again), [], 'no cookie for a read')
    t.same(sessionLines(await b.post(`${url}/set?k=user&v="grace"`)), [], 'no new cookie for a write to an existing session')
    t.equal((await b.get(`${url}/get?k=user`)).json().value, 'grace')
  }],

  ['properties read and write; a nested mutation is saved', async (t, { url }) => {
    const b = new Browser()
    await b.post(`${url}/set?k=n&v=41`)
    t.equal((await b.get(`${url}/get?k=n`)).json().value, 41)
    t.same((await b.post(`${url}/cart/push?item=1`)).json(), { items: [1] })
    t.same((await b.post(`${url}/cart/push?item=2`)).json(), { items: [1, 2] }, 'pushed into the loaded array')
    t.same((await b.get(`${url}/get?k=cart`)).json().value, { items: [1, 2] }, 'in-place push persisted')
  }],

  ['a user cookie set by the route is kept next to the session cookie', async (t, { url }) => {
    const reply = await new Browser().post(`${url}/set-with-cookie`)
    const lines = reply.headers['set-cookie'] ?? []
    t.equal(lines.length, 2)
    t.ok(lines.some((l) => l.startsWith('theme=dark')), 'the route\'s cookie')
    t.ok(lines.some((l) => l.startsWith(`${COOKIE}=`)), 'the session cookie')
  }],

  ['regenerate: a new id, the data kept, the old id dead', async (t, { url }) => {
    const b = new Browser()
    await b.post(`${url}/set?k=n&v=7`)
    const old = b.cookie
    const login = await b.post(`${url}/login?user=ada`)
    const { before, after } = login.json<{ before: string, after: string }>()
    t.equal(before, idOf(old))
    t.not(after, before, 'new id')
    t.equal(idOf(b.cookie), after, 'the new cookie carries the new id, and req.sessionID followed it')
    t.equal((await b.get(`${url}/get?k=n`)).json().value, 7, 'data kept')
    t.equal((await b.get(`${url}/get?k=user`)).json().value, 'ada')
    const stale = await new Browser(old).get(`${url}/get?k=n`)
    t.same([stale.json().value, stale.json().isNew], [null, true], 'the old id no longer loads')
  }],

  ['destroy: the cookie is cleared and the old id is dead', async (t, { url }) => {
    const b = new Browser()
    await b.post(`${url}/set?k=user&v="ada"`)
    const old = b.cookie
    const out = await b.post(`${url}/logout`)
    t.match(sessionLines(out)[0], /^tether\.sid=; Path=\/; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970/, 'clearing cookie')
    t.equal(b.cookie, undefined)
    t.same((await new Browser(old).get(`${url}/get?k=user`)).json().value, null, 'old cookie finds nothing')
  }],

  ['save, reload and touch', async (t, { url, store, redis }) => {
    const b = new Browser()
    t.same((await b.post(`${url}/save-reload`)).json(), { a: 1, b: null }, 'save() wrote a; reload() dropped the unsaved b')
    t.equal((await b.get(`${url}/get?k=a`)).json().value, 1)
    t.equal((await b.get(`${url}/get?k=b`)).json().value, null)
    const admin = redis.client()
    const key = store.key(idOf(b.cookie)!)
    await sleep(250)
    const before = await admin.pttl(key)
    t.same((await b.post(`${url}/touch`)).json(), { ok: true })
    const after = await admin.pttl(key)
    t.ok(after > before + 100, `touch() reset the idle TTL (${before} → ${after} ms)`)
  }],

  ['increment: 50 concurrent increments add exactly 50', async (t, { url }) => {
    const b = new Browser()
    t.same((await b.post(`${url}/incr`)).json(), { n: 1 })
    const replies = await Promise.all(Array.from({ length: 50 }, () => b.post(`${url}/incr`)))
    t.ok(replies.every((r) => r.status === 200))
    t.equal((await b.get(`${url}/get?k=n`)).json().value, 51)
  }],

  ['forged, tampered, malformed and oversized cookies start a new session, never an error', async (t, { url }) => {
    const b = new Browser()
    await b.post(`${url}/set?k=user&v="ada"`)
    const good = b.cookie!
    const [id, sig] = good.slice(COOKIE.length + 1).split('.') as [string, string]
    const flip = (s: string, at: number) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1)
    const bad: Record<string, string> = {
      forged: `${COOKIE}=${newId()}.${'A'.repeat(43)}`,
      'signed with another secret': `${COOKIE}=${id}.${flip(sig, 5)}`,
      'tampered id': `${COOKIE}=${flip(id, 3)}.${sig}`,
      'id without signature': `${COOKIE}=${id}`,
      empty: `${COOKIE}=`,
      'bad percent-encoding': `${COOKIE}=%E0%A4%A.${sig}`,
      'three parts': `${COOKIE}=a.b.c`,
      'not ASCII': `${COOKIE}=${encodeURIComponent('Grüße 🌍')}`,
      oversized: `${COOKIE}=${'x'.repeat(7000)}`,
      'path traversal id': `${COOKIE}=../../etc/passwd.${sig}`
    }
    for (const [what, cookie] of Object.entries(bad)) {
      const reply = await new Browser(cookie).get(`${url}/get?k=user`)
      t.equal(reply.status, 200, `${what}: answered`)
      t.same([reply.json().value, reply.json().isNew], [null, true], `${what}: a new, empty session`)
      t.match(sessionLines(reply)[0], /Max-Age=0/, `${what}: the bad cookie is cleared`)
    }
    const forged = new Browser(bad.forged)
    await forged.post(`${url}/set?k=user&v="mallory"`)
    t.not(idOf(forged.cookie), idOf(bad.forged), 'a write under a forged cookie gets a fresh id, not the forged one')
    t.equal((await new Browser(good).get(`${url}/get?k=user`)).json().value, 'ada', 'the real session is untouched')
  }],

  ['secret rotation: an old-secret cookie is accepted and re-signed with the new secret', async (t, ctx) => {
    const oldApp = await ctx.app(t, { store: ctx.store, secret: OLD_SECRET })
    const rotated = await ctx.app(t, { store: ctx.store, secret: [SECRET, OLD_SECRET] })
    const b = new Browser()
    await b.post(`${oldApp}/set?k=user&v="ada"`)
    const signedOld = b.cookie!
    const reply = await b.get(`${rotated}/get?k=user`)
    t.equal(reply.json().value, 'ada', 'accepted')
    t.equal(sessionLines(reply).length, 1, 're-signed on a read')
    t.equal(idOf(b.cookie), idOf(signedOld), 'same session id')
    t.not(b.cookie, signedOld, 'new signature')
    t.equal((await b.get(`${ctx.url}/get?k=user`)).json().value, 'ada', 'the re-signed cookie verifies with the new secret alone')
    t.equal((await new Browser(signedOld).get(`${ctx.url}/get?k=user`)).json().isNew, true, 'once the old secret is dropped, its cookies are refused')
  }],

  ['Secure follows req.secure, which respects trust proxy', async (t, ctx) => {
    const trusting = await ctx.app(t, { store: ctx.store, trustProxy: true })
    const https = { 'x-forwarded-proto': 'https' }
    t.match(sessionLines(await new Browser().post(`${trusting}/set?k=n&v=1`, https))[0], /; Secure$/, 'behind a trusted proxy over https')
    t.notMatch(sessionLines(await new Browser().post(`${ctx.url}/set?k=n&v=1`, https))[0], /Secure/, 'forwarded header ignored without trust proxy')
  }],

  ['store down: 503 with its code, fast, at load and at save, and recovery', async (t, ctx) => {
    const down = await startRedis(t)
    const store = new RedisStore({ url: down.url, commandTimeout: 1000 })
    t.teardown(() => store.close())
    const app = await ctx.app(t, { store })
    const plain = await ctx.app(t, { store, errorHandler: false })
    const b = new Browser()
    await b.post(`${app}/set?k=user&v="ada"`)
    await down.stop()
    const started = Date.now()
    const atLoad = await b.get(`${app}/get?k=user`)
    t.equal(atLoad.status, 503, 'load failed: 503')
    t.equal(atLoad.json().code, 'TETHER_ERR_STORE_UNAVAILABLE')
    const atSave = await new Browser().post(`${app}/set?k=user&v="grace"`)
    t.equal(atSave.status, 503, 'save failed after the handler ran: 503')
    t.equal(atSave.json().code, 'TETHER_ERR_STORE_UNAVAILABLE')
    t.same(sessionLines(atSave), [], 'no cookie for a session that was not saved')
    const streamed = await new Browser().get(`${app}/stream`)
    t.equal(streamed.status, 503, 'a streamed response whose save fails becomes the error')
    t.notMatch(streamed.body, /chunk/, 'none of the held output leaked into it')
    const byDefault = await new Browser().post(`${plain}/set?k=user&v="grace"`)
    t.equal(byDefault.status, 503, 'Express\'s default error handler answers 503 too')
    t.ok(Date.now() - started < 5000, `no hang (${Date.now() - started} ms for four requests)`)
    // The killed redis-server kept nothing (no persistence): the old session is gone, and the
    // app must serve new ones as soon as Redis answers again.
    await down.start()
    await waitForStatus(`${app}/get?k=user`, b, 200)
    const fresh = new Browser()
    t.equal((await fresh.post(`${app}/set?k=user&v="back"`)).status, 200, 'writes again once Redis is back')
    t.equal((await fresh.get(`${app}/get?k=user`)).json().value, 'back')
  }],

  ['unserialisable data: a clear 500 with its code, whatever the route started to send', async (t, { url }) => {
    const b = new Browser()
    const reply = await b.post(`${url}/bigint`)
    t.equal(reply.status, 500, 'not the route\'s 201')
    t.equal(reply.json().code, 'TETHER_ERR_SESSION_UNSERIALIZABLE')
    t.match(reply.json().message, /'big'.*bigint/, 'names the key and the type')
    t.same(sessionLines(reply), [], 'nothing saved, no cookie')
    const streamed = await b.post(`${url}/bigint-stream`)
    t.equal(streamed.status, 500)
    t.equal(streamed.json().code, 'TETHER_ERR_SESSION_UNSERIALIZABLE', 'the held chunks were dropped for the error body')
    t.equal((await b.get(`${url}/noop`)).status, 200, 'the app carries on')
  }],

  ['a streamed response carries the cookie; the write is readable before the body ends', async (t, { url, other }) => {
    const { res, body } = await headersOf(`${url}/stream`)
    const cookie = sessionLines(res)[0]?.split(';')[0]
    t.ok(cookie, 'Set-Cookie on a streamed response')
    // Headers are out, the body is still being written: the session must already be stored.
    const early = await new Browser(cookie).get(`${other.url}/get?k=streamed`)
    t.equal(early.json().value, 'yes', 'another process reads it while the stream still runs')
    t.equal(await body, 'chunk0;chunk1;chunk2;chunk3;chunk4;end', 'chunks complete and in order')
    t.equal((await new Browser(cookie).get(`${url}/get?k=streamed`)).json().value, 'yes')
  }],

  ['a piped 4 MiB stream keeps its order and backpressure across the save', async (t, { url }) => {
    const b = new Browser()
    const chunks = 256
    const reply = await new Promise<{ bytes: Buffer, cookie: string | undefined }>((resolve, reject) => {
      http.get(`${url}/pipe?chunks=${chunks}`, { agent: false }, (res) => {
        const parts: Buffer[] = []
        res.on('data', (d: Buffer) => parts.push(d))
        res.on('end', () => resolve({ bytes: Buffer.concat(parts), cookie: sessionLines(res)[0]?.split(';')[0] }))
        res.on('error', reject)
      }).on('error', reject)
    })
    t.equal(reply.bytes.length, chunks * 16_384, 'every byte')
    let ordered = true
    for (let i = 0; i < chunks; i++) if (reply.bytes[i * 16_384] !== i % 256 || reply.bytes[i * 16_384 + 16_383] !== i % 256) ordered = false
    t.ok(ordered, 'chunks in order')
    b.cookie = reply.cookie
    t.equal((await b.get(`${url}/get?k=streamed`)).json().value, 'piped')
  }],

  ['res.redirect: 302 with the cookie, and the target sees the write', async (t, { url }) => {
    const b = new Browser()
    const reply = await b.post(`${url}/redirect`)
    t.equal(reply.status, 302)
    t.equal(reply.headers.location, '/get?k=redirected')
    t.equal(sessionLines(reply).length, 1)
    t.equal((await b.get(`${url}${reply.headers.location!}`)).json().value, 'yes')
  }],

  ['flushHeaders() waits for the save too', async (t, { url }) => {
    const b = new Browser()
    const reply = await b.post(`${url}/flush`)
    t.equal(reply.body, 'done')
    t.equal(sessionLines(reply).length, 1, 'the cookie went out with the flushed headers')
    t.equal((await b.get(`${url}/get?k=streamed`)).json().value, 'flushed')
  }],

  ['a sub-app that mounts the middleware again shares the one session', async (t, { url }) => {
    const b = new Browser()
    await b.post(`${url}/set?k=user&v="ada"`)
    const reply = await b.post(`${url}/sub/set?k=n&v=3`)
    t.equal(reply.json().id, idOf(b.cookie), 'the same session inside the sub-app')
    t.same(sessionLines(reply), [], 'no second cookie')
    t.equal((await b.get(`${url}/get?k=n`)).json().value, 3, 'the sub-app\'s write was saved')
    t.equal((await b.get(`${url}/get?k=user`)).json().value, 'ada')
  }],

  ['a write is visible to the very next request on another process, both ways', async (t, { url, other }) => {
    const b = new Browser()
    for (let i = 0; i < 20; i++) {
      const [writer, reader] = i % 2 === 0 ? [url, other.url] : [other.url, url]
      await b.post(`${writer}/set?k=n&v=${i}`)
      const seen = await b.get(`${reader}/get?k=n`)
      if (seen.json().value !== i) t.fail(`write ${i} not visible on the other process: ${seen.body}`)
    }
    t.equal((await b.get(`${other.url}/get?k=n`)).json().value, 19, 'every write was seen by the next request on the other node')
  }],

  ['near-cache: reads of a cached session cost no Redis call, whatever the route; a write elsewhere is seen at once', async (t, ctx) => {
    const own = await startRedis(t)
    const store = new RedisStore({ url: own.url })
    t.teardown(() => store.close())
    const app = await ctx.app(t, { store, nearCache: true })
    const admin = own.client()
    // Every command the store can send: HGETALL for loads, scripts (by SHA, or by text the first
    // time) for writes, DEL for destroys.
    const calls = async () => [...(await admin.info('commandstats')).matchAll(/^cmdstat_(?:hgetall|evalsha|eval|del):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
    const b = new Browser()
    await b.post(`${app}/set?k=user&v="ada"`)
    // The node's own write invalidated its copy: the next read loads (and caches) it, once the
    // invalidation has arrived (a load that began before it never keeps its result).
    await sleep(100)
    t.equal((await b.get(`${app}/get?k=user`)).json().value, 'ada')
    const id = /tether\.sid=([^.;]+)/.exec(b.cookie ?? '')?.[1]
    await sleep(100)
    await admin.config('RESETSTAT')
    for (let i = 0; i < 5; i++) t.equal((await b.get(`${app}/get?k=user`, { 'x-tether-route': i % 2 === 0 ? 'moved' : 'sticky' })).json().value, 'ada')
    t.equal(await calls(), 0, 'five reads, no store call')
    t.ok(id, 'the session id is known')
    await admin.hset(`tether:sess:{${id!}}`, 'user', '"grace"')
    await sleep(100)
    t.equal((await b.get(`${app}/get?k=user`)).json().value, 'grace', 'a write by another Redis client is read at once')
  }],

  ['x-tether-cache tells the balancer hit or miss, and only the balancer', async (t, ctx) => {
    const app = await ctx.app(t, { store: ctx.store, nearCache: true })
    const b = new Browser()
    const fresh = await b.post(`${app}/set?k=user&v="ada"`, { 'x-tether-route': 'new' })
    t.equal(fresh.headers['x-tether-cache'], undefined, 'no session cookie yet: no read to report')
    await sleep(100) // the write's own invalidation arrives first (see the case above)
    t.equal((await b.get(`${app}/get?k=user`, { 'x-tether-route': 'sticky' })).headers['x-tether-cache'], 'miss', 'the first read loads from the store')
    await sleep(50)
    t.equal((await b.get(`${app}/get?k=user`, { 'x-tether-route': 'sticky' })).headers['x-tether-cache'], 'hit', 'the next one is served by the near-cache')
    t.equal((await b.get(`${app}/get?k=user`)).headers['x-tether-cache'], undefined, 'not through tether-balancer: nothing sent')
    const plain = await ctx.app(t, { store: ctx.store })
    t.equal((await b.get(`${plain}/get?k=user`, { 'x-tether-route': 'sticky' })).headers['x-tether-cache'], undefined, 'without the near-cache: nothing sent')
  }],

  ['lock mode: read-modify-writes of one session run one at a time', async (t, ctx) => {
    const locked = await ctx.app(t, { store: ctx.store, mode: 'lock', lock: { lease: 5000, wait: 10_000 } })
    const b = new Browser()
    await b.post(`${locked}/set?k=n&v=0`)
    await Promise.all(Array.from({ length: 20 }, () => b.post(`${locked}/rmw`)))
    t.equal((await b.get(`${locked}/get?k=n`)).json().value, 20, 'mode: lock, no lost update')
    const perRequest = new Browser()
    await perRequest.post(`${ctx.url}/set?k=n&v=0`)
    await Promise.all(Array.from({ length: 20 }, () => perRequest.post(`${ctx.url}/rmw?lock=1`)))
    t.equal((await perRequest.get(`${ctx.url}/get?k=n`)).json().value, 20, 'await req.session.lock() in merge mode, no lost update')
  }],

  ['lock mode: a failed save and an aborted request both release the lock', async (t, ctx) => {
    const locked = await ctx.app(t, { store: ctx.store, mode: 'lock', lock: { lease: 30_000, wait: 1500 } })
    const b = new Browser()
    await b.post(`${locked}/set?k=n&v=0`)
    t.equal((await b.post(`${locked}/bigint`)).status, 500)
    let started = Date.now()
    t.equal((await b.post(`${locked}/rmw`)).status, 200, 'the next request got the lock')
    t.ok(Date.now() - started < 1000, 'without waiting for the lease')
    await new Promise<void>((resolve) => {
      const req = http.request(`${locked}/hang`, { method: 'POST', headers: { cookie: b.cookie! }, agent: false })
      req.on('error', () => resolve())
      req.end()
      setTimeout(() => { req.destroy(); resolve() }, 200)
    })
    started = Date.now()
    const after = await b.post(`${locked}/rmw`)
    t.equal(after.status, 200, `the client's abort released the lock (${after.body})`)
    t.ok(Date.now() - started < 1000, 'without waiting for the lease')
  }]
]

for (const [flavour, factory] of flavours) {
  t.test(flavour, async (t) => {
    const prefix = `${flavour}:${newId().slice(0, 6)}:`
    const store = new RedisStore({ url: redis.url, prefix })
    t.teardown(() => store.close())
    const start = async (t: Test, options: Parameters<typeof buildApp>[1] = {}): Promise<string> => {
      const { app, session } = buildApp(factory, options)
      const { url, server } = await listen(app)
      t.teardown(async () => { await close(server); await session.close() })
      return url
    }
    const url = await start(t, { store })
    const other = await spawnNode(t, 'express-node', { FLAVOUR: flavour, REDIS_URL: redis.url, PREFIX: prefix })
    const ctx: Ctx = { flavour, factory, url, other, store, prefix, redis, app: start }
    for (const [name, fn] of cases) await t.test(name, (t) => fn(t, ctx))
  })
}

async function close (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

async function waitForStatus (url: string, b: Browser, status: number): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const reply = await b.get(url)
    if (reply.status === status) return
    if (Date.now() > deadline) throw new Error(`${url} still answers ${reply.status}: ${reply.body}`)
    await sleep(100)
  }
}
