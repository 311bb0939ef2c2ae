// The fault-injection suite (`npm run chaos`; in `npm test` with short faults): each scenario
// runs under steady load from concurrent clients with cookie jars, through the real balancer to
// three real counter-app processes on a private redis-server, injects one fault, heals it, and
// measures what the clients saw: failed idempotent requests, failed writes, writes applied
// more often than they were sent, acknowledged writes lost, sessions lost, time to mark down
// (or to the first 503) and to recover, and the p99 latency during the fault.
// CHAOS_FAULT_MS sets the fault length (default 3000 here, 10000 from `npm run chaos`);
// CHAOS_REPORT names a file the table is written to.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { startCluster, type ChaosCluster } from './cluster.js'
import { Load, type UploadShape } from './load.js'

const FAULT_MS = Number(process.env.CHAOS_FAULT_MS ?? 3000)
// Five scenarios and four process starts: about 100 s in CI on a loaded 2-core machine, more
// than the suite's default 180 s per file with long faults.
t.setTimeout(FAULT_MS > 3000 ? 600_000 : 300_000)
const CLIENTS = Number(process.env.CHAOS_CLIENTS ?? 6)

interface Row {
  scenario: string
  reads: number
  failedReads: number
  writes: number
  failedWrites: number
  /** More increments in the store than writes sent: a write applied twice. */
  doubleApplied: number
  /** Writes answered as failures that were applied (once). */
  appliedButFailed: number
  lostAcked: number
  sessionsLost: number
  markDownMs: number | null
  recoverMs: number | null
  p99FaultMs: number
  /** Failed answers by status (0: a transport error), e.g. `503×75`. */
  failures: string
  known: string
}

interface Scenario {
  name: string
  /** Inject the fault. */
  fault (c: ChaosCluster): Promise<void>
  /** Polled during the fault: true once the balancer has noticed (or the first 503 came). */
  noticed (c: ChaosCluster, load: Load, since: number): boolean
  heal (c: ChaosCluster): Promise<void>
  /** Polled after the heal: true once service is back. */
  recovered (c: ChaosCluster, load: Load, since: number): boolean
  /** Writes are slow uploads of this shape instead of `POST /api/visit`. */
  uploads?: UploadShape
}

const firstStatus = (load: Load, since: number, status: number): boolean => load.samples.some((s) => s.start >= since && s.status === status)
const writeOkAfter = (load: Load, since: number): boolean => load.samples.some((s) => s.start >= since && s.kind === 'write' && s.status === 200)

function byStatus (statuses: number[]): string {
  const counts = new Map<number, number>()
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1)
  return [...counts].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s === 0 ? 'reset' : s}×${n}`).join(' ')
}

function p99 (values: number[]): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0)
}

async function watch (check: () => boolean, limitMs: number): Promise<number | null> {
  const t0 = performance.now()
  while (performance.now() - t0 < limitMs) {
    if (check()) return Math.round(performance.now() - t0)
    await sleep(10)
  }
  return null
}

async function run (c: ChaosCluster, s: Scenario): Promise<Row> {
  const load = new Load(c.url, CLIENTS, 20, s.uploads)
  await sleep(1500)
  const faultAt = performance.now()
  const noticed = watch(() => s.noticed(c, load, faultAt), FAULT_MS)
  await s.fault(c)
  await sleep(Math.max(0, FAULT_MS - (performance.now() - faultAt)))
  const markDownMs = await noticed
  const healAt = performance.now()
  await s.heal(c)
  const recoverMs = await watch(() => s.recovered(c, load, healAt), 15_000)
  await sleep(1500)
  await load.stop()
  // The count each session ended with, read through the balancer once all is well again.
  let sessionsLost = 0
  let doubleApplied = 0
  let appliedButFailed = 0
  let lostAcked = 0
  for (const client of load.clients) {
    let final: number | null = null
    for (let i = 0; i < 10 && final === null; i++) {
      const r = await client.send('GET', '/api/state')
      final = r.count
      if (final === null) await sleep(300)
    }
    const writes = load.samples.filter((x) => x.client === client.id && x.kind === 'write')
    const failed = writes.filter((x) => x.status !== 200).length
    const count = final ?? 0
    if (client.lost || count < client.acked) sessionsLost++
    lostAcked += Math.max(0, client.acked - count)
    const double = Math.max(0, count - writes.length)
    doubleApplied += double
    appliedButFailed += Math.max(0, Math.min(failed, count - client.acked) - double)
  }
  load.close()
  const reads = load.samples.filter((x) => x.kind === 'read')
  const writes = load.samples.filter((x) => x.kind === 'write')
  return {
    scenario: s.name,
    reads: reads.length,
    failedReads: reads.filter((x) => x.status !== 200).length,
    writes: writes.length,
    failedWrites: writes.filter((x) => x.status !== 200).length,
    doubleApplied,
    appliedButFailed,
    lostAcked,
    sessionsLost,
    markDownMs,
    recoverMs,
    p99FaultMs: p99(load.samples.filter((x) => x.start >= faultAt && x.start <= healAt).map((x) => x.end - x.start)),
    failures: byStatus(load.samples.filter((x) => x.status !== 200).map((x) => x.status)),
    known: ''
  }
}

const rows: Row[] = []
const cluster = await startCluster(t)
const [n1, n2] = cluster.nodes
if (n1 === undefined || n2 === undefined) throw new Error('no nodes')

t.test('kill -9 of a node', async (t) => {
  const row = await run(cluster, {
    name: 'kill -9 node',
    fault: () => n1.crash(),
    noticed: (c) => c.health(n1.name) === 'down',
    heal: () => n1.restart(),
    recovered: (c) => c.health(n1.name) === 'up'
  })
  rows.push(row)
  t.equal(row.failedReads, 0, 'no idempotent request failed')
  t.equal(row.doubleApplied, 0, 'no write applied twice')
  t.equal(row.lostAcked, 0, 'no acknowledged write lost')
  t.equal(row.sessionsLost, 0, 'no session lost')
  t.not(row.markDownMs, null, `marked down in ${String(row.markDownMs)} ms`)
})

t.test('SIGSTOP of a node', async (t) => {
  const row = await run(cluster, {
    name: `SIGSTOP node ${FAULT_MS / 1000} s`,
    fault: async () => { n2.signal('SIGSTOP') },
    noticed: (c) => c.health(n2.name) === 'down',
    heal: async () => { n2.signal('SIGCONT') },
    recovered: (c) => c.health(n2.name) === 'up'
  })
  // A write in flight to Redis when the node froze: on SIGCONT the driver's timer has expired.
  // Before exactly-once writes (issue 15 part 1) the app answered 503 and flushed the applied
  // command again; now the retry carries the same write id and is answered, not applied.
  rows.push(row)
  t.equal(row.failedReads, 0, 'no idempotent request failed (per-try timeout moved them)')
  t.equal(row.doubleApplied, 0, 'no write applied twice')
  t.equal(row.lostAcked, 0, 'no acknowledged write lost')
  t.equal(row.sessionsLost, 0, 'no session lost')
  // Bound: fall × interval + timeout = 2 × 500 + 400 ms, or sooner by the passive checks.
  t.ok(row.markDownMs !== null && row.markDownMs <= 1400 + 600, `marked down in ${String(row.markDownMs)} ms (bound 1400 ms + slack)`)
})

t.test('SIGTERM of a node with uploads in flight', async (t) => {
  const n3 = cluster.nodes[2]
  if (n3 === undefined) throw new Error('no node3')
  let signalled = 0
  let drainMs: number | null = null
  let load: Load | undefined
  const row = await run(cluster, {
    name: 'SIGTERM node, uploads 256 KB–1 MB in flight',
    // 64 KB every 10 ms: an upload takes 40–160 ms plus the network, so most of the time one
    // is on its way to any given node.
    uploads: { minBytes: 256 * 1024, maxBytes: 1024 * 1024, chunkBytes: 64 * 1024, gapMs: 10 },
    fault: async (c) => {
      // SIGTERM while the node has a request in flight for 30 ms straight (reads take a few
      // ms, an upload 40 ms or more), so that an upload is under way when the drain starts.
      const active = (): number => c.balancer.nodes().find((n) => n.name === n3.name)?.activeConnections ?? 0
      let since: number | undefined
      for (const t0 = performance.now(); performance.now() - t0 < 3000; await sleep(5)) {
        if (active() === 0) since = undefined
        else if ((since ??= performance.now()) <= performance.now() - 30) break
      }
      signalled = performance.now()
      void n3.exited().then(() => { drainMs = Math.round(performance.now() - signalled) })
      n3.signal('SIGTERM')
    },
    noticed: (_c, l) => { load = l; return drainMs !== null },
    // The drain runs to its end (a restart would SIGKILL it), bounded by the suite's patience.
    heal: async () => { await Promise.race([n3.exited(), sleep(20_000)]); await n3.restart() },
    recovered: (c) => c.health(n3.name) === 'up'
  })
  // Uploads the draining node answered that had started before its SIGTERM: they finished there.
  const finishedThere = load?.samples.filter((x) => x.kind === 'write' && x.node === n3.name && x.start < signalled && x.end > signalled).length ?? 0
  // When the failures happened, from the SIGTERM (ms, start of the request): the drain, the
  // node's absence or its restart.
  const failedAt = (load?.samples ?? []).filter((x) => x.status !== 200).map((x) => `${x.kind} ${x.status === 0 ? 'reset' : x.status} at ${Math.round(x.start - signalled)} ms`)
  row.markDownMs = drainMs
  row.known = `${finishedThere} uploads in flight to the node at SIGTERM finished there; mark-down column: SIGTERM to exit (the drain)${failedAt.length > 0 ? `; failed: ${failedAt.join(', ')}` : ''}`
  rows.push(row)
  t.ok(drainMs !== null, `the node drained and exited in ${String(drainMs)} ms`)
  t.ok(finishedThere >= 1, `uploads in flight to the node at SIGTERM finished there: ${finishedThere}`)
  t.equal(row.failedWrites, 0, 'no upload failed')
  t.equal(row.failedReads, 0, 'no idempotent request failed')
  t.equal(row.doubleApplied, 0, 'no upload applied twice')
  t.equal(row.lostAcked, 0, 'no acknowledged upload lost')
  t.equal(row.sessionsLost, 0, 'no session lost')
})

t.test('reloads under load', async (t) => {
  const all = cluster.nodes.map((n) => n.name)
  let reloads = 0
  let timer: NodeJS.Timeout | undefined
  const row = await run(cluster, {
    name: 'reloads (5, weights change)',
    // What SIGHUP does, minus reading the file: balancer.reload() with a changed configuration.
    fault: async () => {
      timer = setInterval(() => {
        if (reloads >= 5) return
        reloads++
        cluster.balancer.reload(cluster.configWith(all, 1 + (reloads % 3)))
      }, Math.max(100, FAULT_MS / 6))
    },
    noticed: () => reloads >= 5,
    heal: async () => { clearInterval(timer); cluster.balancer.reload(cluster.configWith(all)) },
    recovered: () => true
  })
  rows.push(row)
  t.equal(reloads, 5, 'five reloads')
  t.equal(row.failedReads, 0, 'no idempotent request failed')
  t.equal(row.failedWrites, 0, 'no write failed')
  t.equal(row.sessionsLost, 0, 'no session lost')
})

t.test('draining a node and removing one, then adding them back', async (t) => {
  const n3 = cluster.nodes[2]
  if (n3 === undefined) throw new Error('no node3')
  const all = cluster.nodes.map((n) => n.name)
  const row = await run(cluster, {
    name: 'drain node + remove node, then add back',
    fault: async () => {
      cluster.balancer.setNode(n2.name, { state: 'drain' })
      cluster.balancer.reload(cluster.configWith(all.filter((n) => n !== n3.name)))
    },
    noticed: () => cluster.health(n3.name) === undefined,
    heal: async () => {
      cluster.balancer.reload(cluster.configWith(all))
      cluster.balancer.setNode(n2.name, { state: 'active' })
    },
    recovered: (c) => c.health(n3.name) === 'up' && c.health(n2.name) === 'up'
  })
  rows.push(row)
  t.equal(row.failedReads, 0, 'no idempotent request failed')
  t.equal(row.failedWrites, 0, 'no write failed')
  t.equal(row.doubleApplied, 0, 'no write applied twice')
  t.equal(row.sessionsLost, 0, 'no session lost')
})

t.test('Redis killed and restarted, AOF with appendfsync always', async (t) => {
  const row = await run(cluster, {
    name: 'Redis kill -9 + restart (AOF always)',
    fault: () => cluster.stopRedis(),
    noticed: (_c, load, since) => firstStatus(load, since, 503),
    heal: () => cluster.startRedis(true),
    recovered: (_c, load, since) => writeOkAfter(load, since)
  })
  rows.push(row)
  t.equal(row.doubleApplied, 0, 'no write applied twice')
  t.equal(row.lostAcked, 0, 'no acknowledged write lost with a durable store')
  t.ok(row.markDownMs !== null && row.markDownMs <= 3000, `first 503 after ${String(row.markDownMs)} ms (goal: within 3 s)`)
  t.not(row.recoverMs, null, `writes succeed again ${String(row.recoverMs)} ms after the restart`)
})

t.test('Redis killed and restarted without persistence', async (t) => {
  await cluster.redis.config('SET', 'appendonly', 'no')
  const row = await run(cluster, {
    name: 'Redis kill -9 + restart (no AOF)',
    fault: () => cluster.stopRedis(),
    noticed: (_c, load, since) => firstStatus(load, since, 503),
    heal: () => cluster.startRedis(false),
    recovered: (_c, load, since) => writeOkAfter(load, since)
  })
  row.known = 'sessions and writes are lost by design: the store kept nothing'
  rows.push(row)
  t.equal(row.doubleApplied, 0, 'no write applied twice')
  t.ok(row.markDownMs !== null && row.markDownMs <= 3000, `first 503 after ${String(row.markDownMs)} ms (goal: within 3 s)`)
  await cluster.redis.config('SET', 'appendonly', 'yes').catch(() => {})
})

t.test('CLIENT PAUSE WRITE on Redis', async (t) => {
  const row = await run(cluster, {
    name: `Redis CLIENT PAUSE WRITE ${FAULT_MS / 1000} s`,
    fault: async () => { await cluster.redis.call('CLIENT', 'PAUSE', String(FAULT_MS), 'WRITE') },
    noticed: (_c, load, since) => firstStatus(load, since, 503),
    heal: async () => { await cluster.redis.call('CLIENT', 'UNPAUSE').catch(() => {}) },
    recovered: (_c, load, since) => writeOkAfter(load, since)
  })
  // A write answered 503 may still be applied when its answer said so
  // (TETHER_ERR_STORE_OUTCOME_UNKNOWN): counted, not failed. Applied twice never.
  if (row.appliedButFailed > 0) row.known = '503 answers whose write was applied: OUTCOME_UNKNOWN says a write may have been'
  rows.push(row)
  t.equal(row.lostAcked, 0, 'no acknowledged write lost')
  t.equal(row.doubleApplied, 0, `no write applied twice (applied though answered as failed: ${row.appliedButFailed})`)
  // A write and its same-id retry share one command timeout (2 s in the app), so the first 503
  // comes within it; reads go on their own Redis connection and do not queue behind the writes.
  t.ok(row.markDownMs !== null && row.markDownMs <= 3000, `first 503 after ${String(row.markDownMs)} ms (goal: within 3 s)`)
  t.equal(row.failedReads, 0, 'no read failed: reads do not wait behind paused writes')
})

t.teardown(() => {
  const head = '| scenario | reads (failed) | writes (failed) | double-applied | applied though failed | acked lost | sessions lost | mark-down / first 503 | recover | p99 in fault | failed answers | note |'
  const lines = [head, '|---|---|---|---|---|---|---|---|---|---|---|---|']
  const ms = (v: number | null): string => v === null ? '—' : `${v} ms`
  for (const r of rows) {
    lines.push(`| ${r.scenario} | ${r.reads} (${r.failedReads}) | ${r.writes} (${r.failedWrites}) | ${r.doubleApplied} | ${r.appliedButFailed} | ${r.lostAcked} | ${r.sessionsLost} | ${ms(r.markDownMs)} | ${ms(r.recoverMs)} | ${r.p99FaultMs} ms | ${r.failures} | ${r.known} |`)
  }
  const table = `chaos: ${CLIENTS} clients, faults of ${FAULT_MS} ms\n${lines.join('\n')}\n`
  process.stderr.write(table)
  if (process.env.CHAOS_REPORT !== undefined) writeFileSync(process.env.CHAOS_REPORT, table)
})
