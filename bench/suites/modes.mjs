// Issue 4 benchmark: the price of each concurrency mode on a writing route of the Tether
// Fastify app, over 100 sessions cycled by a wrk Lua script and over one hot session.
import { startRedisServer } from '../lib/redis.mjs'
import { measure, mintCookies, startBenchApp } from '../lib/sessions.mjs'
import { fmt, table } from '../lib/table.mjs'

const SESSIONS = 100

export default async function (ctx) {
  const redis = await startRedisServer()
  const app = await startBenchApp('fastify-tether.mjs', { REDIS_URL: redis.url })
  try {
    const many = await mintCookies(app.url, SESSIONS)
    const hot = many.slice(0, 1)
    const rows = []
    for (const [mode, route] of [['merge (default), read-modify-write', 'write'], ['increment() (commutative)', 'incr'], ['lock mode', 'locked']]) {
      const spread = await measure(app, route, { duration: ctx.duration, cookies: many, redis })
      const single = await measure(app, route, { duration: ctx.duration, cookies: hot, redis })
      rows.push([mode, spread.rps, fmt(spread.p99, 2), fmt(spread.client, 2), single.rps, fmt(single.p99, 2), fmt(single.client, 2), spread.non2xx + single.non2xx])
    }
    return table('Concurrency modes on a writing route (wrk -c50)', ['mode', `req/s, ${SESSIONS} sessions`, 'p99 ms', 'round trips/req', 'req/s, one hot session', 'p99 ms', 'round trips/req', 'errors'], rows)
  } finally {
    await app.stop()
    redis.stop()
  }
}
