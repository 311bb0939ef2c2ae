// Shared by the session benchmarks: start an app process, mint session cookies through it,
// and run wrk over a pool of sessions while counting Redis commands.
import { fileURLToPath } from 'node:url'
import { freePort, startProcess, waitForPort } from './proc.mjs'
import { wrk } from './load.mjs'
import { roundTrips } from './redis.mjs'

const here = fileURLToPath(new URL('..', import.meta.url))

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
  return { url: `http://127.0.0.1:${port}`, stop: () => proc.stop() }
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
 * Warm up, then measure `url` with wrk; with `redis`, also count Redis commands per request.
 * @returns {{ rps:number, p50:number, p99:number, perReq?: {client:number, inner:number}, non2xx:number }}
 */
export async function measure (url, { duration, cookies, redis, connections = 50, method = 'GET', headers = {} }) {
  // One cookie goes in a plain header (no per-request Lua in wrk); a pool needs the script.
  const single = cookies?.length === 1 && method === 'GET'
  const script = cookies && !single ? cookieScript(cookies, method, headers) : undefined
  const plain = single ? { ...headers, Cookie: cookies[0] } : (script ? {} : headers)
  await wrk(url, { duration: Math.min(2, duration), connections, script, headers: plain })
  redis?.resetStats()
  const r = await wrk(url, { duration, connections, script, headers: plain })
  const out = { ...r }
  if (redis) {
    const rt = roundTrips(redis.commandStats())
    out.perReq = { client: rt.client / r.requests, inner: rt.inner / r.requests }
  }
  return out
}
