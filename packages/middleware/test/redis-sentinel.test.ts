// RedisStore on Redis Sentinel, under load, through the loss of its primary. A real group (one
// primary, one replica, three sentinels) per case; the primary is SIGKILLed while requests
// run. Every request sets its own key, so each acknowledged write can be looked for after the
// failover: an acknowledged key that is missing is a lost write.
import t from 'tap'
import type { Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { RedisStore } from '../src/index.js'
import type { RedisStoreOptions } from '../src/index.js'
import { startSentinelGroup } from '../../../test/helpers/redis-sentinel.js'
import { makeApp, sessionCookie } from './helpers/fastify-app.js'

interface Outcome { at: number, status: number, ms: number, code?: string, key: string }

const WORKERS = 4

async function failover (t: Test, extra: Partial<RedisStoreOptions>): Promise<{ outcomes: Outcome[], killedAt: number, lost: string[], acked: number, recoveredAfter: number }> {
  const group = await startSentinelGroup(t)
  const store = new RedisStore({ sentinel: { name: group.name, sentinels: group.sentinels }, commandTimeout: 500, prefix: 'sentinel:', ...extra })
  t.teardown(() => store.close())
  const app = await makeApp(t, { store })
  app.post('/set/:key', async (req) => { req.session[(req.params as { key: string }).key] = 1; return 'ok' })
  app.get('/keys', async (req) => Object.keys(req.session.toJSON()))
  const first = await app.inject({ method: 'POST', url: '/set/k-start' })
  t.equal(first.statusCode, 200, 'a session is created through the sentinels')
  const cookie = sessionCookie(first)!
  const outcomes: Outcome[] = []
  let n = 0
  const running = { stop: false }
  const started = Date.now()
  const worker = async (): Promise<void> => {
    while (!running.stop) {
      const key = `k${n++}`
      const t0 = Date.now()
      const res = await app.inject({ method: 'POST', url: `/set/${key}`, headers: { cookie } })
      const code = res.statusCode === 200 ? undefined : (JSON.parse(res.body) as { code?: string }).code
      outcomes.push({ at: t0 - started, status: res.statusCode, ms: Date.now() - t0, key, ...(code === undefined ? {} : { code }) })
      // Failing requests return at once: pace them so the record stays small.
      if (res.statusCode !== 200) await sleep(20)
    }
  }
  const workers = Array.from({ length: WORKERS }, worker)
  await sleep(1500)
  const killedAt = Date.now() - started
  await group.killPrimary()
  // Run until 50 requests in a row succeed after the first failure, or 30 s. Once the
  // sentinels have promoted the replica, the old primary comes back as its replica (what an
  // operator or an orchestrator does), so a write can be confirmed by a replica again.
  const deadline = Date.now() + 30_000
  let rejoined = false
  for (;;) {
    await sleep(100)
    if (!rejoined && await group.primaryNow().catch(() => group.primaryPort) !== group.primaryPort) {
      rejoined = true
      await group.rejoinAsReplica()
    }
    const after = outcomes.filter((o) => o.at >= killedAt)
    const firstFail = after.findIndex((o) => o.status !== 200)
    if (firstFail !== -1 && after.slice(firstFail).slice(-50).length === 50 && after.slice(-50).every((o) => o.status === 200)) break
    if (Date.now() > deadline) break
  }
  running.stop = true
  await Promise.all(workers)
  t.not(await group.primaryNow(), group.primaryPort, 'the sentinels elected a new primary')
  const kept = new Set(JSON.parse((await app.inject({ method: 'GET', url: '/keys', headers: { cookie } })).body) as string[])
  const acked = outcomes.filter((o) => o.status === 200)
  const lost = acked.filter((o) => !kept.has(o.key)).map((o) => o.key)
  const failures = outcomes.filter((o) => o.status !== 200)
  const recoveredAt = outcomes.filter((o) => o.status === 200 && o.at > (failures.at(-1)?.at ?? killedAt))[0]?.at ?? Number.NaN
  return { outcomes, killedAt, lost, acked: acked.length, recoveredAfter: recoveredAt - killedAt }
}

function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}

t.test('primary killed under load: 503s fail fast during the failover, requests recover by themselves; acknowledged writes lost are counted', async (t) => {
  const r = await failover(t, {})
  const failures = r.outcomes.filter((o) => o.status !== 200)
  t.ok(failures.length > 0, `requests failed during the failover (${failures.length})`)
  // A write sent to the dying primary and never answered may have been applied: it is
  // OUTCOME_UNKNOWN (exactly-once), anything that was not sent is UNAVAILABLE.
  const seen = [...new Set(failures.map((o) => `${o.status} ${o.code ?? ''}`))]
  t.ok(seen.every((c) => c === '503 TETHER_ERR_STORE_UNAVAILABLE' || c === '503 TETHER_ERR_STORE_OUTCOME_UNKNOWN'), `every failure is a 503 with a store code: ${seen.join(', ')}`)
  const slowest = Math.max(...failures.map((o) => o.ms))
  t.ok(slowest <= 2500, `each failed fast (slowest ${slowest} ms; command timeout 500 ms)`)
  t.ok(Number.isFinite(r.recoveredAfter), `recovered by itself ${r.recoveredAfter} ms after the kill`)
  t.ok(r.outcomes.slice(-50).every((o) => o.status === 200), 'and kept working')
  const before = r.outcomes.filter((o) => o.status === 200 && o.at + o.ms < r.killedAt).map((o) => o.ms)
  t.comment(`SENTINEL plain: ${r.acked} acknowledged writes, ${r.lost.length} lost, ${failures.length} failed fast (503), recovered ${r.recoveredAfter} ms after the kill, median write request ${median(before)} ms before it`)
})

t.test('waitForReplicas { replicas: 1 }: no acknowledged write is lost; a write no replica confirmed fails with its own code', async (t) => {
  const r = await failover(t, { waitForReplicas: { replicas: 1, timeout: 200 } })
  t.same(r.lost, [], `0 of ${r.acked} acknowledged writes lost`)
  const failures = r.outcomes.filter((o) => o.status !== 200)
  const codes = new Set(failures.map((o) => `${o.status} ${o.code ?? ''}`))
  t.ok([...codes].every((c) => c === '503 TETHER_ERR_STORE_UNAVAILABLE' || c === '503 TETHER_ERR_STORE_OUTCOME_UNKNOWN' || c === '503 TETHER_ERR_WRITE_UNCONFIRMED'), `failures are 503s: ${[...codes].join(', ')}`)
  t.ok(Number.isFinite(r.recoveredAfter), `recovered by itself ${r.recoveredAfter} ms after the kill`)
  // Between the promotion and the old primary's return the new primary has no replica: a
  // write there is applied but unconfirmed, and says so rather than succeed.
  const before = r.outcomes.filter((o) => o.status === 200 && o.at + o.ms < r.killedAt).map((o) => o.ms)
  t.comment(`SENTINEL wait: ${r.acked} acknowledged writes, ${r.lost.length} lost, ${failures.length} failed (503: ${[...codes].join(', ')}), median write request ${median(before)} ms before the kill`)
})
