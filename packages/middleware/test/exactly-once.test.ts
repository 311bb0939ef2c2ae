// Issue 15's reproduction: an increment answered with a 503 was applied twice. The test owns its
// redis-server (a free port) and pauses its writes with CLIENT PAUSE, so the EVALSHA of the
// second increment is sent, times out in the client, and still runs when the pause ends.
// Whatever the client was told, Redis must count each increment once.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import express from 'express'
import type { NextFunction, Request, Response } from 'express'
import { RedisStore } from '../src/index.js'
import type { ApplyResult, SessionChange, SessionStore } from '../src/index.js'
import { MemoryStore, TetherError } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import type { RedisServer } from '../../../test/helpers/redis.js'
import { Jar, makeApp } from './helpers/fastify-app.js'
import { RecordingStore } from './helpers/recording-store.js'

const PREFIX = 'eo:'

/** The session's counter as Redis holds it, read by a client of our own. */
async function storedCount (redis: RedisServer, cookie: string | undefined): Promise<string | null> {
  const id = cookie?.split('=')[1]?.split('.')[0]
  return await redis.client().hget(`${PREFIX}{${id}}`, 'n')
}

async function pauseWrites (redis: RedisServer, ms: number): Promise<void> {
  await redis.client().call('CLIENT', 'PAUSE', String(ms), 'WRITE')
}

for (const driver of ['node-redis', 'ioredis'] as const) {
  t.test(`${driver}, Fastify: a write that times out while Redis is paused is answered within one timeout and applied once`, async (t) => {
    const redis = await startRedis(t)
    // The pause outlasts the write timeout: the first try uses the whole budget, so no retry
    // is sent (it would double the wait: 2 × 1000 ms, the chaos suite's "first 503 after 4 s").
    const store = new RedisStore({ url: redis.url, driver, prefix: PREFIX, commandTimeout: 1000 })
    t.teardown(() => store.close())
    const app = await makeApp(t, { store })
    app.post('/visit', async (req) => { req.session.increment('n'); await req.session.save(); return { n: req.session.n } })
    const jar = new Jar(app)
    const first = await app.inject({ method: 'POST', url: '/visit' })
    jar.cookie = first.headers['set-cookie']?.toString().split(';')[0]
    t.same(first.json(), { n: 1 })
    await pauseWrites(redis, 2500)
    const t0 = performance.now()
    const second = await app.inject({ method: 'POST', url: '/visit', headers: { cookie: jar.cookie! } })
    const took = performance.now() - t0
    t.equal(second.statusCode, 503)
    t.equal(second.json().code, 'TETHER_ERR_STORE_OUTCOME_UNKNOWN', 'the answer says the write may have been applied')
    t.ok(took >= 900 && took < 1800, `answered after one write timeout (1000 ms), not two: ${Math.round(took)} ms`)
    await sleep(2000)
    t.equal(await storedCount(redis, jar.cookie), '2', 'Redis counted the increment once, when the pause ended')
  })

  t.test(`${driver}, Fastify: both attempts time out: 503 outcome unknown, still applied at most once`, async (t) => {
    const redis = await startRedis(t)
    const store = new RedisStore({ url: redis.url, driver, prefix: PREFIX, commandTimeout: 400 })
    t.teardown(() => store.close())
    const app = await makeApp(t, { store })
    app.post('/visit', async (req) => { req.session.increment('n'); await req.session.save(); return { n: req.session.n } })
    const first = await app.inject({ method: 'POST', url: '/visit' })
    const cookie = first.headers['set-cookie']?.toString().split(';')[0]
    await pauseWrites(redis, 1500)
    const second = await app.inject({ method: 'POST', url: '/visit', headers: { cookie: cookie! } })
    t.equal(second.statusCode, 503)
    t.equal(second.json().code, 'TETHER_ERR_STORE_OUTCOME_UNKNOWN', 'the answer says the write may have been applied')
    await sleep(1500)
    t.equal(await storedCount(redis, cookie), '2', 'the timed-out write landed after the pause, once (no flush on the error reply)')
  })
}

t.test('Express: an awaited save() that times out while Redis is paused is applied once', async (t) => {
  const redis = await startRedis(t)
  const store = new RedisStore({ url: redis.url, prefix: PREFIX, commandTimeout: 400 })
  t.teardown(() => store.close())
  const { expressSession } = await import('../src/index.js')
  const app = express()
  const quiet = { debug () {}, info () {}, warn () {}, error () {} }
  app.use(expressSession({ secret: 'express-test-secret-0123456789-abcdefghijklmnop', store, logger: quiet }))
  app.post('/visit', (req: Request, res: Response, next: NextFunction) => {
    req.session.increment('n')
    req.session.save().then(() => res.json({ n: req.session.n }), next)
  })
  app.use((err: TetherError, _req: Request, res: Response, _next: NextFunction) => { res.status(err.statusCode ?? 500).json({ code: err.code }) })
  const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/visit`
  const first = await fetch(url, { method: 'POST' })
  const cookie = first.headers.get('set-cookie')!.split(';')[0]!
  t.same(await first.json(), { n: 1 })
  await pauseWrites(redis, 1500)
  const second = await fetch(url, { method: 'POST', headers: { cookie } })
  t.equal(second.status, 503)
  t.equal(((await second.json()) as { code: string }).code, 'TETHER_ERR_STORE_OUTCOME_UNKNOWN')
  await sleep(1500)
  t.equal(await storedCount(redis, cookie), '2', 'applied once, and not flushed again on the error reply')
})

/** A MemoryStore whose apply() loses its answer `failures` times: the write lands, the caller hears nothing. */
class LostReplyStore extends RecordingStore {
  failures: number
  constructor (failures: number) {
    super(new MemoryStore())
    this.failures = failures
  }

  override apply = async (id: string, change: SessionChange): Promise<ApplyResult> => {
    this.calls.push({ op: 'apply', id, arg: change })
    const result = await this.inner.apply(id, change)
    if (this.failures-- > 0) throw new TetherError('TETHER_ERR_STORE_OUTCOME_UNKNOWN', 'reply lost (test)')
    return result
  }
}

t.test('the core: one write id per change, one retry, pending cleared once on every path', async (t) => {
  const once = new LostReplyStore(1)
  const app = await makeApp(t, { store: once as SessionStore })
  app.post('/visit', async (req) => { req.session.increment('n'); await req.session.save(); return { n: req.session.n } })
  app.post('/implicit', async (req) => { req.session.increment('n'); return 'ok' })
  const jar = new Jar(app)
  once.failures = 0
  const created = await app.inject({ method: 'POST', url: '/visit' })
  jar.cookie = created.headers['set-cookie']?.toString().split(';')[0]
  once.failures = 1
  once.calls.length = 0
  const retried = await app.inject({ method: 'POST', url: '/visit', headers: { cookie: jar.cookie! } })
  t.equal(retried.statusCode, 200, 'one lost reply: the retry answers')
  t.same(retried.json(), { n: 2 })
  const applies = once.ops('apply').map((c) => (c.arg as SessionChange).writeId)
  t.equal(applies.length, 2, 'the write and its retry')
  t.ok(applies[0] !== undefined && applies[0] === applies[1], 'under the same write id')

  once.failures = 2
  once.calls.length = 0
  const unknown = await app.inject({ method: 'POST', url: '/visit', headers: { cookie: jar.cookie! } })
  t.equal(unknown.statusCode, 503)
  t.equal(unknown.json().code, 'TETHER_ERR_STORE_OUTCOME_UNKNOWN')
  t.equal(once.ops('apply').length, 2, 'no third apply from the hook that sends the error')
  t.equal((await once.inner.load(created.headers['set-cookie']!.toString().split('=')[1]!.split('.')[0]!, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }))!.fields.get('n'), '3', 'applied once (the memory store applied the first attempt)')

  once.failures = 2
  once.calls.length = 0
  const atEnd = await app.inject({ method: 'POST', url: '/implicit', headers: { cookie: jar.cookie! } })
  t.equal(atEnd.statusCode, 503, 'the save at the end of the request fails the same way')
  t.equal(atEnd.json().code, 'TETHER_ERR_STORE_OUTCOME_UNKNOWN')
  t.equal(once.ops('apply').length, 2, 'the write and one retry, no more')
})

/** A LostReplyStore with a write budget whose lost replies take `delayMs` to be noticed. */
class SlowLostReplyStore extends LostReplyStore {
  readonly writeTimeout = 300
  constructor (failures: number, readonly delayMs: number) { super(failures) }

  override apply = async (id: string, change: SessionChange): Promise<ApplyResult> => {
    this.calls.push({ op: 'apply', id, arg: change })
    const result = await this.inner.apply(id, change)
    if (this.failures-- > 0) {
      await sleep(this.delayMs)
      throw new TetherError('TETHER_ERR_STORE_OUTCOME_UNKNOWN', 'reply lost (test)')
    }
    return result
  }
}

t.test('the core: the write and its retry share one deadline (the store\'s writeTimeout)', async (t) => {
  for (const [delayMs, tries] of [[10, 2], [300, 1]] as const) {
    const store = new SlowLostReplyStore(0, delayMs)
    const app = await makeApp(t, { store: store as SessionStore })
    app.post('/visit', async (req) => { req.session.increment('n'); await req.session.save(); return { n: req.session.n } })
    const created = await app.inject({ method: 'POST', url: '/visit' })
    const cookie = created.headers['set-cookie']!.toString().split(';')[0]!
    store.failures = 1
    store.calls.length = 0
    const t0 = Date.now()
    const res = await app.inject({ method: 'POST', url: '/visit', headers: { cookie } })
    const changes = store.ops('apply').map((c) => c.arg as SessionChange)
    t.equal(changes.length, tries, `a first try that failed after ${delayMs} ms of 300: ${tries === 2 ? 'retried' : 'no time left, not retried'}`)
    t.ok(changes[0]?.deadline !== undefined && changes[0].deadline >= t0 + 300 && changes[0].deadline <= Date.now() + 300, 'the first try carries the deadline: one budget from its send')
    if (tries === 2) {
      t.equal(res.statusCode, 200, 'the retry answers')
      t.equal(changes[1]?.deadline, changes[0]?.deadline, 'the retry keeps the first try\'s deadline')
    } else {
      t.equal(res.statusCode, 503)
      t.equal(res.json().code, 'TETHER_ERR_STORE_OUTCOME_UNKNOWN')
    }
  }
})

t.test('a store that does not apply ids once is never retried', async (t) => {
  class NoDedupe extends LostReplyStore { override readonly exactlyOnce = false }
  const store = new NoDedupe(0)
  const app = await makeApp(t, { store: store as SessionStore })
  app.post('/visit', async (req) => { req.session.increment('n'); await req.session.save(); return { n: req.session.n } })
  const created = await app.inject({ method: 'POST', url: '/visit' })
  const cookie = created.headers['set-cookie']!.toString().split(';')[0]!
  store.failures = 1
  store.calls.length = 0
  const res = await app.inject({ method: 'POST', url: '/visit', headers: { cookie } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'TETHER_ERR_STORE_OUTCOME_UNKNOWN')
  t.equal(store.ops('apply').length, 1, 'a retry could apply the increment twice: not sent')
})
