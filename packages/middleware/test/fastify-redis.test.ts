// The Fastify plugin on a real Redis that goes down, hangs and comes back. The test owns its
// redis-server (free port), so stopping it harms nobody.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { RedisStore } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { waitFor } from '../../../test/helpers/net.js'
import { Jar, makeApp } from './helpers/fastify-app.js'

t.test('store down: fast 503 with a code, never an empty session; back up: works without restart', async (t) => {
  const redis = await startRedis(t)
  const store = new RedisStore({ url: redis.url, commandTimeout: 500 })
  t.teardown(() => store.close())
  const logs: Array<Record<string, unknown>> = []
  const stream = { write: (line: string) => { logs.push(JSON.parse(line)) } }
  const app = await makeApp(t, { store }, { logger: { level: 'warn', stream } })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null }))
  const jar = new Jar(app)
  await jar.get('/login')
  t.same((await jar.get('/me')).json(), { user: 'ada' })

  await redis.stop()
  const started = Date.now()
  const down = await jar.get('/me')
  const elapsed = Date.now() - started
  t.equal(down.statusCode, 503, 'service unavailable')
  t.equal(down.json().code, 'TETHER_ERR_STORE_UNAVAILABLE')
  t.ok(elapsed < 2000, `answered without hanging (${elapsed} ms)`)
  t.ok(logs.some((l) => (l.err as Record<string, unknown> | undefined)?.code === 'TETHER_ERR_STORE_UNAVAILABLE'), 'logged through the Fastify logger')
  const anonymous = await app.inject('/login')
  t.equal(anonymous.statusCode, 503, 'a write without a cookie also fails rather than pretending')

  await redis.start()
  await waitFor(async () => (await jar.get('/me')).statusCode === 200, 10_000, 'requests to succeed again')
  t.same((await jar.get('/me')).json(), { user: null }, 'the store restarted empty (no persistence), so the session is new — but served')
  // Reads have a connection of their own, which may be back before the writes' one: wait for
  // a write to be accepted (until then it is refused with a 503, never applied in part).
  await waitFor(async () => (await jar.get('/login')).statusCode === 200, 10_000, 'writes to succeed again')
  t.same((await jar.get('/me')).json(), { user: 'ada' }, 'and writes work again, same app, no restart')
})

t.test('store hung (SIGSTOP): the command timeout turns it into a 503, not a hang', async (t) => {
  const redis = await startRedis(t)
  const store = new RedisStore({ url: redis.url, commandTimeout: 300 })
  t.teardown(() => store.close())
  const app = await makeApp(t, { store })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null }))
  const jar = new Jar(app)
  await jar.get('/login')
  const pid = execFileSync('redis-cli', ['-p', String(redis.port), 'info', 'server']).toString().match(/process_id:(\d+)/)![1]!
  process.kill(Number(pid), 'SIGSTOP')
  t.teardown(() => { try { process.kill(Number(pid), 'SIGCONT') } catch {} })
  const started = Date.now()
  const hung = await jar.get('/me')
  const elapsed = Date.now() - started
  t.equal(hung.statusCode, 503)
  t.equal(hung.json().code, 'TETHER_ERR_STORE_UNAVAILABLE')
  t.ok(elapsed < 1500, `bounded by the command timeout (${elapsed} ms)`)
  process.kill(Number(pid), 'SIGCONT')
  await waitFor(async () => (await jar.get('/me')).statusCode === 200, 10_000, 'recovery')
  t.same((await jar.get('/me')).json(), { user: 'ada' }, 'session intact after the stall')
})

t.test('store down at save time: 503 with a code, the lock released', async (t) => {
  const redis = await startRedis(t)
  const store = new RedisStore({ url: redis.url, commandTimeout: 500 })
  t.teardown(() => store.close())
  const app = await makeApp(t, { store })
  app.get('/login', async (req) => { req.session.user = 'ada'; return 'ok' })
  app.get('/stop-then-write', async (req) => { await redis.stop(); req.session.user = 'eve'; return 'ok' })
  const jar = new Jar(app)
  await jar.get('/login')
  const res = await jar.get('/stop-then-write')
  t.equal(res.statusCode, 503)
  // The client may not have seen the socket close yet when the write goes out: then the write
  // was sent and no answer came, and the honest code is "outcome unknown".
  t.match(res.json().code, /^TETHER_ERR_STORE_(UNAVAILABLE|OUTCOME_UNKNOWN)$/)
})
