#!/usr/bin/env node
// A/B of two builds of tether-balancer on this machine, interleaved, for changes to the request
// path: `node bench/balancer-ab.mjs <other checkout> [rounds=5] [engine:sticky,...=h1:0,h1:1]`
// compares <other checkout>/packages/balancer/dist (built there first: `npx tsc -b
// packages/balancer`) with this checkout's. Each round runs each build once per scenario, the
// order alternating, wrk -c50 for 8 s after 2 s of warm-up; it prints the median req/s and the
// median balancer CPU µs per request (the steadier figure on a shared machine), with every
// round's CPU figure. Sticky cookies and health checks are on, as in the balancer suite.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, startProcess, stopAll, waitForPort } from './lib/proc.mjs'
import { ensureWrk, wrk } from './lib/load.mjs'
import { cpuSeconds, startTinyUpstreams } from './lib/peers.mjs'

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const [other, roundsArg = '5', scenariosArg = 'h1:0,h1:1'] = process.argv.slice(2)
if (other === undefined) { console.error('usage: node bench/balancer-ab.mjs <other checkout> [rounds] [engine:sticky,...]'); process.exit(2) }
const builds = { other: resolve(other), this: here }
const rounds = Number(roundsArg)
const scenarios = scenariosArg.split(',').map((x) => { const [engine, sticky] = x.split(':'); return { engine, sticky: sticky === '1' } })
const SECRET = 'bench-sticky-secret-0123456789'
ensureWrk()

const upstreams = await startTinyUpstreams(3)

async function startBalancer (root, engine) {
  const port = await freePort()
  const file = join(mkdtempSync(join(tmpdir(), 'tether-balancer-ab-')), 'balancer.yaml')
  writeFileSync(file, [
    `listen: 127.0.0.1:${port}`, `engine: ${engine}`,
    // One process (the CPU read is its own); a build from before `workers` has only one.
    ...(existsSync(join(root, 'packages/balancer/dist/cluster/primary.js')) ? ['workers: 1'] : []),
    'upstreams:',
    ...upstreams.map((u, i) => `  - { url: "${u}", name: "app-${i + 1}" }`),
    `sticky: { secret: "${SECRET}" }`, 'healthCheck: { path: /, interval: 2s, timeout: 1s }', 'log: { level: warn }', ''
  ].join('\n'))
  const proc = startProcess(process.execPath, [join(root, 'packages/balancer/dist/cli.js'), '--config', file])
  await waitForPort(port)
  return { url: `http://127.0.0.1:${port}`, pid: proc.child.pid, stop: () => proc.stop() }
}

const results = new Map()
for (let round = 0; round < rounds; round++) {
  for (const { engine, sticky } of scenarios) {
    for (const which of round % 2 === 0 ? ['other', 'this'] : ['this', 'other']) {
      const server = await startBalancer(builds[which], engine)
      const headers = {}
      if (sticky) {
        const res = await fetch(server.url)
        await res.arrayBuffer()
        headers.cookie = res.headers.getSetCookie()[0].split(';')[0]
      }
      await wrk(`${server.url}/`, { duration: 2, headers })
      const cpu0 = cpuSeconds(server.pid)
      const r = await wrk(`${server.url}/`, { duration: 8, headers })
      const us = ((cpuSeconds(server.pid) - cpu0) * 1e6) / r.requests
      await server.stop()
      const key = `${engine}, ${sticky ? 'sticky' : 'new'} clients | ${which === 'this' ? 'this checkout' : other}`
      if (!results.has(key)) results.set(key, [])
      results.get(key).push({ rps: r.rps, us })
    }
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log('| scenario | build | median req/s | median CPU µs/req | CPU µs/req, each round |\n|---|---|---|---|---|')
for (const [key, runs] of results) {
  console.log(`| ${key} | ${Math.round(median(runs.map((x) => x.rps)))} | ${median(runs.map((x) => x.us)).toFixed(1)} | ${runs.map((x) => x.us.toFixed(1)).join(' ')} |`)
}
await stopAll()
