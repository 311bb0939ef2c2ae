// Reads while Redis holds writes (`CLIENT PAUSE <ms> WRITE`): RedisStore reads on a connection
// of its own, so a GET of an existing session keeps answering, with fresh data, while a write
// waits. On one shared connection the read queued behind the paused write (the chaos suite
// measured failed reads). The test owns its redis-server on a free port (never the shared one)
// and checks the recorded history of reads and writes: every read during the pause answered
// 200, quickly, and none showed a count older than a write acknowledged before it started.
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { RedisStore } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { makeApp, sessionCookie } from './helpers/fastify-app.js'

interface Op { kind: 'read' | 'write', session: number, start: number, end: number, status: number, n: number | null }

const PAUSE_MS = 1500
const SESSIONS = 4

for (const driver of ['node-redis', 'ioredis'] as const) {
  t.test(`${driver}: reads of existing sessions answer fresh during CLIENT PAUSE WRITE`, async (t) => {
    const redis = await startRedis(t)
    // The timeout outlasts the pause: the writes held by it land afterwards and succeed.
    const store = new RedisStore({ url: redis.url, driver, prefix: 'rc:', commandTimeout: PAUSE_MS + 2000 })
    t.teardown(() => store.close())
    const app = await makeApp(t, { store })
    app.post('/visit', async (req) => { req.session.increment('n'); await req.session.save(); return { n: req.session.n } })
    app.get('/state', async (req) => ({ n: req.session.n ?? 0 }))

    const history: Op[] = []
    const cookies: string[] = []
    const send = async (kind: Op['kind'], session: number): Promise<void> => {
      const start = performance.now()
      const res = await app.inject({ method: kind === 'write' ? 'POST' : 'GET', url: kind === 'write' ? '/visit' : '/state', headers: { cookie: cookies[session]! } })
      const n = res.statusCode === 200 ? (res.json<{ n: number }>()).n : null
      history.push({ kind, session, start, end: performance.now(), status: res.statusCode, n })
    }
    for (let i = 0; i < SESSIONS; i++) {
      const res = await app.inject({ method: 'POST', url: '/visit' })
      cookies.push(sessionCookie(res)!)
    }
    // A few acknowledged writes per session, so a stale read would show.
    for (let round = 0; round < 3; round++) await Promise.all(cookies.map(async (_c, i) => await send('write', i)))

    await redis.client().call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE')
    const pausedAt = performance.now()
    // A write per session now waits in Redis, on the store's connection; reads go on meanwhile.
    const held = cookies.map(async (_c, i) => await send('write', i))
    while (performance.now() - pausedAt < PAUSE_MS - 300) {
      await Promise.all(cookies.map(async (_c, i) => await send('read', i)))
      await sleep(20)
    }
    await Promise.all(held)

    const reads = history.filter((o) => o.kind === 'read')
    t.ok(reads.length >= SESSIONS * 5, `${reads.length} reads during the pause`)
    const failed = reads.filter((o) => o.status !== 200)
    t.equal(failed.length, 0, 'every read answered 200')
    const slowest = Math.max(...reads.map((o) => o.end - o.start))
    t.ok(slowest < 500, `no read waited behind the paused writes (slowest ${Math.round(slowest)} ms of a ${PAUSE_MS} ms pause)`)
    // Fresh: no read shows less than a write of its session acknowledged before the read began,
    // nor more than the writes sent before it ended.
    let stale = 0
    let future = 0
    for (const r of reads) {
      const writes = history.filter((o) => o.kind === 'write' && o.session === r.session)
      const acked = Math.max(0, ...writes.filter((w) => w.status === 200 && w.end < r.start).map((w) => w.n ?? 0))
      const sent = 1 + writes.filter((w) => w.start < r.end).length
      if ((r.n ?? 0) < acked) stale++
      if ((r.n ?? 0) > sent) future++
    }
    t.equal(stale, 0, 'no read older than an acknowledged write')
    t.equal(future, 0, 'no read shows a write not yet sent')
    const heldWrites = history.filter((o) => o.kind === 'write' && o.start >= pausedAt)
    t.ok(heldWrites.every((w) => w.status === 200 && w.end - pausedAt >= PAUSE_MS - 100), 'the held writes waited for the pause and then succeeded')
    t.same(heldWrites.map((w) => w.n).sort(), Array(SESSIONS).fill(5), 'each landed once: 1 + 3 + 1 increments')
  })
}
