// The pool owns its nodes: a request's counts and passive health change only through the lease
// it takes (pool.begin) and ends once (lease.end), whatever the path. White-box, no sockets.
import t from 'tap'
import { resolveConfig, type NodeTransition } from '../src/index.js'
import { Pool } from '../src/pool/pool.js'

function pool (maxFails = 2): { pool: Pool, transitions: NodeTransition[] } {
  const transitions: NodeTransition[] = []
  const config = resolveConfig({ upstreams: [{ url: 'http://127.0.0.1:1', name: 'a', maxFails, failTimeout: '1h' }, { url: 'http://127.0.0.1:2', name: 'b' }] })
  return { pool: new Pool(config, (x) => transitions.push(x)), transitions }
}

const counts = (p: Pool, name: string): [number, number, number] => {
  const n = p.snapshot().find((s) => s.name === name)
  return [n?.activeConnections ?? -1, n?.requests ?? -1, n?.errors ?? -1]
}

t.test('a lease counts one attempt, and ending it twice counts once', async (t) => {
  const { pool: p } = pool()
  const a = p.get('a')
  if (a === undefined) throw new Error('no node a')
  const lease = p.begin(a)
  t.same(counts(p, 'a'), [1, 1, 0], 'in flight: active and requests counted at begin')
  t.equal(lease.open, true)
  lease.end('done')
  lease.end('failed', 'late')
  lease.end('cancelled')
  t.same(counts(p, 'a'), [0, 1, 0], 'only the first end counts: no error from the late failure')
  t.equal(lease.open, false)
})

t.test('outcomes: failed counts an error and feeds passive health; cancelled and done do not', async (t) => {
  const { pool: p, transitions } = pool(2)
  const a = p.get('a')
  if (a === undefined) throw new Error('no node a')
  p.begin(a).end('cancelled')
  p.begin(a).end('done')
  t.same(counts(p, 'a'), [0, 2, 0])
  t.equal(a.acceptsNew, true)
  p.begin(a).end('failed', 'ECONNREFUSED')
  t.equal(a.acceptsNew, true, 'one failure of maxFails 2: still in')
  p.begin(a).end('failed', 'ECONNRESET')
  t.same(counts(p, 'a'), [0, 4, 2])
  t.equal(a.acceptsNew, false, 'maxFails failures: out (passive)')
  t.match(transitions.at(-1), { node: 'a', field: 'health', from: 'up', to: 'down', reason: /passive: 2 failure\(s\).*last: ECONNRESET/ })
  t.equal(p.pick({ clientKey: '' }, null)?.name, 'b', 'the algorithm no longer gets it')
  p.close()
})

t.test('a long-lived lease (a tunnel) stays counted, and least-connections sees it', async (t) => {
  const config = resolveConfig({ algorithm: 'least-connections', upstreams: [{ url: 'http://127.0.0.1:1', name: 'a' }, { url: 'http://127.0.0.1:2', name: 'b' }] })
  const p = new Pool(config, () => {})
  const first = p.pick({ clientKey: '' }, null)
  if (first === undefined) throw new Error('no pick')
  const tunnel = p.begin(first)
  for (let i = 0; i < 4; i++) {
    const other = p.pick({ clientKey: '' }, null)
    t.not(other?.name, first.name, `pick ${i + 1} avoids the node holding the tunnel`)
    if (other !== undefined) p.begin(other).end('done')
  }
  tunnel.end('done')
  t.same(counts(p, first.name), [0, 1, 0])
})

t.test('node state is read-only outside the pool', async (t) => {
  const { pool: p } = pool()
  const a = p.get('a')
  if (a === undefined) throw new Error('no node a')
  // @ts-expect-error the count has no setter: only leases change it
  t.throws(() => { a.active = 5 }, TypeError)
  t.equal(a.active, 0)
})
