// Log out everywhere through Fastify on every shared store that claims it (Redis, memcached,
// PostgreSQL, MySQL), with a request in flight: it loaded the session before the logout and
// writes after it, and must not bring the session back.
import t from 'tap'
import type { Test } from 'tap'
import { MemcachedStore, MySqlStore, PostgresStore, RedisStore, newId } from '../src/index.js'
import type { SessionStore } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { startMemcached } from '../../../test/helpers/memcached.js'
import { MYSQL_URL, mysqlTable, PG_URL, pgSchema } from '../../../test/helpers/sql.js'
import { makeApp, sessionCookie } from './helpers/fastify-app.js'

const redis = await startRedis(t)
const memcached = await startMemcached(t)
const schema = pgSchema(t)
const table = mysqlTable(t)

const stores: Array<[string, () => SessionStore]> = [
  ['RedisStore', () => new RedisStore({ url: redis.url, prefix: `da:${newId().slice(0, 6)}:` })],
  ['MemcachedStore', () => new MemcachedStore({ url: memcached.url, prefix: `da:${newId().slice(0, 6)}:` })],
  ['PostgresStore', () => new PostgresStore({ url: PG_URL, schema })],
  ['MySqlStore', () => new MySqlStore({ url: MYSQL_URL, table })]
]

for (const [name, make] of stores) {
  t.test(`${name}, Fastify: destroyAllFor ends the user's sessions; a request in flight cannot write one back`, async (t: Test) => {
    const store = make()
    t.teardown(() => store.close?.())
    const app = await makeApp(t, { store, owner: 'user' })
    let release = (): void => {}
    let entered = (): void => {}
    const inside = new Promise<void>((resolve) => { entered = resolve })
    app.post('/login', async (req) => { req.session.user = (req.query as { u: string }).u; return 'ok' })
    app.get('/me', async (req) => ({ user: req.session.user ?? null }))
    app.post('/slow', async (req) => {
      const user = req.session.user
      await new Promise<void>((resolve) => { release = resolve; entered() })
      req.session.late = 'written after the logout'
      return { user }
    })
    const login = async (u: string): Promise<string> => sessionCookie(await app.inject({ method: 'POST', url: `/login?u=${u}` }))!
    const ada = [await login('ada'), await login('ada')]
    const bob = await login('bob')
    const inFlight = app.inject({ method: 'POST', url: '/slow', headers: { cookie: ada[0]! } })
    await inside
    t.equal(await app.sessions.destroyAllFor('ada'), 2, 'both of ada\'s sessions ended')
    release()
    const late = await inFlight
    t.same(late.json(), { user: 'ada' }, 'the request in flight had loaded the session')
    for (const cookie of ada) t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: null }, 'logged out, not brought back')
    t.same((await app.inject({ url: '/me', headers: { cookie: bob } })).json(), { user: 'bob' }, 'another user untouched')
  })
}
