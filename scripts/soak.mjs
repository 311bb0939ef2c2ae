#!/usr/bin/env node
// `npm run soak` (never in CI): SOAK_REQUESTS (default 1,000,000) requests through the real
// balancer (its CLI, one process) to three counter-app processes on a private redis-server,
// from SOAK_CONNECTIONS (default 32) autocannon connections, each holding its own session
// (cookie jar of one session and its sticky cookie), alternating POST /api/visit (a write) and
// GET /api/state (a read). Every SOAK_SAMPLE_MS (default 5000) it samples the RSS and the
// open file descriptors of every process; at the end it prints the samples and how flat they
// were (growth from the first sample after warm-up to the last). Exit 1 when any process grew
// by more than SOAK_RSS_BOUND_MB (default 64) or SOAK_FD_BOUND (default 16) fds.
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const TOTAL = Number(process.env.SOAK_REQUESTS ?? 1_000_000)
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 32)
const SAMPLE_MS = Number(process.env.SOAK_SAMPLE_MS ?? 5000)
const RSS_BOUND_MB = Number(process.env.SOAK_RSS_BOUND_MB ?? 64)
const FD_BOUND = Number(process.env.SOAK_FD_BOUND ?? 16)
const SECRET = 'soak-secret-0123456789abcdef0123'

const children = []
function stopAll () {
  for (const c of children) { try { process.kill(c.pid, 'SIGKILL') } catch {} }
}
process.on('exit', stopAll)
process.on('SIGINT', () => process.exit(130))

const freePort = () => new Promise((resolve, reject) => {
  const srv = createServer()
  srv.on('error', reject)
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)) })
})

function get (url, options = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...options }, (res) => {
      let body = ''
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function until (what, check, ms = 60_000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    try { if (await check()) return } catch {}
    await sleep(100)
  }
  throw new Error(`soak: ${what} did not come up within ${ms} ms`)
}

function start (name, cmd, args, env = {}) {
  const { NODE_OPTIONS: _, ...base } = process.env
  const child = spawn(cmd, args, { env: { ...base, ...env }, stdio: ['ignore', 'ignore', 'inherit'] })
  child.name = name
  children.push(child)
  return child
}

function sample (child) {
  try {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
    const fds = readdirSync(`/proc/${child.pid}/fd`).length
    return { rss, fds }
  } catch { return { rss: NaN, fds: NaN } }
}

const dir = mkdtempSync(join(tmpdir(), 'tether-soak-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
const redisPort = await freePort()
start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'])
await until('redis-server', async () => (await new Promise((resolve) => {
  const s = createServer().listen(redisPort, '127.0.0.1', () => s.close(() => resolve(false))).on('error', () => resolve(true))
})))
const nodes = []
for (const name of ['node1', 'node2', 'node3']) {
  const port = await freePort()
  start(name, process.execPath, [join(root, 'examples/counter-app/dist/server.js'), '--port', String(port), '--host', '127.0.0.1', '--node-name', name, '--store', `redis://127.0.0.1:${redisPort}`], { SESSION_SECRET: SECRET, LOG_LEVEL: 'error', TRUST_PROXY: '127.0.0.1' })
  nodes.push(`http://127.0.0.1:${port}`)
}
for (const url of nodes) await until(url, async () => (await get(`${url}/health`)).status === 200)
const lbPort = await freePort()
start('balancer', process.execPath, [join(root, 'packages/balancer/dist/cli.js'), '--listen', `127.0.0.1:${lbPort}`, '--sticky-secret', SECRET, '--health-check', '/health', '--log-level', 'warn', '--workers', '1', ...nodes.flatMap((u) => ['--upstream', u])])
const base = `http://127.0.0.1:${lbPort}`
await until('the balancer', async () => (await get(`${base}/health`)).status === 200)

// One session per connection: made here, then carried by that connection's requests.
const cookies = []
for (let i = 0; i < CONNECTIONS; i++) {
  const res = await get(`${base}/api/visit`, { method: 'POST' })
  cookies.push((res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; '))
}

const samples = []
const takeSample = (done) => samples.push({ at: Date.now(), done, procs: children.map((c) => ({ name: c.name, ...sample(c) })) })
let done = 0
takeSample(0)
const sampler = setInterval(() => takeSample(done), SAMPLE_MS)
const t0 = Date.now()
let next = 0
const instance = autocannon({
  url: base,
  connections: CONNECTIONS,
  amount: TOTAL,
  timeout: 30,
  requests: [
    { method: 'POST', path: '/api/visit', setupRequest: (req, context) => { context.cookie ??= cookies[next++ % cookies.length]; return { ...req, headers: { ...req.headers, cookie: context.cookie } } } },
    { method: 'GET', path: '/api/state', setupRequest: (req, context) => ({ ...req, headers: { ...req.headers, cookie: context.cookie } }) }
  ]
})
instance.on('response', () => { done++ })
const result = await instance
clearInterval(sampler)
takeSample(done)
const seconds = (Date.now() - t0) / 1000

const names = children.map((c) => c.name)
console.log(`soak: ${result.requests.total} requests (${result['2xx']} 2xx, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts) in ${seconds.toFixed(0)} s over ${CONNECTIONS} connections with sessions; ${Math.round(result.requests.average)} req/s; latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`)
console.log(`statuses: ${Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => `${code}×${count}`).join(' ')}`)
console.log(['t (s)', 'requests', ...names.map((n) => `${n} RSS MB / fds`)].join('\t'))
// At most ~20 rows: every k-th sample, and always the last.
const stride = Math.max(1, Math.ceil(samples.length / 20))
for (const s of samples.filter((_, i) => i % stride === 0 || i === samples.length - 1)) console.log([((s.at - t0) / 1000).toFixed(0), s.done, ...s.procs.map((p) => `${p.rss.toFixed(1)} / ${p.fds}`)].join('\t'))
// Flatness: from the first sample past 10 % of the run (allocators and JITs warmed up) to the last.
const warm = samples.find((s) => s.done >= TOTAL * 0.1) ?? samples[0]
const last = samples.at(-1)
let flat = true
for (let i = 0; i < names.length; i++) {
  const a = warm.procs[i]
  const b = last.procs[i]
  const rss = b.rss - a.rss
  const fds = b.fds - a.fds
  const ok = rss <= RSS_BOUND_MB && fds <= FD_BOUND
  flat &&= ok
  console.log(`${names[i]}: RSS ${a.rss.toFixed(1)} -> ${b.rss.toFixed(1)} MB (${rss >= 0 ? '+' : ''}${rss.toFixed(1)}), fds ${a.fds} -> ${b.fds} (${fds >= 0 ? '+' : ''}${fds}) ${ok ? 'flat' : 'GREW'} (bounds: +${RSS_BOUND_MB} MB, +${FD_BOUND} fds)`)
}
stopAll()
process.exit(flat && result.errors === 0 ? 0 : 1)
