// Issue 11 benchmark: the near-cache under round-robin. Three Fastify nodes behind
// tether-balancer with sticky routing off (every request may land on any node), reads of one
// session after warm-up, against three plain Fastify nodes (no sessions) and three Tether nodes
// without the cache, behind the same balancer, in the same run. Then what tracking costs Redis:
// its tracking table and memory with sessions cached on every node.
import { createBalancer } from '@tether/balancer'
import { startRedisServer } from '../lib/redis.mjs'
import { measure, median, mintCookies, spread, startBenchApp } from '../lib/sessions.mjs'
import { fmt, table } from '../lib/table.mjs'

const PLAIN = 'plain Fastify ×3 (no session)'
const SETUPS = [
  [PLAIN, 'fastify-plain.mjs', {}],
  ['Tether ×3, no near-cache', 'fastify-tether.mjs', {}],
  ['Tether ×3 + nearCache', 'fastify-tether.mjs', { NEAR: '1' }]
]

async function cluster (file, env, redis) {
  const apps = []
  for (let i = 0; i < 3; i++) apps.push(await startBenchApp(file, { REDIS_URL: redis.url, ...env }))
  const balancer = createBalancer({
    listen: '127.0.0.1:0',
    algorithm: 'weighted-round-robin',
    upstreams: apps.map((a, i) => ({ url: a.url, name: `n${i}` })),
    sticky: false,
    log: { level: 'error' }
  })
  const { port } = await balancer.listen()
  return {
    url: `http://127.0.0.1:${port}`,
    apps,
    stop: async () => { await balancer.close(); for (const a of apps) await a.stop() }
  }
}

function info (redis, section) {
  const out = {}
  for (const m of redis.cli('INFO', section).matchAll(/^(\w+):(\S+)/gm)) out[m[1]] = m[2]
  return out
}

export default async function (ctx) {
  const redis = await startRedisServer()
  try {
    const rounds = ctx.quick ? 1 : 3
    const runs = new Map()
    for (let round = 0; round < rounds; round++) {
      for (const [name, file, env] of SETUPS) {
        redis.flush()
        const c = await cluster(file, env, redis)
        try {
          const cookies = name === PLAIN ? undefined : await mintCookies(c.url, 1)
          const r = await measure(c, 'read', { duration: ctx.duration, cookies, redis: cookies ? redis : undefined })
          // Loads only: the near-cache's heartbeat PINGs (4 a second per node) are not per read.
          if (cookies) r.loads = (redis.commandStats().hgetall ?? 0) / r.requests
          runs.set(name, [...(runs.get(name) ?? []), r])
        } finally { await c.stop() }
      }
    }
    const plain = median(runs.get(PLAIN))
    const body = SETUPS.map(([name]) => {
      const all = runs.get(name)
      const r = median(all)
      return [name, r.rps, spread(all, fmt), name === PLAIN ? '–' : `${fmt(r.rps / plain.rps, 2)}×`, fmt(r.p50, 2), fmt(r.p99, 2), name === PLAIN ? '–' : fmt(r.loads, 4), name === PLAIN ? '–' : fmt(r.client, 4)]
    })
    const reads = table(`Reads of one session, round-robin over 3 nodes behind tether-balancer (sticky off), wrk -c50, median of ${rounds} round${rounds > 1 ? 's' : ''}`,
      ['nodes', 'req/s', 'req/s over the rounds', 'vs plain', 'p50 ms', 'p99 ms', 'HGETALL/read', 'Redis commands/read (heartbeat PINGs included)'], body)

    // What tracking costs Redis: N sessions cached on each of 3 nodes.
    redis.flush()
    const N = ctx.quick ? 200 : 1000
    const before = info(redis, 'memory')
    const c = await cluster('fastify-tether.mjs', { NEAR: '1' }, redis)
    let cost
    try {
      const cookies = await mintCookies(c.url, N)
      const afterSessions = Number(info(redis, 'memory').used_memory)
      for (let pass = 0; pass < 3; pass++) for (const cookie of cookies) await (await fetch(`${c.url}/read`, { headers: { cookie } })).arrayBuffer()
      const stats = info(redis, 'stats')
      const mem = Number(info(redis, 'memory').used_memory)
      cost = table(`What tracking costs Redis with ${N} sessions cached on each of 3 nodes (CLIENT TRACKING BCAST)`,
        ['measure', 'value'], [
          ['tracking_total_keys (per-key tracking table entries)', stats.tracking_total_keys ?? '?'],
          ['tracking_total_prefixes', stats.tracking_total_prefixes ?? '?'],
          ['used_memory growth while the nodes cached every session (bytes)', String(mem - afterSessions)],
          ['used_memory per session stored (bytes, the sessions themselves)', fmt((afterSessions - Number(before.used_memory)) / N, 0)],
          ['invalidation messages per write', '3 (one per node, by design of BCAST)']
        ])
    } finally { await c.stop() }
    return `${reads}\n${cost}`
  } finally {
    redis.stop()
  }
}
