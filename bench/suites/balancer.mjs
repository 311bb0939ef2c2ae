// Issue 5 benchmark: tether-balancer against nginx (one worker, upstream keep-alive), HAProxy
// (one thread), @fastify/reply-from, raw http-proxy, and the two minimal Node proxies the
// engine choice was measured against (undici Pool, node:http Agent), all in front of the same
// three local upstream processes with a tiny response, in the same run, wrk -c50.
//
// The balancer runs as its CLI with sticky cookies and active health checks on. Rounds are
// interleaved (every target once, then again) and each target's best round is reported, so a
// burst of noise from another process on this shared machine hits one round, not one target.
//
// Also measured: the ip-hash choice (weighted rendezvous hashing) against Maglev and modulo
// hashing: lookup speed and the share of clients moved when a node joins or leaves.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { performance } from 'node:perf_hooks'
import { freePort, startProcess, waitForPort } from '../lib/proc.mjs'
import { wrk } from '../lib/load.mjs'
import { cpuSeconds, groupCpuSeconds, startHaproxy, startNginx, startNodePeer, startTinyUpstreams } from '../lib/peers.mjs'
import { fmt, table } from '../lib/table.mjs'

const SECRET = 'bench-sticky-secret-0123456789'

async function startBalancer (root, upstreams, engine, workers = 1) {
  const dir = mkdtempSync(join(tmpdir(), 'tether-balancer-bench-'))
  const port = await freePort()
  const file = join(dir, 'balancer.yaml')
  writeFileSync(file, [
    `listen: 127.0.0.1:${port}`,
    `engine: ${engine}`,
    // One process by default, as the nginx and HAProxy peers here (and so that the CPU read is
    // its own); the cores table asks for more.
    `workers: ${workers}`,
    'algorithm: weighted-round-robin',
    'upstreams:',
    ...upstreams.map((u, i) => `  - { url: "${u}", name: "app-${i + 1}" }`),
    `sticky: { secret: "${SECRET}" }`,
    'healthCheck: { path: /, interval: 2s, timeout: 1s }',
    'log: { level: warn }',
    ''
  ].join('\n'))
  const proc = startProcess(process.execPath, [join(root, 'packages/balancer/dist/cli.js'), '--config', file])
  await waitForPort(port)
  return { url: `http://127.0.0.1:${port}`, pid: proc.child.pid, stop: () => proc.stop() }
}

/** A valid sticky cookie, as a returning browser would send it. */
async function stickyCookie (url) {
  const res = await fetch(url)
  await res.arrayBuffer()
  return res.headers.getSetCookie().find((c) => c.startsWith('tether_node='))?.split(';')[0]
}

/**
 * Interleaved rounds: each round starts every target in turn (the order rotated by `shift` a
 * round, so that no target always runs at the same moment), measures it with `run`, and stops
 * it; each target keeps its best result by req/s.
 */
async function bestOfRounds (targets, rounds, shift, run) {
  const best = new Map()
  for (let round = 0; round < rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round * shift) % targets.length])
    for (const target of order) {
      const server = await target.start()
      try {
        const r = await run(target, server)
        const prev = best.get(target)
        if (prev === undefined || r.rps > prev.rps) best.set(target, r)
      } finally {
        await server.stop()
      }
    }
  }
  return best
}

export default async function (ctx) {
  const { root, duration, quick } = ctx
  const rounds = quick ? 1 : 3
  const warmup = quick ? 1 : 2
  const upstreams = await startTinyUpstreams(3)

  const targets = [
    { name: 'nginx (1 worker, keepalive 64)', start: () => startNginx(upstreams), peer: 'nginx' },
    { name: 'HAProxy (nbthread 1)', start: () => startHaproxy(upstreams), peer: 'c' },
    { name: 'tether-balancer, h1 engine (default), new clients', start: () => startBalancer(root, upstreams, 'h1'), ours: true, main: true },
    { name: 'tether-balancer, h1 engine, sticky clients', start: () => startBalancer(root, upstreams, 'h1'), ours: true, sticky: true },
    { name: 'tether-balancer, undici engine', start: () => startBalancer(root, upstreams, 'undici'), ours: true },
    { name: 'tether-balancer, http-proxy engine', start: () => startBalancer(root, upstreams, 'http-proxy'), ours: true },
    { name: '@fastify/reply-from', start: () => startNodePeer('fastify-reply-from', upstreams), node: true },
    { name: 'http-proxy + keep-alive agent', start: () => startNodePeer('http-proxy', upstreams), node: true },
    // Not products: 30-line proxies without a single balancer feature, the engine-choice baselines.
    { name: 'minimal undici Pool proxy (no features)', start: () => startNodePeer('undici-pool', upstreams), reference: true },
    { name: 'minimal node:http Agent proxy (no features)', start: () => startNodePeer('node-agent', upstreams), reference: true }
  ]
  const best = await bestOfRounds(targets, rounds, 3, async (target, server) => {
    const headers = {}
    if (target.sticky) headers.cookie = await stickyCookie(server.url)
    await wrk(`${server.url}/`, { connections: 50, duration: warmup, headers })
    const cpu0 = cpuSeconds(server.pid)
    const r = await wrk(`${server.url}/`, { connections: 50, duration, headers })
    r.cpuUsPerReq = ((cpuSeconds(server.pid) - cpu0) * 1e6) / r.requests
    return r
  })

  const nginx = best.get(targets[0])
  const row = (target) => {
    const r = best.get(target)
    return [
      target.name, r.rps, fmt(r.p50, 2), fmt(r.p99, 2),
      `${fmt(r.rps / nginx.rps, 2)}×`, `${fmt(r.p99 / nginx.p99, 2)}×`, fmt(r.cpuUsPerReq, 1), r.non2xx + r.socketErrors
    ]
  }
  const columns = ['proxy', 'req/s', 'p50 ms', 'p99 ms', 'req/s vs nginx', 'p99 vs nginx', 'proxy CPU µs/req', 'errors']
  const out = [
    table(`Reverse proxies, 3 upstreams, tiny response (wrk -t1 -c50, ${duration} s, best of ${rounds})`, columns, targets.filter((x) => !x.reference).map(row)),
    table('Engine-choice baselines in the same run: minimal proxies with no balancer features', columns, targets.filter((x) => x.reference).map(row))
  ]

  const main = best.get(targets.find((x) => x.main))
  const fastestNode = Math.max(...targets.filter((x) => x.node).map((x) => best.get(x).rps))
  out.push([
    'Targets for the default engine (new clients, sticky cookies and health checks on):',
    `- ≥ 0.5× nginx req/s: ${fmt(main.rps / nginx.rps, 2)}× — ${main.rps >= 0.5 * nginx.rps ? 'met' : 'NOT met'}`,
    `- ahead of every Node peer: ${fmt(main.rps, 0)} vs best peer ${fmt(fastestNode, 0)} — ${main.rps > fastestNode ? 'met' : 'NOT met'}`,
    `- p99 ≤ 2× nginx: ${fmt(main.p99 / nginx.p99, 2)}× — ${main.p99 <= 2 * nginx.p99 ? 'met' : 'NOT met'}`,
    ''
  ].join('\n'))

  out.push(await cores(ctx, upstreams))
  out.push(await hashing(root))
  return out.join('\n')
}

// ---- every core ----------------------------------------------------------------------------

/** True when this build's CLI takes `--workers` (issue 12). */
function hasWorkers (root) {
  try {
    return execFileSync(process.execPath, [join(root, 'packages/balancer/dist/cli.js'), '--help'], { encoding: 'utf8' }).includes('--workers')
  } catch (err) {
    return String(err.stdout ?? '').includes('--workers')
  }
}

/**
 * The same proxies at 1 and 2 cores: nginx `worker_processes N`, HAProxy `nbthread N`,
 * tether-balancer `--workers N`, in front of the same upstreams, wrk with 2 threads and 100
 * connections so that the client is not what limits 2 workers. CPU is the whole process
 * group's (master and workers). Interleaved rounds, best of each, as above.
 */
async function cores (ctx, upstreams) {
  const { root, duration, quick } = ctx
  if (!hasWorkers(root)) return '(tether-balancer has no --workers in this build: the cores table is skipped)\n'
  const rounds = quick ? 1 : 3
  const targets = []
  for (const n of [1, 2]) {
    targets.push({ n, name: `nginx, worker_processes ${n}`, start: () => startNginx(upstreams, { workers: n }), nginx: true })
    targets.push({ n, name: `HAProxy, nbthread ${n}`, start: () => startHaproxy(upstreams, { threads: n }) })
    targets.push({ n, name: `tether-balancer, --workers ${n}`, start: () => startBalancer(root, upstreams, 'h1', n), ours: true })
  }
  const best = await bestOfRounds(targets, rounds, 2, async (_target, server) => {
    await wrk(`${server.url}/`, { connections: 100, threads: 2, duration: quick ? 1 : 2 })
    const cpu0 = groupCpuSeconds(server.pid)
    const r = await wrk(`${server.url}/`, { connections: 100, threads: 2, duration })
    r.cpuUsPerReq = ((groupCpuSeconds(server.pid) - cpu0) * 1e6) / r.requests
    return r
  })
  const rows = targets.map((target) => {
    const r = best.get(target)
    const nginx = best.get(targets.find((x) => x.nginx && x.n === target.n))
    const one = best.get(targets.find((x) => x.name.replace(/\d+$/, '') === target.name.replace(/\d+$/, '') && x.n === 1))
    return [target.name, r.rps, fmt(r.p50, 2), fmt(r.p99, 2), `${fmt(r.rps / nginx.rps, 2)}×`, `${fmt(r.p99 / nginx.p99, 2)}×`, `${fmt(r.rps / one.rps, 2)}×`, fmt(r.cpuUsPerReq, 1), r.non2xx + r.socketErrors]
  })
  const ours = (n) => best.get(targets.find((x) => x.ours && x.n === n))
  const nginx2 = best.get(targets.find((x) => x.nginx && x.n === 2))
  return [
    table(`Every core: the same proxies at 1 and 2 cores (wrk -t2 -c100, ${duration} s, best of ${rounds}; this machine has ${os.cpus().length} cores shared with wrk and the 3 upstreams)`,
      ['proxy', 'req/s', 'p50 ms', 'p99 ms', 'req/s vs nginx (same cores)', 'p99 vs nginx', 'vs its own 1 core', 'CPU µs/req (all processes)', 'errors'], rows),
    [
      `- tether-balancer --workers 2 vs nginx worker_processes 2: ${fmt(ours(2).rps / nginx2.rps, 2)}× req/s (floor 0.7×: ${ours(2).rps >= 0.7 * nginx2.rps ? 'met' : 'NOT met'}), p99 ${fmt(ours(2).p99 / nginx2.p99, 2)}× (floor ≤ 2×: ${ours(2).p99 <= 2 * nginx2.p99 ? 'met' : 'NOT met'})`,
      ''
    ].join('\n')
  ].join('\n')
}

// ---- consistent hashing -------------------------------------------------------------------

function maglevTable (names, size = 65537) {
  // Maglev (Eisenbud et al., NSDI 2016), equal weights: each node walks its own permutation of
  // the table and claims the next free slot in turn.
  const h = (s, seed) => { let x = seed; for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 0x01000193); return x >>> 0 }
  const offset = names.map((n) => h(n, 0x811c9dc5) % size)
  const skip = names.map((n) => (h(n, 0x9747b28c) % (size - 1)) + 1)
  const next = names.map(() => 0)
  const table = new Int32Array(size).fill(-1)
  let filled = 0
  while (filled < size) {
    for (let i = 0; i < names.length && filled < size; i++) {
      let c = (offset[i] + next[i] * skip[i]) % size
      while (table[c] >= 0) { next[i]++; c = (offset[i] + next[i] * skip[i]) % size }
      table[c] = i
      next[i]++
      filled++
    }
  }
  return (key) => names[table[h(key, 0x811c9dc5) % size]]
}

function keys (count) {
  let x = 7
  return Array.from({ length: count }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`
  })
}

async function hashing (root) {
  const { IpHash } = await import(pathToFileURL(join(root, 'packages/balancer/dist/index.js')).href)
  const names = (n) => Array.from({ length: n }, (_, i) => `app-${i + 1}`)
  const rendezvous = (list) => {
    const alg = new IpHash()
    alg.reset(list.map((name) => ({ name, weight: 1, active: 0 })))
    return (key) => alg.pick({ clientKey: key }).name
  }
  const modulo = (list) => (key) => {
    let x = 0x811c9dc5
    for (let i = 0; i < key.length; i++) x = Math.imul(x ^ key.charCodeAt(i), 0x01000193)
    return list[(x >>> 0) % list.length]
  }
  const schemes = [['weighted rendezvous (ours)', rendezvous], ['Maglev, M = 65537', maglevTable], ['modulo', modulo]]
  const sample = keys(100_000)
  const moved = (make, before, after) => {
    const a = make(before)
    const b = make(after)
    let n = 0
    for (const k of sample) if (a(k) !== b(k)) n++
    return n / sample.length
  }
  const lookupNs = (pick) => {
    let sink = 0
    for (let i = 0; i < 200_000; i++) sink += pick(sample[i % sample.length]).length // warm up the JIT
    const t0 = performance.now()
    for (let i = 0; i < 1_000_000; i++) sink += pick(sample[i % sample.length]).length
    const ns = ((performance.now() - t0) * 1e6) / 1_000_000
    return sink > 0 ? ns : NaN
  }
  const rows = schemes.map(([name, make]) => [
    name,
    fmt(lookupNs(make(names(3))), 0),
    fmt(lookupNs(make(names(10))), 0),
    fmt(lookupNs(make(names(100))), 0),
    `${fmt(moved(make, names(10), names(11)) * 100, 1)} %`,
    `${fmt(moved(make, names(10), names(10).filter((n) => n !== 'app-4')) * 100, 1)} %`
  ])
  return table('ip-hash: lookup cost and clients moved (100,000 client addresses; ideal: 9.1 % on add, 10.0 % on remove)', ['scheme', 'ns/lookup, 3 nodes', '10 nodes', '100 nodes', 'moved, 10 → 11 nodes', 'moved, 10 → 9 nodes'], rows)
}
