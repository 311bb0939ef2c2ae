// Issue 3 benchmark: Express 5 + @tether/middleware expressSession + RedisStore against the same
// app on express-session 1.19 + connect-redis 9 (node-redis), on one private Redis, in the
// same run. One session is created first and its cookie reused by every request (wrk -H).
import { startRedisServer, roundTrips } from '../lib/redis.mjs'
import { startBenchApp, mintCookies } from '../lib/sessions.mjs'
import { wrk } from '../lib/load.mjs'
import { fmt, table } from '../lib/table.mjs'

const PEER = 'express-session + connect-redis'
const apps = [
  ['plain Express (no session)', 'express-plain.mjs', ['read']],
  [PEER, 'express-session-peer.mjs', ['read', 'write']],
  ['Tether expressSession + RedisStore', 'express-tether.mjs', ['read', 'write']]
]

/** Warm up, then measure with wrk -c50, counting Redis commands over the measured run only. */
async function measure (url, { duration, cookie, redis }) {
  const headers = cookie === undefined ? {} : { Cookie: cookie }
  await wrk(url, { duration: Math.min(2, duration), connections: 50, headers })
  redis.resetStats()
  const r = await wrk(url, { duration, connections: 50, headers })
  const rt = roundTrips(redis.commandStats())
  return { ...r, client: rt.client / r.requests, inner: rt.inner / r.requests }
}

export default async function (ctx) {
  const redis = await startRedisServer()
  const results = new Map()
  const rows = []
  try {
    for (const [name, file, routes] of apps) {
      redis.flush()
      const app = await startBenchApp(file, { REDIS_URL: redis.url })
      try {
        const cookie = file === 'express-plain.mjs' ? undefined : (await mintCookies(app.url, 1))[0]
        for (const route of routes) {
          const r = await measure(`${app.url}/${route}`, { duration: ctx.duration, cookie, redis })
          results.set(`${name}:${route}`, r)
          rows.push({ name, route, r })
        }
      } finally { await app.stop() }
    }
  } finally {
    redis.stop()
  }
  const body = rows.map(({ name, route, r }) => {
    const peer = results.get(`${PEER}:${route}`)
    const ratio = name === PEER || name.startsWith('plain') || peer === undefined ? '–' : `${fmt(r.rps / peer.rps, 2)}×`
    const redisCols = name.startsWith('plain') ? ['–', '–'] : [fmt(r.client, 2), fmt(r.inner, 2)]
    return [name, route, r.rps, ratio, fmt(r.p50, 2), fmt(r.p99, 2), ...redisCols, r.non2xx + r.socketErrors]
  })
  return table('Express 5 sessions on Redis (wrk -c50, one session cookie via -H)',
    ['app', 'route', 'req/s', 'vs express-session', 'p50 ms', 'p99 ms', 'Redis commands/req (client)', 'commands inside scripts/req', 'errors'], body)
}
