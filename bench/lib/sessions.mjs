// Shared by the session benchmarks: start an app process, mint session cookies through it,
// and measure a route with wrk while counting Redis commands and the app's CPU time.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { freePort, startProcess, waitForPort } from './proc.mjs'
import { wrk } from './load.mjs'
import { roundTrips } from './redis.mjs'

const here = fileURLToPath(new URL('..', import.meta.url))
const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString())

/** CPU time (user + system, all threads) a process has used so far, in µs. */
export function cpuOf (pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_US
}

/** Start `bench/apps/<file>` with PORT and extra env; resolves once it listens. */
export async function startBenchApp (file, env = {}) {
  const port = await freePort()
  const proc = startProcess(process.execPath, [`${here}apps/${file}`], { env: { ...env, PORT: String(port) } })
  try {
    await waitForPort(port, { timeoutMs: 20000 })
  } catch (err) {
    await proc.stop()
    throw new Error(`${file} did not start: ${proc.stderr}`, { cause: err })
  }
  return { url: `http://127.0.0.1:${port}`, pid: proc.child.pid, stop: () => proc.stop() }
}

/** Make `n` sessions by requesting `path` without a cookie; returns their `name=value` pairs. */
export async function mintCookies (url, n, { path = '/write', name } = {}) {
  const cookies = []
  for (let i = 0; i < n; i++) {
    const res = await fetch(url + path)
    await res.arrayBuffer()
    const set = res.headers.getSetCookie().map((l) => l.split(';')[0]).filter((c) => name === undefined || c.startsWith(name + '='))
    if (set.length === 0) throw new Error(`${url}${path} set no cookie`)
    cookies.push(set.join('; '))
  }
  return cookies
}

/** A wrk Lua script sending each request with the next cookie of the pool. */
export function cookieScript (cookies, method = 'GET', headers = {}) {
  const extra = Object.entries(headers).map(([k, v]) => `[${JSON.stringify(k)}] = ${JSON.stringify(v)}, `).join('')
  return `local cookies = { ${cookies.map((c) => JSON.stringify(c)).join(', ')} }
local i = 0
request = function()
  i = i + 1
  return wrk.format(${JSON.stringify(method)}, nil, { ${extra}Cookie = cookies[(i % #cookies) + 1] })
end
`
}

/**
 * Warm up, then measure `app`'s `route` with wrk -c50. With `redis`, Redis commands are counted
 * over the measured run only; with `app.pid`, so is the app's CPU time, which depends far
 * less than req/s on what the other processes of a shared machine are doing.
 * @returns {{ rps, p50, p99, requests, non2xx, socketErrors, cpuPerReq?, client?, inner? }}
 */
export async function measure (app, route, { duration, cookies, redis, connections = 50, headers = {} }) {
  const url = `${app.url}/${route}`
  // One cookie goes in a plain header (no per-request Lua in wrk); a pool needs the script.
  const single = cookies?.length === 1
  const script = cookies && !single ? cookieScript(cookies, 'GET', headers) : undefined
  const plain = single ? { ...headers, Cookie: cookies[0] } : (script ? {} : headers)
  await wrk(url, { duration: Math.min(2, duration), connections, script, headers: plain })
  redis?.resetStats()
  const cpu = app.pid === undefined ? undefined : cpuOf(app.pid)
  const r = await wrk(url, { duration, connections, script, headers: plain })
  const out = { ...r }
  if (cpu !== undefined) out.cpuPerReq = (cpuOf(app.pid) - cpu) / r.requests
  if (redis) {
    const rt = roundTrips(redis.commandStats())
    out.client = rt.client / r.requests
    out.inner = rt.inner / r.requests
  }
  return out
}

/** The run with the median req/s. */
export const median = (runs) => [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]

/** "min–max" req/s of a set of runs. */
export const spread = (runs, fmt) => `${fmt(Math.min(...runs.map((x) => x.rps)))}–${fmt(Math.max(...runs.map((x) => x.rps)))}`
