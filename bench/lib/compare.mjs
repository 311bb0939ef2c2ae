// The session suites' method: apps take turns over several rounds (a burst of load from
// elsewhere on a shared machine skews one round, not the comparison), each figure is the
// median of its rounds, and ratios are against the peer measured in the same run.
import { measure, median, mintCookies, spread, startBenchApp } from './sessions.mjs'
import { fmt, table } from './table.mjs'

/**
 * @param {object} o
 * @param {Array<[name: string, file: string, routes: string[], env?: Record<string,string>]>} o.apps
 * @param {string} o.peer the name of the app the ratios are against
 * @param {string} o.plain the name of the app without sessions (no cookie, no Redis counts)
 * @param {{ url: string, flush(): void }} o.redis
 * @param {number} o.rounds
 * @param {number} o.duration
 * @param {string} o.title
 */
export async function compareApps ({ apps, peer, plain, redis, rounds, duration, title }) {
  const runs = new Map()
  for (let round = 0; round < rounds; round++) {
    // Rotate who goes first, so no app always measures right after the same neighbour.
    const order = apps.map((_, i) => apps[(i + round) % apps.length])
    for (const [name, file, routes, env = {}] of order) {
      redis.flush()
      const app = await startBenchApp(file, { REDIS_URL: redis.url, ...env })
      try {
        const cookies = name === plain ? undefined : await mintCookies(app.url, 1)
        // The near-cache needs no route header: it is correct under any routing.
        const headers = {}
        for (const route of routes) {
          const key = `${name}\n${route}`
          runs.set(key, [...(runs.get(key) ?? []), await measure(app, route, { duration, cookies, redis: cookies ? redis : undefined, headers })])
        }
      } finally { await app.stop() }
    }
  }
  const ordered = apps.flatMap(([name, , routes]) => routes.map((route) => `${name}\n${route}`))
  const body = ordered.map((key) => {
    const all = runs.get(key)
    const [name, route] = key.split('\n')
    const r = median(all)
    const peerRuns = runs.get(`${peer}\n${route}`)
    const ratio = name === peer || name === plain || peerRuns === undefined ? '–' : `${fmt(r.rps / median(peerRuns).rps, 2)}×`
    const redisCols = name === plain ? ['–', '–'] : [fmt(r.client, 2), fmt(r.inner, 2)]
    return [name, route, r.rps, spread(all, fmt), ratio, fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.cpuPerReq, 0), ...redisCols, all.reduce((n, x) => n + x.non2xx + x.socketErrors, 0)]
  })
  const r = `${rounds} round${rounds > 1 ? 's' : ''}`
  return table(`${title} (wrk -c50, one session cookie via -H, median of ${r})`,
    ['app', 'route', 'req/s', `req/s over ${r}`, `vs ${peer}`, 'p50 ms', 'p99 ms', 'app CPU µs/req', 'Redis round trips/req', 'commands inside scripts/req', 'errors'], body)
}
