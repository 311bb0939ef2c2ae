/**
 * The no-lost-updates scenarios of issue 4, for any store the app fixture can open from its
 * environment: three app nodes (separate OS processes) share one store and one session cookie
 * and fire hundreds of concurrent requests at it; each guarantee is checked by its final state.
 * test/no-lost-updates.test.ts runs them on Redis and memcached (with the extended set and a look
 * inside the store); the SQL stores' test files run the core set.
 */
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { startApp } from './apps.js'
import type { AppProcess } from './apps.js'
import { cookieFrom, request } from './net.js'

/** What a store's test file adds to the core scenarios. */
export interface LostUpdateOptions {
  /** The store's name, for messages. */
  readonly name?: string
  /**
   * Whether the store holds a live session record under this id (a tombstone is not one):
   * checked after the no-resurrection scenario, looking inside the store itself.
   */
  readonly holds?: (id: string) => Promise<boolean>
  /**
   * Also run: session.lock() opted in per request, merge-mode read-modify-write of one key
   * (last writer wins, never corrupt), and a bounded lock wait (503, never a hang).
   */
  readonly extended?: boolean
}

/** Run the scenarios against app nodes started with `storeEnv` (STORE_URL, SCHEMA, …). */
export async function lostUpdateSuite (t: Test, storeEnv: Record<string, string>, options: LostUpdateOptions = {}): Promise<void> {
  const storeName = options.name ?? 'the store'
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 })
  t.teardown(() => agent.destroy())
  const env = { ...storeEnv, LOCK_LEASE: '1500', LOCK_WAIT: '30000' }
  // Started one after another: the first creates the schema, the others find it.
  const nodes: AppProcess[] = []
  for (const name of ['n1', 'n2', 'n3']) nodes.push(await startApp(t, '../fixtures/fastify-app.mjs', { ...env, NODE_NAME: name }))
  // The node the lease test kills, started now rather than mid-test (a start takes seconds here).
  const holder = await startApp(t, '../fixtures/fastify-app.mjs', { ...env, NODE_NAME: 'doomed' })

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

  if (options.extended === true) {
    t.test('lock mode opted in per request with session.lock(): exact too', async (t) => {
      const cookie = await newSession()
      const replies = await storm('/rmw-lock-call', cookie, 100)
      t.same(replies.filter((r) => r.status !== 200).map((r) => r.body), [])
      t.equal((await data(cookie)).count, 101)
    })
  }

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

  if (options.extended === true) {
    t.test('merge mode, same key, read-modify-write: last writer wins per key (documented; use increment or lock)', async (t) => {
      const cookie = await newSession()
      await storm('/rmw?think=5', cookie, 60)
      const count = (await data(cookie)).count as number
      t.ok(count >= 2 && count <= 61, `count is ${count}: some writer's value, never corrupt`)
      t.comment(`merge-mode read-modify-write of one key: ${61 - count} of 60 increments lost (why increment() and lock mode exist)`)
    })
  }

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
    if (options.holds !== undefined) t.equal(await options.holds(cookie.split('=')[1]!.split('.')[0]!), false, `nothing recreated in ${storeName}`)
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

  t.test('lock lease: a holder killed mid-request blocks the session for at most the lease', async (t) => {
    const cookie = await newSession()
    const hanging = request(`${holder.url}/hang-locked`, { method: 'POST', headers: { cookie }, timeoutMs: 30_000 }).catch(() => 'aborted')
    await sleep(300)
    // While the holder lives it keeps its lease: a locked request elsewhere must wait.
    const probe = await request(`${nodes[0]!.url}/rmw-locked`, { method: 'POST', headers: { cookie }, timeoutMs: 2500 }).then((r) => `answered ${r.status}`, (err: Error) => err.message)
    t.match(probe, /timed out/, 'the lock is held past its 1500 ms lease while the holder is alive (renewal)')
    await holder.kill()
    const started = Date.now()
    const next = await request(`${nodes[1]!.url}/rmw-locked`, { method: 'POST', headers: { cookie }, timeoutMs: 30_000 })
    const waited = Date.now() - started
    t.equal(next.status, 200, 'the next request got the lock')
    t.ok(waited <= 1500 + 1000, `within the 1500 ms lease of the dead holder (waited ${waited} ms)`)
    t.equal(await hanging, 'aborted', 'the dead holder never answered')
  })

  if (options.extended === true) {
    t.test('lock wait is bounded: past it the request fails with 503 and a code, never hangs', async (t) => {
      const impatient = await startApp(t, '../fixtures/fastify-app.mjs', { ...env, NODE_NAME: 'impatient', LOCK_WAIT: '400' })
      const other = await startApp(t, '../fixtures/fastify-app.mjs', { ...env, NODE_NAME: 'holder' })
      const cookie = await newSession()
      const hanging = request(`${other.url}/hang-locked`, { method: 'POST', headers: { cookie }, timeoutMs: 30_000 }).catch(() => undefined)
      await sleep(300)
      const started = Date.now()
      const res = await request(`${impatient.url}/rmw-locked`, { method: 'POST', headers: { cookie } })
      t.equal(res.status, 503)
      t.equal(JSON.parse(res.body).code, 'TETHER_ERR_LOCK_TIMEOUT')
      t.ok(Date.now() - started < 2000, 'failed after the configured wait')
      await other.kill()
      await hanging
    })
  }
}
