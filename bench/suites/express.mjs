// Issue 3 benchmark: Express 5 + @tether/middleware expressSession + RedisStore against the same
// app on express-session 1.19 + connect-redis 9 (node-redis), on one private Redis, in the
// same run. One session is created first and its cookie reused by every request (wrk -H).
// The apps take turns over several rounds and each figure is the median of its rounds, so a
// burst of load from elsewhere on a shared machine skews one round, not the comparison.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { startRedisServer, roundTrips } from '../lib/redis.mjs'
import { mintCookies } from '../lib/sessions.mjs'
import { freePort, startProcess, waitForPort } from '../lib/proc.mjs'
import { wrk } from '../lib/load.mjs'
import { fmt, table } from '../lib/table.mjs'

const PEER = 'express-session + connect-redis'
const PLAIN = 'plain Express (no session): the ceiling'
const apps = [
  [PLAIN, 'express-plain.mjs', ['read']],
  [PEER, 'express-session-peer.mjs', ['read', 'write']],
  ['Tether expressSession + RedisStore', 'express-tether.mjs', ['read', 'write']],
  // Behind tether-balancer: wrk plays the balancer's part by sending its route header.
  ['Tether + stickyCache (behind tether-balancer)', 'express-tether.mjs', ['read', 'write'], { STICKY: '1' }]
]

const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString())

/** CPU time (user + system, all threads) a process has used so far, in µs. */
function cpuOf (pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_US
}

/** Start `bench/apps/<file>`; resolves once it listens. */
async function startApp (file, env) {
  const port = await freePort()
  const proc = startProcess(process.execPath, [fileURLToPath(new URL(`../apps/${file}`, import.meta.url))], { env: { ...env, PORT: String(port) } })
  try {
    await waitForPort(port, { timeoutMs: 20000 })
  } catch (err) {
    await proc.stop()
    throw new Error(`${file} did not start: ${proc.stderr}`, { cause: err })
  }
  return { url: `http://127.0.0.1:${port}`, pid: proc.child.pid, stop: () => proc.stop() }
}

/**
 * Warm up, then measure with wrk -c50, counting Redis commands and the app's CPU time over the
 * measured run only. CPU per request depends far less than req/s on what the other processes
 * of a shared machine are doing.
 */
async function measure (app, route, { duration, cookie, redis, sticky }) {
  const url = `${app.url}/${route}`
  const headers = cookie === undefined ? {} : { Cookie: cookie, ...(sticky ? { 'x-tether-route': 'sticky' } : {}) }
  await wrk(url, { duration: Math.min(2, duration), connections: 50, headers })
  redis.resetStats()
  const cpu = cpuOf(app.pid)
  const r = await wrk(url, { duration, connections: 50, headers })
  const cpuPerReq = (cpuOf(app.pid) - cpu) / r.requests
  const rt = roundTrips(redis.commandStats())
  return { ...r, cpuPerReq, client: rt.client / r.requests, inner: rt.inner / r.requests }
}

const median = (runs) => [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]

export default async function (ctx) {
  const rounds = ctx.quick ? 1 : 3
  const redis = await startRedisServer()
  const runs = new Map()
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [name, file, routes, env = {}] of apps) {
        redis.flush()
        const app = await startApp(file, { REDIS_URL: redis.url, ...env })
        try {
          const cookie = name === PLAIN ? undefined : (await mintCookies(app.url, 1))[0]
          for (const route of routes) {
            const key = `${name}\n${route}`
            runs.set(key, [...(runs.get(key) ?? []), await measure(app, route, { duration: ctx.duration, cookie, redis, sticky: env.STICKY === '1' })])
          }
        } finally { await app.stop() }
      }
    }
  } finally {
    redis.stop()
  }
  const body = [...runs].map(([key, all]) => {
    const [name, route] = key.split('\n')
    const r = median(all)
    const peer = runs.get(`${PEER}\n${route}`)
    const ratio = name === PEER || name === PLAIN || peer === undefined ? '–' : `${fmt(r.rps / median(peer).rps, 2)}×`
    const spread = `${fmt(Math.min(...all.map((x) => x.rps)))}–${fmt(Math.max(...all.map((x) => x.rps)))}`
    const redisCols = name === PLAIN ? ['–', '–'] : [fmt(r.client, 2), fmt(r.inner, 2)]
    return [name, route, r.rps, spread, ratio, fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.cpuPerReq, 0), ...redisCols, all.reduce((n, x) => n + x.non2xx + x.socketErrors, 0)]
  })
  return table(`Express 5 sessions on Redis (wrk -c50, one session cookie via -H, median of ${rounds} round${rounds > 1 ? 's' : ''})`,
    ['app', 'route', 'req/s', `req/s over ${rounds} round${rounds > 1 ? 's' : ''}`, 'vs express-session', 'p50 ms', 'p99 ms', 'app CPU µs/req', 'Redis commands/req (client)', 'commands inside scripts/req', 'errors'], body)
}
