// Health: a node killed mid-test is taken out by the active checks and by the passive checks;
// a node that comes back is taken back in after `rise` good checks (or after failTimeout, for
// passive-only). Real processes, killed with SIGKILL and restarted on the same port.
import t from 'tap'
import { startBalancer } from './helpers/balancer.js'
import { get, servedBy, waitFor } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'

t.test('active checks: a killed node goes down after `fall`, comes back after `rise`', async (t) => {
  const [x, y] = await startUpstreams(t, ['x', 'y'])
  if (x === undefined || y === undefined) throw new Error('no upstreams')
  const { url, balancer, logs } = await startBalancer(t, {
    upstreams: [{ url: x.url, name: 'x', maxFails: 0 }, { url: y.url, name: 'y', maxFails: 0 }],
    healthCheck: { path: '/health', interval: '250ms', timeout: '250ms', rise: 3, fall: 2 }
  })
  const node = (name: string) => balancer.nodes().find((n) => n.name === name)
  await waitFor(() => node('x')?.lastCheck?.ok === true, 8000, 'a first good check')

  await x.kill()
  await waitFor(() => node('x')?.health === 'down', 8000, 'x down by active checks')
  t.match(node('x')?.lastCheck, { ok: false, error: /ECONNREFUSED/ })
  t.ok(logs.some((l) => l.node === 'x' && l.to === 'down' && /active: 2 failed check/.test(String(l.reason))), 'the change is logged with its reason')
  t.same(await servedBy(url, 6), ['y', 'y', 'y', 'y', 'y', 'y'], 'no request goes to the dead node')

  await x.restart()
  // The first good check must not be enough: rise is 3.
  await waitFor(() => node('x')?.lastCheck?.ok === true, 8000, 'a good check after the restart')
  t.equal(node('x')?.health, 'down', 'one good check is not enough')
  await waitFor(() => node('x')?.health === 'up', 8000, 'x back up')
  t.ok(logs.some((l) => l.node === 'x' && l.to === 'up' && /active: 3 successful check/.test(String(l.reason))))
  const names = await servedBy(url, 6)
  t.ok(names.includes('x'), 'x takes traffic again')
  const metrics = await balancer.metrics()
  t.match(metrics, /tether_balancer_node_changes_total\{node="x",change="health:down"\} 1/)
  t.match(metrics, /tether_balancer_node_changes_total\{node="x",change="health:up"\} 1/)
})

t.test('active checks: an unhealthy answer counts as a failure', async (t) => {
  const [x, y] = await startUpstreams(t, ['x', 'y'])
  if (x === undefined || y === undefined) throw new Error('no upstreams')
  const { url, balancer } = await startBalancer(t, {
    upstreams: [{ url: x.url, name: 'x' }, { url: y.url, name: 'y' }],
    healthCheck: { path: '/health', interval: '150ms', timeout: '150ms', rise: 1, fall: 1 }
  })
  await get(`${x.url}/health/fail`)
  // Wait for the 503 itself (on a loaded machine a check may also time out, which is a failure too).
  await waitFor(() => balancer.nodes().find((n) => n.name === 'x')?.lastCheck?.status === 503, 5000, 'a 503 check')
  t.match(balancer.nodes().find((n) => n.name === 'x'), { health: 'down', lastCheck: { ok: false, status: 503, error: 'status 503' } })
  await get(`${y.url}/health/fail`)
  await waitFor(() => balancer.nodes().every((n) => n.health === 'down'), 5000, 'all down')
  const res = await get(`${url}/`)
  t.equal(res.status, 503, 'no healthy node: 503')
  t.equal(res.headers['x-tether-error'], 'TETHER_ERR_NO_UPSTREAM')
  await get(`${x.url}/health/ok`)
  await waitFor(() => balancer.nodes().find((n) => n.name === 'x')?.health === 'up', 5000, 'x up')
  t.equal((await get(`${url}/`)).status, 200)
})

t.test('passive checks: a killed node is taken out after maxFails, back after failTimeout', async (t) => {
  const [x, y] = await startUpstreams(t, ['x', 'y'])
  if (x === undefined || y === undefined) throw new Error('no upstreams')
  const { url, balancer, logs } = await startBalancer(t, {
    upstreams: [{ url: x.url, name: 'x', maxFails: 2, failTimeout: '700ms' }, { url: y.url, name: 'y', maxFails: 2, failTimeout: '700ms' }]
  })
  const node = (name: string) => balancer.nodes().find((n) => n.name === name)
  await x.kill()
  const names = await servedBy(url, 8)
  t.same(names, Array(8).fill('y'), 'every request is answered, by y: failed connects are retried')
  t.equal(node('x')?.health, 'down')
  t.ok(node('x')?.passiveDownUntil, 'out until failTimeout ends')
  t.equal(node('x')?.requests, 2, 'x was tried exactly maxFails times, then no more')
  t.ok(logs.some((l) => l.node === 'x' && l.to === 'down' && /passive: 2 failure/.test(String(l.reason))))

  await x.restart()
  await waitFor(() => node('x')?.health === 'up', 8000, 'x back after failTimeout')
  t.ok((await servedBy(url, 4)).includes('x'), 'x takes traffic again')
})

t.test('active and passive together: a restarted node returns on `rise`, before failTimeout', async (t) => {
  const [x, y] = await startUpstreams(t, ['x', 'y'])
  if (x === undefined || y === undefined) throw new Error('no upstreams')
  const { url, balancer } = await startBalancer(t, {
    upstreams: [{ url: x.url, name: 'x', failTimeout: '60s' }, { url: y.url, name: 'y', failTimeout: '60s' }],
    healthCheck: { path: '/health', interval: '250ms', timeout: '250ms', rise: 2, fall: 3 }
  })
  const node = (name: string) => balancer.nodes().find((n) => n.name === name)
  await x.kill()
  t.same(await servedBy(url, 4), ['y', 'y', 'y', 'y'])
  t.equal(node('x')?.health, 'down', 'the passive check acted first, at the first failed request')
  await x.restart()
  await waitFor(async () => node('x')?.health === 'up', 8000, 'x back through active checks')
  t.equal(node('x')?.passiveDownUntil, null, 'the passive hold was cleared by the good checks')
})

t.test('active checks: a hung (SIGSTOPped) node is down within fall × interval + timeout', async (t) => {
  const [x, y] = await startUpstreams(t, ['x', 'y'])
  if (x === undefined || y === undefined) throw new Error('no upstreams')
  const interval = 400
  const timeout = 300
  const fall = 3
  const { balancer, logs } = await startBalancer(t, {
    upstreams: [{ url: x.url, name: 'x', maxFails: 0 }, { url: y.url, name: 'y', maxFails: 0 }],
    healthCheck: { path: '/health', interval: `${interval}ms`, timeout: `${timeout}ms`, rise: 1, fall }
  })
  const node = (name: string) => balancer.nodes().find((n) => n.name === name)
  await waitFor(() => node('x')?.lastCheck?.ok === true, 8000, 'a first good check')
  // Record every check result seen (each has its start time), polling faster than the interval.
  const starts: number[] = []
  const poll = setInterval(() => {
    const check = node('x')?.lastCheck
    const at = check == null ? undefined : Date.parse(check.at)
    if (at !== undefined && at !== starts.at(-1)) starts.push(at)
  }, 10)
  t.teardown(() => clearInterval(poll))

  // The process keeps its sockets open and answers nothing: connects succeed (the kernel
  // accepts), every check waits out its timeout.
  const stoppedAt = Date.now()
  process.kill(x.pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(x.pid, 'SIGCONT') } catch { /* gone */ } })
  await waitFor(() => node('x')?.health === 'down', 10_000, 'x down by active checks')
  const markDownMs = Date.now() - stoppedAt
  clearInterval(poll)
  const bound = fall * interval + timeout
  t.comment(`mark-down of a SIGSTOPped node: ${markDownMs} ms (bound ${bound} ms; interval ${interval}, timeout ${timeout}, fall ${fall})`)
  // Slack for a loaded 2-core machine; the old schedule (every interval + timeout) took up
  // to fall × (interval + timeout) = 2100 ms here, and typically past 1900.
  t.ok(markDownMs <= bound + 250, `marked down in ${markDownMs} ms, within ${bound} ms (+250 ms slack)`)
  t.ok(logs.some((l) => l.node === 'x' && l.to === 'down' && /active: 3 failed check\(s\), last: timeout/.test(String(l.reason))), 'down for timed-out checks')
  // Fixed rate: the checks that timed out started `interval` apart, not interval + timeout.
  const failed = starts.filter((at) => at >= stoppedAt)
  const gaps = failed.slice(1).map((at, i) => at - (failed[i] ?? at))
  t.ok(gaps.length >= 1, `gaps between check starts: ${gaps.join(', ')} ms`)
  for (const gap of gaps) t.ok(gap < interval + timeout / 2, `a timed-out check did not delay the next (${gap} ms apart)`)

  process.kill(x.pid, 'SIGCONT')
  await waitFor(() => node('x')?.health === 'up', 10_000, 'x up again after SIGCONT')
  await x.kill()
})
