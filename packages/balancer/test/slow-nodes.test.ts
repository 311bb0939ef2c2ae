// Slow and hung nodes: a per-try timeout moves idempotent requests off a hung (SIGSTOPped) node
// instead of letting them wait the whole response timeout, the abandoned attempts eject the
// node (passive outlier detection), an ejection grows on repeat, and the max ejection
// percentage keeps the pool from emptying. Real node processes, stopped with SIGSTOP.
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { MAX_EJECTION_MULTIPLIER, recordFailure, type PassiveState } from '../src/health/passive.js'
import { startBalancer } from './helpers/balancer.js'
import { get, json, send, type Seen } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'

t.test('per-try timeout: requests sent to a hung node are retried on another node, and the node is ejected', async (t) => {
  const [x, y] = await startUpstreams(t, ['x', 'y'])
  if (x === undefined || y === undefined) throw new Error('no upstreams')
  const { url, balancer, logs } = await startBalancer(t, {
    upstreams: [{ url: x.url, name: 'x', maxFails: 2, failTimeout: '3s' }, { url: y.url, name: 'y', maxFails: 2, failTimeout: '3s' }],
    timeouts: { perTry: '400ms', response: '60s' }
  })
  process.kill(x.pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(x.pid, 'SIGCONT') } catch { /* gone */ } })
  // Six clients at once: round-robin sends some to x, which accepts (the kernel does) and never answers.
  const t0 = performance.now()
  const answers = await Promise.all(Array.from({ length: 6 }, async () => {
    const started = performance.now()
    const res = await get(`${url}/`)
    return { status: res.status, name: json<Seen>(res).name, ms: performance.now() - started }
  }))
  const took = performance.now() - t0
  t.same(answers.map((a) => `${a.status} ${a.name}`), Array(6).fill('200 y'), 'every request answered 200, by y')
  t.ok(took < 10_000, `all answered in ${Math.round(took)} ms, not after the 60 s response timeout`)
  const retried = answers.filter((a) => a.ms >= 400).length
  t.ok(retried >= 1, `${retried} request(s) waited one per-try timeout on x, then went to y`)
  t.equal(balancer.nodes().find((n) => n.name === 'x')?.health, 'down', 'x is ejected')
  t.ok(logs.some((l) => l.node === 'x' && l.to === 'down' && /per-try timeout \(400 ms\); ejected for 3000 ms/.test(String(l.reason))), 'the ejection is logged with its cause and length')
  t.match(await balancer.metrics(), /tether_balancer_per_try_timeouts_total\{node="x"\} [1-9]/, 'per-try timeouts are counted per node')

  // Writes are not retried by a per-try timeout: with x ejected they go to y at once.
  const post = await send(`${url}/echo`, { method: 'POST', body: 'once' })
  t.equal(post.status, 200)
  t.equal(json<Seen>(post).name, 'y')
  process.kill(x.pid, 'SIGCONT')
  await x.kill()
})

t.test('without a per-try timeout, an idempotent request on a hung node waits for timeouts.response', async (t) => {
  const [x] = await startUpstreams(t, ['x'])
  if (x === undefined) throw new Error('no upstreams')
  const { url } = await startBalancer(t, { upstreams: [{ url: x.url, name: 'x' }], timeouts: { response: '1200ms' } })
  process.kill(x.pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(x.pid, 'SIGCONT') } catch { /* gone */ } })
  const started = performance.now()
  const res = await get(`${url}/`)
  const ms = performance.now() - started
  t.equal(res.status, 504)
  t.equal(res.headers['x-tether-error'], 'TETHER_ERR_UPSTREAM_TIMEOUT')
  t.ok(ms >= 1100, `the 504 came after the response timeout (${Math.round(ms)} ms)`)
  process.kill(x.pid, 'SIGCONT')
  await x.kill()
})

t.test('max ejection percentage: failures past it eject no one', async (t) => {
  const [x, y] = await startUpstreams(t, ['x', 'y'])
  if (x === undefined || y === undefined) throw new Error('no upstreams')
  const { url, balancer } = await startBalancer(t, {
    upstreams: [{ url: x.url, name: 'x', failTimeout: '5s' }, { url: y.url, name: 'y', failTimeout: '5s' }],
    maxEjectedPercent: 50,
    timeouts: { perTry: '300ms' }
  })
  process.kill(x.pid, 'SIGSTOP')
  process.kill(y.pid, 'SIGSTOP')
  t.teardown(() => { for (const u of [x, y]) { try { process.kill(u.pid, 'SIGCONT') } catch { /* gone */ } } })
  const res = await get(`${url}/`)
  t.equal(res.status, 504, 'both hung: the per-try timeouts ran out on both nodes')
  const down = balancer.nodes().filter((n) => n.health === 'down').map((n) => n.name)
  t.equal(down.length, 1, `one node of two (50 %) is ejected, not both: ${down.join(', ')}`)
  for (const u of [x, y]) process.kill(u.pid, 'SIGCONT')
})

t.test('ejection back-off: grows on each repeat, capped, and resets after a quiet period', async (t) => {
  const s: PassiveState = { fails: 0, failWindowStart: 0, downUntil: 0, ejections: 0, ejectedAt: 0 }
  const base = 1000
  let now = 0
  const lengths: number[] = []
  for (let i = 0; i < 12; i++) {
    t.ok(recordFailure(s, now, 1, base), `ejection ${i + 1}`)
    lengths.push(s.downUntil - now)
    now = s.downUntil + 500 // back in, fails again half a failTimeout later
  }
  t.same(lengths, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10].map((m) => m * base), 'failTimeout × 1, × 2, … capped at × 10')
  t.equal(MAX_EJECTION_MULTIPLIER, 10)
  t.notOk(recordFailure(s, now - 600, 1, base), 'no failure counts while the node is out')
  now = s.downUntil + base + 1 // quiet for more than a failTimeout after coming back
  t.ok(recordFailure(s, now, 1, base))
  t.equal(s.downUntil - now, base, 'a fresh start: failTimeout × 1')
  const capped: PassiveState = { fails: 0, failWindowStart: 0, downUntil: 0, ejections: 0, ejectedAt: 0 }
  t.notOk(recordFailure(capped, 0, 1, base, false), 'the pool may forbid the ejection')
  t.equal(capped.downUntil, 0)
})
