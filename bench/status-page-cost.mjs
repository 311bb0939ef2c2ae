#!/usr/bin/env node
// What an open status page costs the data path: `node bench/status-page-cost.mjs [rounds=5]`.
// One tether-balancer (this checkout's build, sticky cookies, health checks, the admin API on)
// in front of three tiny upstreams; each round runs wrk -c50 for 8 s after 2 s of warm-up
// twice, once with nobody on the admin port and once with a poller doing what the open page
// does (GET api/stats?since=… and api/nodes every 2 s, plus the page itself every 10 s), the
// order alternating. Prints the median req/s and the balancer's median CPU µs per request.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, startProcess, stopAll, waitForPort } from './lib/proc.mjs'
import { ensureWrk, wrk } from './lib/load.mjs'
import { cpuSeconds, startTinyUpstreams } from './lib/peers.mjs'

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const rounds = Number(process.argv[2] ?? 5)
ensureWrk()

const upstreams = await startTinyUpstreams(3)
const port = await freePort()
const admin = await freePort()
const file = join(mkdtempSync(join(tmpdir(), 'tether-status-cost-')), 'balancer.yaml')
writeFileSync(file, [
  `listen: 127.0.0.1:${port}`, 'workers: 1', 'upstreams:',
  ...upstreams.map((u, i) => `  - { url: "${u}", name: "app-${i + 1}" }`),
  'sticky: { secret: "bench-sticky-secret-0123456789" }', 'healthCheck: { path: /, interval: 2s, timeout: 1s }',
  `admin: { listen: ${admin} }`, 'log: { level: warn }', ''
].join('\n'))
const balancer = startProcess(process.execPath, [join(here, 'packages/balancer/dist/cli.js'), '--config', file])
await waitForPort(port)
await waitForPort(admin)
const url = `http://127.0.0.1:${port}/`
const adminUrl = `http://127.0.0.1:${admin}/`

/** What the open page asks for: stats and nodes every 2 s, the page every 10 s. */
function startPoller () {
  let since = null
  let ticks = 0
  const tick = async () => {
    const stats = await (await fetch(`${adminUrl}api/stats${since === null ? '' : `?since=${since}`}`)).json()
    since = stats.now
    await (await fetch(`${adminUrl}api/nodes`)).arrayBuffer()
    if (ticks++ % 5 === 0) await (await fetch(adminUrl)).arrayBuffer()
  }
  tick().catch(() => {})
  const timer = setInterval(() => { tick().catch(() => {}) }, 2000)
  return () => clearInterval(timer)
}

const results = { closed: [], open: [] }
for (let round = 0; round < rounds; round++) {
  for (const which of round % 2 === 0 ? ['closed', 'open'] : ['open', 'closed']) {
    const stop = which === 'open' ? startPoller() : () => {}
    await wrk(url, { duration: 2 })
    const cpu0 = cpuSeconds(balancer.child.pid)
    const r = await wrk(url, { duration: 8 })
    const us = ((cpuSeconds(balancer.child.pid) - cpu0) * 1e6) / r.requests
    stop()
    results[which].push({ rps: r.rps, us })
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log('| status page | median req/s | median balancer CPU µs/req | CPU µs/req, each round |\n|---|---|---|---|')
for (const [which, runs] of Object.entries(results)) {
  console.log(`| ${which} | ${Math.round(median(runs.map((x) => x.rps)))} | ${median(runs.map((x) => x.us)).toFixed(1)} | ${runs.map((x) => x.us.toFixed(1)).join(' ')} |`)
}
await stopAll()
