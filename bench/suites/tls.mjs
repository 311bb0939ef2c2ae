// Issue 13 benchmark: TLS termination. tether-balancer against nginx (1 worker) and HAProxy
// (nbthread 1), each terminating TLS 1.3 with the same ECDSA P-256 certificate in front of the
// same three tiny upstreams (plain HTTP/1.1, kept alive), in the same run:
//
// - kept-alive HTTP/1.1 over TLS: wrk -c50 (BENCH_CORES threads) on an https:// URL;
// - h2: h2load -c10 -m10 (BENCH_CORES threads) (10 connections, 10 streams each);
// - new connections: rounds of h2load --h1 -c50 -n50 (50 new connections, one full TLS 1.3
//   handshake and one request each, no session resumption), repeated for the duration; the
//   rate is connections per second of h2load's own measured time.
//
// Rounds are interleaved and each target's best is kept, as in balancer.mjs. The same number
// of cores each: BENCH_CORES (default 2, this machine's count) nginx workers, HAProxy threads
// and tether-balancer workers, wrk and h2load with as many threads; CPU is the whole process
// group's (master and workers).
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startProcess, waitForPort } from '../lib/proc.mjs'
import { wrk } from '../lib/load.mjs'
import { ensureCommand, groupCpuSeconds, startHaproxy, startNginx, startTinyUpstreams } from '../lib/peers.mjs'
import { fmt, table } from '../lib/table.mjs'

/** A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost. */
function makeCertificate () {
  const dir = mkdtempSync(join(tmpdir(), 'tether-tls-bench-'))
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'
  ], { stdio: 'ignore' })
  return { cert, key }
}

const CORES = Number(process.env.BENCH_CORES ?? 2)

async function startBalancer (root, upstreams, tls) {
  const dir = mkdtempSync(join(tmpdir(), 'tether-balancer-tls-bench-'))
  const port = await freePort()
  const file = join(dir, 'balancer.yaml')
  writeFileSync(file, [
    'listen:',
    `  port: 127.0.0.1:${port}`,
    `  tls: { cert: "${tls.cert}", key: "${tls.key}", minVersion: TLSv1.3 }`,
    'upstreams:',
    ...upstreams.map((u, i) => `  - { url: "${u}", name: "app-${i + 1}" }`),
    'sticky: { secret: "bench-sticky-secret-0123456789" }',
    'healthCheck: { path: /, interval: 2s, timeout: 1s }',
    `workers: ${CORES}`,
    'log: { level: warn }',
    ''
  ].join('\n'))
  const proc = startProcess(process.execPath, [join(root, 'packages/balancer/dist/cli.js'), '--config', file])
  await waitForPort(port)
  return { url: `https://127.0.0.1:${port}`, pid: proc.child.pid, stop: () => proc.stop() }
}

/** Run h2load; returns req/s, requests done and failed, elapsed seconds, and the TLS it saw. */
function h2load (args) {
  return new Promise((resolve, reject) => {
    execFile('h2load', args, { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`h2load failed: ${err.message}\n${stderr}`))
      const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(stdout)
      const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout)
      if (finished === null || requests === null) return reject(new Error(`h2load: unexpected output\n${stdout}`))
      resolve({
        seconds: Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1),
        rps: Number(finished[3]),
        succeeded: Number(requests[4]),
        failed: Number(requests[5]) + Number(requests[6]),
        tls: `${/TLS Protocol: (\S+)/.exec(stdout)?.[1] ?? '?'} ${/Server Temp Key: (\S+)/.exec(stdout)?.[1] ?? ''}`.trim(),
        alpn: /Application protocol: (\S+)/.exec(stdout)?.[1] ?? '?'
      })
    })
  })
}

/** New TLS connections per second: rounds of `connections` new connections, one request each. */
async function handshakes (url, seconds, connections = 50) {
  let done = 0
  let failed = 0
  let elapsed = 0
  let tls = ''
  const until = Date.now() + seconds * 1000
  while (Date.now() < until) {
    const r = await h2load(['-t', '1', '-c', String(connections), '-n', String(connections), '--h1', `${url}/`])
    done += r.succeeded
    failed += r.failed
    elapsed += r.seconds
    tls = r.tls
  }
  return { rate: done / elapsed, failed, tls }
}

export default async function (ctx) {
  const { root, duration, quick } = ctx
  ensureCommand('h2load', 'nghttp2-client', ['--version'])
  const rounds = quick ? 1 : 3
  const warmup = quick ? 1 : 2
  const tls = makeCertificate()
  const upstreams = await startTinyUpstreams(3)
  const targets = [
    { name: `nginx (worker_processes ${CORES})`, start: () => startNginx(upstreams, { tls, workers: CORES }) },
    { name: `HAProxy (nbthread ${CORES})`, start: () => startHaproxy(upstreams, { tls, threads: CORES }) },
    { name: `tether-balancer (--workers ${CORES}, h1 engine)`, start: () => startBalancer(root, upstreams, tls) }
  ]
  const best = new Map(targets.map((t) => [t, { h1: null, h2: null, hs: null }]))
  const better = (a, b, key) => a === null || b[key] > a[key] ? b : a
  for (let round = 0; round < rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length])
    for (const target of order) {
      const server = await target.start()
      try {
        const b = best.get(target)
        await wrk(`${server.url}/`, { connections: 50, threads: CORES, duration: warmup })
        const cpu0 = groupCpuSeconds(server.pid)
        const h1 = await wrk(`${server.url}/`, { connections: 50, threads: CORES, duration })
        h1.cpuUsPerReq = ((groupCpuSeconds(server.pid) - cpu0) * 1e6) / h1.requests
        b.h1 = better(b.h1, h1, 'rps')
        const h2 = await h2load(['-t', String(CORES), '-c', '10', '-m', '10', '-D', String(duration), '--warm-up-time', `${warmup}s`, `${server.url}/`])
        b.h2 = better(b.h2, h2, 'rps')
        b.hs = better(b.hs, await handshakes(server.url, duration), 'rate')
      } finally {
        await server.stop()
      }
    }
  }

  const nginx = best.get(targets[0])
  const ratio = (x, n) => `${fmt(x / n, 2)}×`
  const rows = targets.map((target) => {
    const b = best.get(target)
    return [
      target.name,
      b.h1.rps, fmt(b.h1.p99, 2), ratio(b.h1.rps, nginx.h1.rps), fmt(b.h1.cpuUsPerReq, 1),
      b.h2.rps, ratio(b.h2.rps, nginx.h2.rps), b.h2.alpn,
      fmt(b.hs.rate, 0), ratio(b.hs.rate, nginx.hs.rate), b.hs.tls,
      b.h1.non2xx + b.h1.socketErrors + b.h2.failed + b.hs.failed
    ]
  })
  const columns = [
    'proxy', 'HTTP/1.1 req/s (kept alive)', 'p99 ms', 'vs nginx', 'CPU µs/req',
    'h2 req/s', 'vs nginx', 'ALPN', 'new connections/s', 'vs nginx', 'TLS seen', 'errors'
  ]
  const main = best.get(targets[2])
  return [
    table(`TLS termination, TLS 1.3, ECDSA P-256, 3 upstreams, tiny response (${CORES} cores each; wrk -t${CORES} -c50 https; h2load -t${CORES} -c10 -m10; h2load --h1 -c50 -n50 rounds; ${duration} s each, best of ${rounds})`, columns, rows),
    `Floor (issue 13): ≥ 0.6× nginx on kept-alive connections: ${fmt(main.h1.rps / nginx.h1.rps, 2)}× — ${main.h1.rps >= 0.6 * nginx.h1.rps ? 'met' : 'NOT met'}`,
    ''
  ].join('\n')
}
