// Load generation with wrk (C, so it steals less CPU from the servers than a Node client on a
// 2-core machine). Every figure the benchmarks print comes from here.
import { execFile, execFileSync } from 'node:child_process'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Make sure wrk is installed (Debian package), installing it when missing. */
export function ensureWrk () {
  try { execFileSync('wrk', ['--version'], { stdio: 'ignore' }) } catch (err) {
    if (err.code !== 'ENOENT') return // wrk --version exits 1 but exists
    console.error('bench: installing wrk (apt-get)')
    execFileSync('bash', ['-c', 'apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)'], { stdio: 'inherit' })
  }
}

function toMs (value, unit) {
  const n = Number(value)
  switch (unit) {
    case 'us': return n / 1000
    case 'ms': return n
    case 's': return n * 1000
    case 'm': return n * 60000
    default: return n
  }
}

/** Parse wrk's --latency output into numbers. */
export function parseWrk (out) {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\b`, 'm').exec(out)
    return m ? toMs(m[1], m[2]) : NaN
  }
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN)
  return {
    rps,
    requests,
    p50: pct(50),
    p99: pct(99),
    non2xx,
    socketErrors: errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0
  }
}

/**
 * Run wrk against `url`.
 * @param {object} o
 * @param {number} [o.connections=50]
 * @param {number} [o.duration=10] seconds
 * @param {number} [o.threads=1]
 * @param {Record<string,string>} [o.headers]
 * @param {string} [o.method] and [o.body]: sent through a small wrk Lua script
 * @param {string} [o.script] a wrk Lua script of your own (overrides method/body)
 */
export function wrk (url, { connections = 50, duration = 10, threads = 1, headers = {}, method, body, script } = {}) {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${duration}s`, '--latency', '--timeout', '5s']
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`)
  if (!script && (method || body)) {
    script = `wrk.method = ${JSON.stringify(method ?? 'GET')}\n` + (body ? `wrk.body = ${JSON.stringify(body)}\n` : '')
  }
  if (script) {
    const dir = mkdtempSync(join(tmpdir(), 'tether-wrk-'))
    const file = join(dir, 'script.lua')
    writeFileSync(file, script)
    args.push('-s', file)
  }
  args.push(url)
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (duration + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk failed: ${err.message}\n${stderr}`))
      resolve({ ...parseWrk(stdout), raw: stdout })
    })
  })
}
