// Issue 2 and 4 benchmarks: Fastify + @tether/middleware + RedisStore against the same app on
// @fastify/session + connect-redis 9 (node-redis), on one private Redis, in the same run.
import { startRedisServer } from '../lib/redis.mjs'
import { measure, mintCookies, startBenchApp } from '../lib/sessions.mjs'
import { fmt, table } from '../lib/table.mjs'

const SESSIONS = 100

export default async function (ctx) {
  const redis = await startRedisServer()
  const out = []
  try {
    const rows = []
    const res = {}
    const apps = [
      ['plain Fastify (no session)', 'fastify-plain.mjs', ['read'], {}],
      ['@fastify/session + connect-redis', 'fastify-session-peer.mjs', ['read', 'write'], {}],
      ['Tether fastifySession + RedisStore', 'fastify-tether.mjs', ['read', 'write'], {}],
      ['Tether, RedisStore on ioredis (the card\'s client)', 'fastify-tether.mjs', ['read', 'write'], { DRIVER: 'ioredis' }],
      ['Tether + stickyCache (behind tether-balancer)', 'fastify-tether.mjs', ['read', 'write'], { STICKY: '1' }]
    ]
    for (const [name, file, routes, env] of apps) {
      redis.flush()
      const app = await startBenchApp(file, { REDIS_URL: redis.url, ...env })
      try {
        // One session cookie, sent by wrk on every request (wrk -H), as the anchors were
        // measured; the concurrency table below also spreads the load over many sessions.
        const cookies = file === 'fastify-plain.mjs' ? undefined : await mintCookies(app.url, 1)
        const headers = env.STICKY === '1' ? { 'x-tether-route': 'sticky' } : {}
        for (const route of routes) {
          const r = await measure(`${app.url}/${route}`, { duration: ctx.duration, cookies, redis: cookies ? redis : undefined, headers })
          res[`${name}:${route}`] = r
          rows.push([name, route, r.rps, fmt(r.p50, 2), fmt(r.p99, 2), r.perReq ? fmt(r.perReq.client, 2) : '–', r.perReq ? fmt(r.perReq.inner, 2) : '–', r.non2xx + r.socketErrors])
        }
      } finally { await app.stop() }
    }
    for (const row of rows) {
      const route = row[1]
      const peer = res[`@fastify/session + connect-redis:${route}`]
      row.splice(3, 0, peer && row[0] !== '@fastify/session + connect-redis' && !row[0].startsWith('plain') ? `${fmt(row[2] / peer.rps, 2)}×` : '–')
    }
    out.push(table('Fastify sessions on Redis (wrk -c50, one session cookie)', ['app', 'route', 'req/s', 'vs @fastify/session', 'p50 ms', 'p99 ms', 'Redis round trips/req', 'commands inside scripts/req', 'errors'], rows))

    // Issue 4: the price of each concurrency mode on a writing route.
    redis.flush()
    const app = await startBenchApp('fastify-tether.mjs', { REDIS_URL: redis.url })
    try {
      const many = await mintCookies(app.url, SESSIONS)
      const hot = many.slice(0, 1)
      const modeRows = []
      for (const [mode, route] of [['merge (default), read-modify-write', 'write'], ['increment() (commutative)', 'incr'], ['lock mode', 'locked']]) {
        const spread = await measure(`${app.url}/${route}`, { duration: ctx.duration, cookies: many, redis })
        const single = await measure(`${app.url}/${route}`, { duration: ctx.duration, cookies: hot, redis })
        modeRows.push([mode, spread.rps, fmt(spread.p99, 2), fmt(spread.perReq.client, 2), single.rps, fmt(single.p99, 2), fmt(single.perReq.client, 2), spread.non2xx + single.non2xx])
      }
      out.push(table('Concurrency modes on a writing route (wrk -c50)', ['mode', `req/s, ${SESSIONS} sessions`, 'p99 ms', 'round trips/req', 'req/s, one hot session', 'p99 ms', 'round trips/req', 'errors'], modeRows))
    } finally { await app.stop() }
  } finally {
    redis.stop()
  }
  return out.join('\n')
}
