// The compatibility matrix, Express half: real packages from the registry (passport +
// passport-local, connect-flash, csrf-sync) on Express 4 and 5, each on MemoryStore and on
// RedisStore (a private redis-server), driven end to end through real HTTP. The Fastify half is
// compat-fastify.test.ts; the table in docs/middleware.md lists these cells.
import t from 'tap'
import type { Test } from 'tap'
import type { Server } from 'node:http'
import { MemoryStore, RedisStore, newId } from '../src/index.js'
import type { SessionStore } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { flavours, listen } from './helpers/express-app.js'
import { buildCompatApp } from './helpers/compat-express.js'
import { CookieClient } from './helpers/compat-client.js'

const SID = 'tether.sid'
const idOf = (value: string | undefined): string | undefined => value?.split('.')[0]

const redis = await startRedis(t)

type Cell = (t: Test, url: string) => Promise<void>

const cells: Array<[string, Cell]> = [
  ['passport + passport-local: login, req.user on the next request, logout; the id changes at login', async (t, url) => {
    const c = new CookieClient(url)
    // A session before login (a visitor with a flash message), so fixation protection matters.
    await c.post('/flash', { form: { message: 'before login' } })
    const anonymousCookie = c.cookie(SID)
    const anonymous = idOf(anonymousCookie)
    t.ok(anonymous, 'an anonymous session exists')
    t.same((await c.get('/me')).json(), { user: null, id: anonymous, authenticated: false })

    const bad = await c.post('/login', { form: { username: 'ada', password: 'wrong' } })
    t.equal(bad.status, 401, 'a wrong password is refused')
    const login = await c.post('/login', { form: { username: 'ada', password: 'lovelace' } })
    t.equal(login.status, 200, `login answers (${login.body})`)
    const after = idOf(c.cookie(SID))
    t.equal(login.json().id, after, 'the cookie carries the session passport saved')
    t.not(after, anonymous, 'session fixation: the id changed at login')

    t.same((await c.get('/me')).json(), { user: 'ada', id: after, authenticated: true }, 'req.user on the next request')
    t.same((await c.get('/flash')).json(), { info: [] }, 'regenerate(cb) started an empty session, as express-session does')

    // The old id is dead: a client that kept it is anonymous.
    const stolen = await new CookieClient(url).get('/me', { cookie: `${SID}=${anonymousCookie!}` })
    t.equal(stolen.json().user, null, 'the pre-login id does not carry the login')

    const logout = await c.post('/logout')
    t.equal(logout.status, 200, `logout answers (${logout.body})`)
    t.same((await c.get('/me')).json().user, null, 'logged out on the next request')
    t.not(idOf(c.cookie(SID)), after, 'logout regenerated the id too')
  }],

  ['connect-flash: a message is shown once', async (t, url) => {
    const c = new CookieClient(url)
    t.equal((await c.post('/flash', { form: { message: 'saved!' } })).status, 200)
    t.same((await c.get('/flash')).json(), { info: ['saved!'] }, 'shown on the next request')
    t.same((await c.get('/flash')).json(), { info: [] }, 'and only once')
  }],

  ['csrf-sync: the token lives in the session; a valid one is accepted, a forged one refused', async (t, url) => {
    const c = new CookieClient(url)
    const { token } = (await c.get('/csrf')).json<{ token: string }>()
    t.match(token, /^[0-9a-f]{16,}$/, 'a token')
    t.ok(c.cookie(SID), 'the token was stored in a session')
    const forged = await c.post('/transfer', { headers: { 'x-csrf-token': 'f'.repeat(token.length) } })
    t.equal(forged.status, 403, 'forged token refused')
    const missing = await c.post('/transfer')
    t.equal(missing.status, 403, 'missing token refused')
    const ok = await c.post('/transfer', { headers: { 'x-csrf-token': token } })
    t.same({ status: ok.status, body: ok.json() }, { status: 200, body: { done: true } }, 'valid token accepted')
    const other = new CookieClient(url)
    t.equal((await other.post('/transfer', { headers: { 'x-csrf-token': token } })).status, 403, 'another session\'s token is refused')
  }]
]

const stores: Array<[string, () => SessionStore]> = [
  ['MemoryStore', () => new MemoryStore()],
  ['RedisStore', () => new RedisStore({ url: redis.url, prefix: `compat:${newId().slice(0, 6)}:` })]
]

for (const [flavour, factory] of flavours) {
  for (const [storeName, makeStore] of stores) {
    t.test(`${flavour} on ${storeName}`, async (t) => {
      const store = makeStore()
      t.teardown(() => store.close?.())
      const { app } = buildCompatApp(factory, store)
      const { url, server } = await listen(app)
      t.teardown(() => close(server))
      for (const [name, cell] of cells) await t.test(name, (t) => cell(t, url))
    })
  }
}

async function close (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}
