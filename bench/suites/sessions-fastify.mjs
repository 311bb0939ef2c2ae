// Issue 2 and 4 benchmarks: Fastify + @tether/middleware + RedisStore against the same app on
// @fastify/session + connect-redis 9 (node-redis), on one private Redis, in the same run.
import { compareApps } from '../lib/compare.mjs'
import { startRedisServer } from '../lib/redis.mjs'
import { measure, mintCookies, startBenchApp } from '../lib/sessions.mjs'
import { fmt, table } from '../lib/table.mjs'

const SESSIONS = 100
const PEER = '@fastify/session + connect-redis'
const PLAIN = 'plain Fastify (no session)'

export default async function (ctx) {
  const redis = await startRedisServer()
  const out = []
  try {
    out.push(await compareApps({
      title: 'Fastify sessions on Redis',
      peer: PEER,
      plain: PLAIN,
      redis,
      rounds: ctx.quick ? 1 : 3,
      duration: ctx.duration,
      apps: [
        [PLAIN, 'fastify-plain.mjs', ['read']],
        [PEER, 'fastify-session-peer.mjs', ['read', 'write']],
        ['Tether fastifySession + RedisStore', 'fastify-tether.mjs', ['read', 'write']],
        ['Tether, RedisStore on ioredis (the card\'s client)', 'fastify-tether.mjs', ['read', 'write'], { DRIVER: 'ioredis' }],
        ['Tether + stickyCache (behind tether-balancer)', 'fastify-tether.mjs', ['read', 'write'], { STICKY: '1' }]
      ]
    }))

    // Issue 4: the price of each concurrency mode on a writing route.
    redis.flush()
    const app = await startBenchApp('fastify-tether.mjs', { REDIS_URL: redis.url })
    try {
      const many = await mintCookies(app.url, SESSIONS)
      const hot = many.slice(0, 1)
      const modeRows = []
      for (const [mode, route] of [['merge (default), read-modify-write', 'write'], ['increment() (commutative)', 'incr'], ['lock mode', 'locked']]) {
        const spread = await measure(app, route, { duration: ctx.duration, cookies: many, redis })
        const single = await measure(app, route, { duration: ctx.duration, cookies: hot, redis })
        modeRows.push([mode, spread.rps, fmt(spread.p99, 2), fmt(spread.client, 2), single.rps, fmt(single.p99, 2), fmt(single.client, 2), spread.non2xx + single.non2xx])
      }
      out.push(table('Concurrency modes on a writing route (wrk -c50)', ['mode', `req/s, ${SESSIONS} sessions`, 'p99 ms', 'round trips/req', 'req/s, one hot session', 'p99 ms', 'round trips/req', 'errors'], modeRows))
    } finally { await app.stop() }
  } finally {
    redis.stop()
  }
  return out.join('\n')
}
