// Issue 12's overload scenario: three nodes behind tether-balancer, one of them slow (a 200 ms
// handler with a pool of 10 workers, so 50 req/s at most, as a PHP-FPM or servlet pool is),
// and 500 concurrent users with sticky cookies, each sending a request, waiting 500 ms, and
// sending again; a user gives up on a request after 2 s. The users get their cookies while every
// node is fast (a third of them on each), then the node turns slow: its users are held there.
// Run twice in the same run: without a cap, and with `maxConn: 10` on the slow node and a small
// queue (20 waiting, 500 ms at most). The fast nodes have no cap: a cap is sized per node.
//
// What it shows: with the cap the slow node never holds more than 10 requests and its excess
// users get fast 503s with Retry-After instead of 2 s timeouts; without it the slow node's own
// queue grows to every user held there and their requests time out. The fast nodes' users are
// measured apart: their p99 is what "unaffected" means here.
import { mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, startProcess, waitForPort } from '../lib/proc.mjs'
import { startTinyUpstream } from '../lib/peers.mjs'
import { fmt, table } from '../lib/table.mjs'

const SECRET = 'bench-sticky-secret-0123456789'
const USERS = 500
const THINK_MS = 500
const GIVE_UP_MS = 2000

async function startBalancer (root, upstreams, capped) {
  const dir = mkdtempSync(join(tmpdir(), 'tether-overload-bench-'))
  const port = await freePort()
  const file = join(dir, 'balancer.yaml')
  writeFileSync(file, [
    `listen: 127.0.0.1:${port}`,
    'algorithm: weighted-round-robin',
    'upstreams:',
    ...upstreams.map((u) => `  - { url: "${u.url}", name: "${u.name}"${capped && u.name === 'slow' ? ', maxConn: 10' : ''} }`),
    `sticky: { secret: "${SECRET}" }`,
    ...(capped ? ['queue: { size: 20, timeout: 500ms }'] : []),
    'healthCheck: { path: /__health, interval: 2s, timeout: 1s }',
    // One process: maxConn is then the slow node's whole cap, not a share per worker.
    'workers: 1',
    'log: { level: error }',
    ''
  ].join('\n'))
  const proc = startProcess(process.execPath, [join(root, 'packages/balancer/dist/cli.js'), '--config', file])
  await waitForPort(port)
  return { url: `http://127.0.0.1:${port}`, stop: () => proc.stop() }
}

function send (agent, url, cookie) {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const req = http.get(url, { agent, headers: cookie === undefined ? {} : { cookie } }, (res) => {
      res.resume()
      res.on('end', () => resolve({
        status: res.statusCode,
        ms: performance.now() - t0,
        node: res.headers['x-node'],
        retryAfter: res.headers['retry-after'],
        cookie: res.headers['set-cookie']?.find((c) => c.startsWith('tether_node='))?.split(';')[0]
      }))
      res.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }))
    })
    req.setTimeout(GIVE_UP_MS, () => { req.destroy(); resolve({ status: 'timeout', ms: performance.now() - t0 }) })
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }))
  })
}

function pct (xs, p) {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]
}

async function scenario (root, capped, seconds) {
  const upstreams = [
    { name: 'fast-1', url: await startTinyUpstream({ NAME: 'fast-1' }) },
    { name: 'slow', url: await startTinyUpstream({ NAME: 'slow', DELAY_MS: '200', WORKERS: '10' }) },
    { name: 'fast-2', url: await startTinyUpstream({ NAME: 'fast-2' }) }
  ]
  const balancer = await startBalancer(root, upstreams, capped)
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
  const records = []
  // Every user gets its sticky cookie (and so its node) while all nodes are fast, 50 at a time.
  const users = []
  for (let i = 0; i < USERS; i += 50) {
    users.push(...await Promise.all(Array.from({ length: Math.min(50, USERS - i) }, async () => {
      const r = await send(agent, `${balancer.url}/`)
      return { home: r.node, cookie: r.cookie }
    })))
  }
  if (users.some((u) => u.cookie === undefined)) throw new Error('a user got no sticky cookie')
  await fetch(`${upstreams[1].url}/__slow`, { method: 'POST' })
  const deadline = Date.now() + seconds * 1000
  const user = async ({ home, cookie }, i) => {
    await sleep((i % 50) * 10) // spread the first requests over 0.5 s
    while (Date.now() < deadline) {
      const r = await send(agent, `${balancer.url}/`, cookie)
      records.push({ home, ...r })
      await sleep(THINK_MS)
    }
  }
  await Promise.all(users.map(user))
  agent.destroy()
  const slowStats = await (await fetch(`${upstreams[1].url}/__stats`)).json()
  await balancer.stop()
  const of = (slow) => records.filter((r) => (r.home === 'slow') === slow)
  const summary = (rs) => {
    const ok = rs.filter((r) => r.status === 200)
    const refused = rs.filter((r) => r.status === 503)
    return {
      requests: rs.length,
      ok: ok.length,
      okP50: pct(ok.map((r) => r.ms), 0.5),
      okP99: pct(ok.map((r) => r.ms), 0.99),
      refused: refused.length,
      refusedP99: pct(refused.map((r) => r.ms), 0.99),
      retryAfter: refused.length > 0 && refused.every((r) => r.retryAfter !== undefined),
      timeouts: rs.filter((r) => r.status === 'timeout').length,
      other: rs.filter((r) => r.status !== 200 && r.status !== 503 && r.status !== 'timeout').length
    }
  }
  return { slow: summary(of(true)), fast: summary(of(false)), maxInFlight: slowStats.maxInFlight, slowUsers: users.filter((u) => u.home === 'slow').length }
}

export default async function (ctx) {
  const seconds = ctx.quick ? 6 : 15
  const rows = []
  const results = []
  for (const capped of [false, true]) {
    const r = await scenario(ctx.root, capped, seconds)
    results.push(r)
    const label = capped ? 'maxConn 10, queue 20 / 500 ms' : 'no cap'
    rows.push([label, `${r.slowUsers} held on the slow node`, r.slow.requests, r.slow.ok, fmt(r.slow.okP50, 0), fmt(r.slow.okP99, 0), r.slow.refused, fmt(r.slow.refusedP99, 1), r.slow.timeouts, r.slow.other, r.maxInFlight])
    rows.push([label, `${USERS - r.slowUsers} on the fast nodes`, r.fast.requests, r.fast.ok, fmt(r.fast.okP50, 1), fmt(r.fast.okP99, 1), r.fast.refused, fmt(r.fast.refusedP99, 1), r.fast.timeouts, r.fast.other, ''])
  }
  const [open, capped] = results
  return [
    table(`Overload: 500 sticky users (think 500 ms, give up after 2 s), one node slow (200 ms, 10 workers: 50 req/s), ${seconds} s each`,
      ['balancer', 'users', 'requests', '200', 'p50 ms', 'p99 ms', '503', '503 p99 ms', 'gave up (2 s)', 'other', 'slow node: most in flight'], rows),
    [
      `- With the cap the slow node held at most ${capped.maxInFlight} requests (without: ${open.maxInFlight}).`,
      `- Its excess users got ${capped.slow.refused} fast 503s (p99 ${fmt(capped.slow.refusedP99, 1)} ms${capped.slow.retryAfter ? ', every one with Retry-After' : ''}) and ${capped.slow.timeouts} timeouts, against ${open.slow.timeouts} timeouts without the cap.`,
      `- The fast nodes' users: p99 ${fmt(capped.fast.okP99, 1)} ms with the cap, ${fmt(open.fast.okP99, 1)} ms without.`,
      ''
    ].join('\n')
  ].join('\n')
}
