// Overload protection: per-node maxConn with a bounded queue (HAProxy's maxconn + timeout
// queue). Real upstream processes with a slow handler; the balancer in the test's process.
import t from 'tap'
import { startBalancer } from './helpers/balancer.js'
import { get, json, stickyCookie, type Response, type Seen } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'

const [a, b] = await startUpstreams(t, ['a', 'b'])
if (a === undefined || b === undefined) throw new Error('upstreams did not start')

/** Fire `n` concurrent GETs; meanwhile sample the most requests in flight on each node. */
async function burst (url: string, n: number, path: string, headers: Record<string, string>, inFlight: () => Array<{ name: string, activeConnections: number }>): Promise<{ responses: Response[], peak: Map<string, number> }> {
  const peak = new Map<string, number>()
  const sampler = setInterval(() => {
    for (const node of inFlight()) peak.set(node.name, Math.max(peak.get(node.name) ?? 0, node.activeConnections))
  }, 5)
  const responses = await Promise.all(Array.from({ length: n }, () => get(`${url}${path}`, headers)))
  clearInterval(sampler)
  return { responses, peak }
}

t.test('one node, maxConn 2, queue of 2: two served at once, two after waiting, the rest refused at once', async (t) => {
  const { url, balancer } = await startBalancer(t, { upstreams: [{ url: a.url, name: 'a', maxConn: 2 }], queue: { size: 2, timeout: '5s' }, admin: { listen: 0 } })
  const { responses, peak } = await burst(url, 6, '/slow?ms=700', {}, () => balancer.nodes())
  const statuses = responses.map((r) => r.status).sort()
  t.same(statuses, [200, 200, 200, 200, 503, 503])
  const refused = responses.filter((r) => r.status === 503)
  for (const r of refused) {
    t.equal(r.headers['x-tether-error'], 'TETHER_ERR_QUEUE_FULL')
    t.equal(r.headers['retry-after'], '1', '503 with Retry-After')
  }
  t.ok((peak.get('a') ?? 0) <= 2, `the node never had more than maxConn in flight (peak ${peak.get('a') ?? 0})`)
  const metrics = await balancer.metrics()
  t.match(metrics, /tether_balancer_queue_wait_seconds_count\{outcome="granted"\} 2/)
  t.match(metrics, /tether_balancer_error_responses_total\{code="TETHER_ERR_QUEUE_FULL"\} 2/)
  t.match(metrics, /tether_balancer_queue_length\{node="a"\} 0/)
  t.equal(balancer.nodes()[0]?.maxConn, 2, 'the status JSON shows maxConn')
})

t.test('a wait longer than queue.timeout: 503 TETHER_ERR_QUEUE_TIMEOUT, fast', async (t) => {
  const { url } = await startBalancer(t, { upstreams: [{ url: a.url, name: 'a', maxConn: 1 }], queue: { size: 10, timeout: '300ms' } })
  const started = Date.now()
  const [slow, waited] = await Promise.all([get(`${url}/slow?ms=2000`), new Promise<Response>((resolve, reject) => setTimeout(() => { get(`${url}/`).then(resolve, reject) }, 100))])
  t.equal(slow.status, 200)
  t.equal(waited.status, 503)
  t.equal(waited.headers['x-tether-error'], 'TETHER_ERR_QUEUE_TIMEOUT')
  t.ok(Date.now() - started >= 300)
})

t.test('a client with no sticky node goes to a node with a free slot; a sticky client waits for its own', async (t) => {
  const { url } = await startBalancer(t, { upstreams: [{ url: a.url, name: 'a', maxConn: 1 }, { url: b.url, name: 'b', maxConn: 1 }], queue: { size: 5, timeout: '5s' } })
  // Find a cookie for a.
  let cookie: string | undefined
  for (let i = 0; i < 6 && cookie === undefined; i++) {
    const res = await get(`${url}/`)
    if (json<Seen>(res).name === 'a') cookie = stickyCookie(res)
  }
  if (cookie === undefined) throw new Error('no cookie for a')
  // a is busy with a sticky slow request; a new client goes to b.
  const busy = get(`${url}/slow?ms=800`, { cookie })
  await new Promise((resolve) => setTimeout(resolve, 150))
  const fresh = await get(`${url}/`)
  t.equal(json<Seen>(fresh).name, 'b', 'no sticky node: routed to the node with a free slot')
  const sticky = await get(`${url}/`, { cookie })
  t.equal(sticky.status, 200)
  t.equal(json<Seen>(sticky).name, 'a', 'sticky: waited for a slot on its own node')
  t.equal((await busy).status, 200)
})

t.test('limits.connections: connections beyond the cap are closed', async (t) => {
  const { url, balancer } = await startBalancer(t, { upstreams: [{ url: a.url, name: 'a' }], limits: { connections: 1 } })
  const held = get(`${url}/slow?ms=600`)
  await new Promise((resolve) => setTimeout(resolve, 150))
  await t.rejects(get(`${url}/`), 'the second connection is closed')
  t.equal((await held).status, 200)
  t.ok(balancer.config.limits.connections === 1)
})
