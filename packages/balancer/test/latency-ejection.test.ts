// Latency outlier detection (`latencyEjection`): three real upstream processes under steady
// load through the balancer; one turns 300 ms slower mid-run (its admin endpoint adds latency to
// every request but the health checks, which keep passing). It is ejected, traffic moves to the
// others, it stays out for the ejection time although its health checks pass, it comes back
// when healed, and a second ejection soon after lasts twice as long. Checked on the recorded
// history of which node answered each request and when.
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { isLatencyOutlier } from '../src/health/latency.js'
import { resolveConfig } from '../src/index.js'
import { startBalancer } from './helpers/balancer.js'
import { get, json, type Seen } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'

interface Answer { start: number, end: number, status: number, name: string }

t.test('a node whose latency jumps is ejected, traffic moves, and it returns after recovery', async (t) => {
  const ups = await startUpstreams(t, ['x', 'y', 'z'])
  const x = ups[0]
  if (x === undefined || ups.length !== 3) throw new Error('no upstreams')
  const { url, balancer, logs } = await startBalancer(t, {
    upstreams: ups.map((u, i) => ({ url: u.url, name: ['x', 'y', 'z'][i]! })),
    healthCheck: { path: '/health', interval: '200ms', timeout: '500ms', rise: 1, fall: 2 },
    latencyEjection: { factor: 2, minExtra: '100ms', minRequests: 10, ejectionTime: '1500ms' }
  })
  const history: Answer[] = []
  const state = { running: true }
  const clients = Array.from({ length: 6 }, async () => {
    while (state.running) {
      const start = performance.now()
      const res = await get(`${url}/`)
      history.push({ start, end: performance.now(), status: res.status, name: res.status === 200 ? json<Seen>(res).name : '' })
      await sleep(5)
    }
  })
  const health = (): string | undefined => balancer.nodes().find((n) => n.name === 'x')?.health
  const until = async (check: () => boolean, ms: number): Promise<number | null> => {
    const t0 = performance.now()
    while (performance.now() - t0 < ms) { if (check()) return performance.now(); await sleep(10) }
    return null
  }
  try {
    await sleep(800)
    t.ok(history.filter((a) => a.name === 'x').length >= 10, 'x answered its share while fast')

    // x turns slow: 300 ms on every request but /health.
    await get(`${x.url}/latency?ms=300`)
    const slowAt = performance.now()
    const ejectedAt = await until(() => health() === 'down', 5000)
    t.not(ejectedAt, null, `x ejected ${ejectedAt === null ? '(never)' : `${Math.round(ejectedAt - slowAt)} ms after it turned slow`}`)
    t.ok(logs.some((l) => l.node === 'x' && l.to === 'down' && /passive: latency \d+ ms against its baseline \d+ ms .*ejected for 1500 ms/.test(String(l.reason))), 'the ejection is logged with its cause and length')
    const backAt = await until(() => health() === 'up', 5000)
    t.not(backAt, null, 'x is back after its ejection')
    const out = (backAt ?? 0) - (ejectedAt ?? 0)
    t.ok(out >= 1400, `x stayed out its 1500 ms although its health checks passed every 200 ms (${Math.round(out)} ms)`)
    const duringEjection = history.filter((a) => a.start > (ejectedAt ?? 0) + 50 && a.end < (backAt ?? 0))
    t.ok(duringEjection.length >= 20, `${duringEjection.length} requests during the ejection`)
    t.equal(duringEjection.filter((a) => a.name === 'x').length, 0, 'none of them went to x')
    t.equal(duringEjection.filter((a) => a.status !== 200).length, 0, 'and all of them were answered')

    // Still slow when it comes back: ejected again at once, for twice as long.
    const again = await until(() => health() === 'down', 5000)
    if (again === null) t.comment(JSON.stringify({ logs: logs.filter((l) => l.node === 'x' && l.to !== undefined).map((l) => l.reason), answeredByX: history.filter((a) => a.name === 'x' && a.start > (backAt ?? 0)).map((a) => Math.round(a.end - a.start)) }))
    t.not(again, null, 'x, still slow, is ejected again')
    t.ok(logs.some((l) => l.node === 'x' && l.to === 'down' && /ejected for 3000 ms \(ejection 2 in a row\)/.test(String(l.reason))), 'a repeat lasts twice as long')

    // Healed: it returns when the ejection ends and takes traffic again.
    await get(`${x.url}/latency?ms=0`)
    const healedBack = await until(() => health() === 'up', 6000)
    t.not(healedBack, null, 'x is back after the second ejection')
    await sleep(1000)
    const after = history.filter((a) => a.start > (healedBack ?? 0) + 100)
    t.ok(after.filter((a) => a.name === 'x').length >= 5, `x answers again (${after.filter((a) => a.name === 'x').length} of ${after.length})`)
    t.equal(health(), 'up', 'and, fast again, stays in')
  } finally {
    state.running = false
    await Promise.all(clients)
  }
})

t.test('latencyEjection: off by default, no ejection without peers to compare with, never more than maxEjectedPercent', async (t) => {
  t.same(resolveConfig({ upstreams: ['http://127.0.0.1:1'] }).latencyEjection, { factor: 0, minExtra: 100, minRequests: 20, ejectionTime: 10_000 }, 'off by default (factor 0)')
  const config = { factor: 3, minExtra: 100, minRequests: 10, ejectionTime: 1000 }
  const slow = { samples: 50, recent: 400, baseline: 20 }
  t.ok(isLatencyOutlier(slow, [20, 25], config), 'slow against itself and its peers')
  t.notOk(isLatencyOutlier(slow, [], config), 'no peer: nowhere better to send traffic')
  t.notOk(isLatencyOutlier(slow, [200, 250], config), 'every node is slow: no outlier')
  t.notOk(isLatencyOutlier({ samples: 50, recent: 400, baseline: 300 }, [20], config), 'always this slow: its own baseline says so')
  t.notOk(isLatencyOutlier({ samples: 50, recent: 9, baseline: 2 }, [2], config), 'within minExtra')
  t.notOk(isLatencyOutlier({ ...slow, samples: 5 }, [20], config), 'too few samples')
  t.notOk(isLatencyOutlier(slow, [20], { ...config, factor: 0 }), 'factor 0: off')

  // Two of three nodes turn slow with maxEjectedPercent 34: one is ejected, not both.
  const ups = await startUpstreams(t, ['a', 'b', 'c'])
  if (ups.length !== 3) throw new Error('no upstreams')
  const { url, balancer } = await startBalancer(t, {
    upstreams: ups.map((u, i) => ({ url: u.url, name: ['a', 'b', 'c'][i]! })),
    maxEjectedPercent: 34,
    latencyEjection: { factor: 3, minExtra: '100ms', minRequests: 5, ejectionTime: '5s' }
  })
  const load = async (ms: number): Promise<void> => {
    const end = performance.now() + ms
    await Promise.all(Array.from({ length: 6 }, async () => { while (performance.now() < end) await get(`${url}/`) }))
  }
  await load(500)
  await get(`${ups[0]!.url}/latency?ms=300`)
  await get(`${ups[1]!.url}/latency?ms=300`)
  await load(2500)
  const down = balancer.nodes().filter((n) => n.health === 'down').map((n) => n.name)
  t.equal(down.length, 1, `one node of three (34 %) is ejected, not two: ${down.join(', ')}`)
  t.notOk(down.includes('c'), 'and never the fast one')
})
