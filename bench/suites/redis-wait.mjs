// What `waitForReplicas` costs: RedisStore writes (apply of one key) against one primary with
// one replica, without and with `WAIT 1 <ms>` after each write, alternating rounds in the same
// run. Sequential writes give the latency a request pays; 50 in flight give the throughput.
import { execFileSync } from 'node:child_process'
import { RedisStore, newId } from '@tether/middleware'
import { freePort, startProcess, waitForPort } from '../lib/proc.mjs'
import { fmt, table } from '../lib/table.mjs'

const ROUNDS = 3

async function replicaPair () {
  const server = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const primary = await freePort()
  startProcess('redis-server', ['--port', String(primary), ...server])
  await waitForPort(primary)
  const replica = await freePort()
  startProcess('redis-server', ['--port', String(replica), ...server, '--replicaof', '127.0.0.1', String(primary)])
  await waitForPort(replica)
  for (let i = 0; i < 100; i++) {
    if (/master_link_status:up/.test(execFileSync('redis-cli', ['-p', String(replica), 'INFO', 'replication']).toString())) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return `redis://127.0.0.1:${primary}`
}

async function writes (store, ids, total, concurrency) {
  let issued = 0
  const latencies = []
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    while (issued < total) {
      const i = issued++
      const s = performance.now()
      const r = await store.apply(ids[w], { set: [[`k${i % 50}`, String(i)]], del: [], incr: [], ttl: 3_600_000, now: Date.now() })
      if (!r.ok) throw new Error(`write refused: ${r.reason}`)
      latencies.push(performance.now() - s)
    }
  }))
  const ms = performance.now() - t0
  latencies.sort((a, b) => a - b)
  return { perSec: total / ms * 1000, p50: latencies[Math.floor(latencies.length / 2)], p99: latencies[Math.floor(latencies.length * 0.99)] }
}

export default async function (ctx) {
  const url = await replicaPair()
  const variants = [
    ['plain', new RedisStore({ url, driver: 'ioredis', prefix: 'bw:' })],
    ['waitForReplicas { replicas: 1, timeout: 1000 }', new RedisStore({ url, driver: 'ioredis', prefix: 'bw:', waitForReplicas: { replicas: 1, timeout: 1000 } })]
  ]
  const ids = Array.from({ length: 50 }, () => newId())
  const now = Date.now()
  for (const id of ids) await variants[0][1].apply(id, { create: { createdAt: now, absoluteExpiry: now + 3_600_000 }, set: [['a', '1']], del: [], incr: [], ttl: 3_600_000, now })
  const total = ctx.quick ? 1000 : 4000
  const results = new Map(variants.map(([name]) => [name, { seq: [], par: [] }]))
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, store] of variants) {
        results.get(name).seq.push(await writes(store, ids, total / 4, 1))
        results.get(name).par.push(await writes(store, ids, total, 50))
      }
    }
  } finally {
    for (const [, store] of variants) await store.close()
  }
  const med = (runs, key) => [...runs].map((r) => r[key]).sort((a, b) => a - b)[Math.floor(runs.length / 2)]
  const rows = variants.map(([name]) => {
    const r = results.get(name)
    return [name, fmt(med(r.seq, 'p50'), 3), fmt(med(r.seq, 'p99'), 3), fmt(med(r.par, 'perSec')), fmt(med(r.par, 'p99'), 2)]
  })
  return table(`RedisStore writes with one replica: the cost of waitForReplicas (median of ${ROUNDS} alternating rounds)`,
    ['variant', 'sequential p50 ms', 'sequential p99 ms', 'writes/s at 50 in flight', 'p99 ms at 50 in flight'], rows)
}
