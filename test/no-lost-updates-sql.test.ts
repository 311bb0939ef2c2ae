// Issue 14: the guarantees of no-lost-updates.test.ts on the SQL stores, across real
// processes. Three app nodes share one PostgreSQL schema (or one MySQL database) and one
// session cookie, and fire hundreds of concurrent requests at it; each guarantee is checked
// by its final state.
import t from 'tap'
import type { Test } from 'tap'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { startApp } from './helpers/apps.js'
import type { AppProcess } from './helpers/apps.js'
import { cookieFrom, request } from './helpers/net.js'
import { MYSQL_URL, PG_URL, mysqlTable, pgSchema } from './helpers/sql.js'

interface Backend {
  name: string
  /** Environment for the app fixture; registers its own cleanup on `t`. */
  env (t: Test): Record<string, string>
}

const backends: Backend[] = [
  { name: 'PostgresStore', env: (t) => ({ STORE_URL: PG_URL, SCHEMA: pgSchema(t, 'nlu') }) },
  { name: 'MySqlStore', env: (t) => ({ STORE_URL: MYSQL_URL, SCHEMA: mysqlTable(t, 'nlu') }) }
]

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 })
t.teardown(() => agent.destroy())

for (const backend of backends) {
  t.test(backend.name, async (t) => {
    const env = { ...backend.env(t), LOCK_LEASE: '1500', LOCK_WAIT: '30000' }
    // Started one after another: the first creates the schema, the others find it.
    const nodes: AppProcess[] = []
    for (const name of ['n1', 'n2', 'n3']) nodes.push(await startApp(t, '../fixtures/fastify-app.mjs', { ...env, NODE_NAME: name }))

    const newSession = async (): Promise<string> => {
      const res = await request(`${nodes[0]!.url}/incr`, { method: 'POST' })
      const cookie = cookieFrom(res.headers, 'tether.sid')
      if (cookie === undefined) throw new Error('no session cookie')
      return cookie
    }
    const storm = async (path: string, cookie: string, n: number): Promise<Array<{ status: number, body: string }>> =>
      await Promise.all(Array.from({ length: n }, (_, i) =>
        request(`${nodes[i % nodes.length]!.url}${path.replace('{i}', String(i))}`, { method: 'POST', headers: { cookie }, agent, timeoutMs: 90_000 })))
    const data = async (cookie: string): Promise<Record<string, unknown>> =>
      JSON.parse((await request(`${nodes[1]!.url}/me`, { headers: { cookie } })).body).data

    t.test('lock mode: 300 concurrent read-modify-writes over 3 nodes end at exactly 301', async (t) => {
      const cookie = await newSession()
      const replies = await storm('/rmw-locked?think=1', cookie, 300)
      t.same(replies.filter((r) => r.status !== 200).map((r) => r.body), [], 'every request succeeded')
      t.equal((await data(cookie)).count, 301)
      const counts = replies.map((r) => JSON.parse(r.body).count as number).sort((x, y) => x - y)
      t.same(counts, Array.from({ length: 300 }, (_, i) => i + 2), 'each request saw its predecessor: the sections ran one at a time')
    })

    t.test('commutative increments without a lock: 300 concurrent end at exactly 301', async (t) => {
      const cookie = await newSession()
      const replies = await storm('/incr', cookie, 300)
      t.same(replies.filter((r) => r.status !== 200).map((r) => r.body), [])
      t.equal((await data(cookie)).count, 301)
    })

    t.test('merge mode: 300 concurrent requests each setting its own key all survive', async (t) => {
      const cookie = await newSession()
      const replies = await storm('/set/k{i}', cookie, 300)
      t.same(replies.filter((r) => r.status !== 200).map((r) => r.body), [])
      const stored = await data(cookie)
      t.equal(Object.keys(stored).filter((k) => k.startsWith('k')).length, 300, 'all 300 keys present')
      t.equal(stored.count, 1, 'and the key nobody touched is intact')
    })

    t.test('no resurrection: a slow request in flight when another node destroys the session', async (t) => {
      const login = await request(`${nodes[0]!.url}/login?user=ada`, { method: 'POST' })
      const cookie = cookieFrom(login.headers, 'tether.sid')!
      const slow = request(`${nodes[0]!.url}/slow-write?ms=600`, { method: 'POST', headers: { cookie } })
      await sleep(150)
      const logout = await request(`${nodes[1]!.url}/logout`, { method: 'POST', headers: { cookie } })
      t.match(logout.headers['set-cookie']?.[0], /Max-Age=0/, 'logout cleared the cookie')
      const late = await slow
      t.equal(late.status, 200, 'the slow request completes')
      t.match(late.headers['set-cookie']?.[0], /^tether\.sid=;.*Max-Age=0/, 'and tells its client the session is gone')
      t.same(await data(cookie), {}, 'the session stays destroyed')
    })

    t.test('no resurrection after regenerate: the old id cannot be written back', async (t) => {
      const login = await request(`${nodes[0]!.url}/login?user=ada`, { method: 'POST' })
      const cookie = cookieFrom(login.headers, 'tether.sid')!
      const slow = request(`${nodes[2]!.url}/slow-write?ms=500`, { method: 'POST', headers: { cookie } })
      await sleep(150)
      const relogin = await request(`${nodes[1]!.url}/login?user=root`, { method: 'POST', headers: { cookie } })
      const fresh = cookieFrom(relogin.headers, 'tether.sid')!
      t.not(fresh, cookie, 'regenerated under a new id')
      await slow
      t.same(await data(cookie), {}, 'the old id stays dead')
      t.same(await data(fresh), { user: 'root' }, 'the new session does not get the late write either')
    })
  })
}
