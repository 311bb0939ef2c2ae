// Per-session cookie lifetime ("remember me"): req.session.cookie.maxAge / expires set in one
// request, persisted with the session, sent in the Set-Cookie, used as the session's TTL in the
// store, cut at the absolute timeout, rolled when used; on Express and Fastify, on MemoryStore
// and RedisStore (a private redis-server), through real HTTP.
import t from 'tap'
import type { Test } from 'tap'
import type { Server } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import express from 'express'
import type { NextFunction, Request, Response } from 'express'
import Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import { expressSession, fastifySession, MemoryStore, RedisStore, newId } from '../src/index.js'
import type { Session, SessionOptions, SessionStore } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { CookieClient } from './helpers/compat-client.js'
import { listen } from './helpers/express-app.js'

const SECRET = 'lifetime-test-secret-0123456789-abcdefghijklm'
const SID = 'tether.sid'
const HOUR = 3_600_000
const DAY = 24 * HOUR
const OPTIONS = { secret: SECRET, idleTimeout: HOUR, absoluteTimeout: 10 * DAY }

const redis = await startRedis(t)

/** What a route does with `req.session.cookie`, the same on both adapters. */
function handle (session: Session, query: Record<string, string | undefined>): Record<string, unknown> {
  if (query.maxAge !== undefined) session.cookie.maxAge = query.maxAge === 'null' ? null : Number(query.maxAge)
  if (query.expiresIn !== undefined) session.cookie.expires = new Date(Date.now() + Number(query.expiresIn))
  if (query.user !== undefined) session.user = query.user
  const { originalMaxAge, maxAge, expires } = session.cookie
  return { originalMaxAge, maxAge, expires: expires?.getTime() ?? null, id: session.id, path: session.cookie.path, httpOnly: session.cookie.httpOnly }
}

type Start = (t: Test, store: SessionStore, options?: Partial<SessionOptions>) => Promise<string>

const adapters: Array<[string, Start]> = [
  ['express', async (t, store, options) => {
    const app = express()
    app.set('env', 'test')
    app.use(expressSession({ ...OPTIONS, ...options, store }))
    app.all('/cookie', (req, res) => { res.json(handle(req.session, req.query as Record<string, string>)) })
    app.use((err: Error & { code?: string, statusCode?: number }, _req: Request, res: Response, _next: NextFunction) => {
      res.status(err.statusCode ?? 500).json({ code: err.code ?? null })
    })
    const { url, server } = await listen(app)
    t.teardown(() => close(server))
    return url
  }],
  ['fastify', async (t, store, options) => {
    const app = Fastify()
    await app.register(fastifySession, { ...OPTIONS, ...options, store })
    app.all('/cookie', async (req: FastifyRequest<{ Querystring: Record<string, string> }>) => handle(req.session, req.query))
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    return url
  }]
]

declare module '../src/index.js' {
  interface SessionData { user: string }
}

const stores: Array<[string, () => SessionStore]> = [
  ['MemoryStore', () => new MemoryStore()],
  ['RedisStore', () => new RedisStore({ url: redis.url, prefix: `lifetime:${newId().slice(0, 6)}:` })]
]

/** The Max-Age of the session's Set-Cookie line: null when there is no line, 'none' without Max-Age. */
function maxAgeOf (headers: Record<string, string | string[] | undefined>): number | 'none' | null {
  const line = ([] as string[]).concat(headers['set-cookie'] ?? []).find((l) => l.startsWith(SID + '='))
  if (line === undefined) return null
  const m = /Max-Age=(\d+)/.exec(line)
  return m === null ? 'none' : Number(m[1])
}

/** The idle TTL the store holds for the client's session (ms from now). */
async function ttlOf (store: SessionStore, c: CookieClient): Promise<number> {
  const id = c.cookie(SID)!.split('.')[0]!
  const now = Date.now()
  const stored = await store.load(id, { now, idleTimeout: HOUR, refreshBelow: 0 })
  return stored === undefined ? -1 : stored.expiresAt - now
}

const near = (t: Test, actual: number, expected: number, slack: number, what: string): void => {
  t.ok(Math.abs(actual - expected) <= slack, `${what}: ${actual} ≈ ${expected}`)
}

for (const [adapter, start] of adapters) {
  for (const [storeName, makeStore] of stores) {
    t.test(`${adapter} on ${storeName}`, async (t) => {
      const store = makeStore()
      t.teardown(() => store.close?.())
      const url = await start(t, store)

      await t.test('no lifetime set: a browser-session cookie, the idle timeout in the store', async (t) => {
        const c = new CookieClient(url)
        const r = await c.post('/cookie?user=ada')
        t.equal(maxAgeOf(r.headers), 'none')
        t.same([r.json().originalMaxAge, r.json().maxAge, r.json().expires], [null, null, null])
        t.same([r.json().path, r.json().httpOnly], ['/', true], 'the attributes read from the options')
        near(t, await ttlOf(store, c), HOUR, 10_000, 'store TTL')
      })

      await t.test('remember me: maxAge for this session, in the cookie, the store TTL, and read back later', async (t) => {
        const c = new CookieClient(url)
        const login = await c.post(`/cookie?user=ada&maxAge=${5 * DAY}`)
        near(t, maxAgeOf(login.headers) as number, 5 * DAY / 1000, 5, 'Set-Cookie Max-Age (s)')
        near(t, await ttlOf(store, c), 5 * DAY, 10_000, 'store TTL')
        const later = (await c.get('/cookie')).json()
        t.equal(later.originalMaxAge, 5 * DAY, 'originalMaxAge persisted with the session')
        near(t, later.maxAge as number, 5 * DAY, 10_000, 'maxAge: what is left')
        near(t, later.expires as number, Date.now() + 5 * DAY, 10_000, 'expires')
        await c.post('/cookie?user=grace')
        near(t, await ttlOf(store, c), 5 * DAY, 10_000, 'a later write keeps the session\'s TTL, not the idle timeout')
        const other = new CookieClient(url)
        t.equal((await other.get('/cookie')).json().originalMaxAge, null, 'other sessions keep the default')
      })

      await t.test('bounded by the absolute timeout', async (t) => {
        const c = new CookieClient(url)
        const r = await c.post(`/cookie?user=ada&maxAge=${30 * DAY}`)
        near(t, maxAgeOf(r.headers) as number, 10 * DAY / 1000, 5, 'Max-Age cut at the absolute deadline')
        near(t, await ttlOf(store, c), 10 * DAY, 10_000, 'store TTL cut too')
        const later = (await c.get('/cookie')).json()
        t.equal(later.originalMaxAge, 30 * DAY, 'originalMaxAge is what was asked')
        near(t, later.maxAge as number, 10 * DAY, 10_000, 'maxAge is what the cookie got')
      })

      await t.test('expires sets the lifetime to the time left until it', async (t) => {
        const c = new CookieClient(url)
        const r = await c.post(`/cookie?user=ada&expiresIn=${2 * DAY}`)
        near(t, maxAgeOf(r.headers) as number, 2 * DAY / 1000, 5, 'Max-Age')
        near(t, await ttlOf(store, c), 2 * DAY, 10_000, 'store TTL')
      })

      await t.test('maxAge = null: back to a browser-session cookie and the idle timeout', async (t) => {
        const c = new CookieClient(url)
        await c.post(`/cookie?user=ada&maxAge=${5 * DAY}`)
        const r = await c.post('/cookie?maxAge=null')
        t.equal(maxAgeOf(r.headers), 'none', 'a session cookie again')
        near(t, await ttlOf(store, c), HOUR, 10_000, 'store TTL')
        t.equal((await c.get('/cookie')).json().originalMaxAge, null)
      })

      await t.test('a lifetime set on a session nothing else was written to saves it', async (t) => {
        const c = new CookieClient(url)
        const r = await c.post(`/cookie?maxAge=${DAY}`)
        near(t, maxAgeOf(r.headers) as number, DAY / 1000, 5, 'cookie sent')
        t.equal((await c.get('/cookie')).json().originalMaxAge, DAY)
      })

      await t.test('an invalid lifetime is refused with a typed error', async (t) => {
        const r = await new CookieClient(url).post('/cookie?maxAge=-5')
        t.equal(r.status, 500)
        t.equal(r.json().code, 'TETHER_ERR_INVALID_COOKIE_LIFETIME')
      })

      await t.test('the lifetime rolls once a tenth of it has passed, on a read', async (t) => {
        const c = new CookieClient(url)
        await c.post('/cookie?user=ada&maxAge=10000')
        await sleep(1500)
        near(t, await ttlOf(store, c), 8500, 1000, 'the TTL ran down')
        const read = await c.get('/cookie')
        t.equal(maxAgeOf(read.headers), 10, 'the cookie rolled on a read-only request')
        near(t, await ttlOf(store, c), 10_000, 1000, 'and so did the store TTL')
      })

      await t.test('the absolute timeout still ends a remembered session', async (t) => {
        const short = await start(t, store, { idleTimeout: 1000, absoluteTimeout: 1500 })
        const c = new CookieClient(short)
        const r = await c.post(`/cookie?user=ada&maxAge=${DAY}`)
        t.equal(maxAgeOf(r.headers), 1, 'Max-Age cut to the 1.5 s absolute timeout')
        await sleep(1700)
        t.equal((await c.get('/cookie')).json().originalMaxAge, null, 'the session is gone')
      })
    })
  }
}

async function close (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}
