// ip-hash with bounded loads (hashBalanceFactor), table-driven: the load spread and the share
// of clients moved off their own node, for several factors; a NAT address spread out; clients
// back home once the load falls.
import t from 'tap'
import { IpHash } from '../src/index.js'

interface N { readonly name: string, readonly weight: number, active: number }

function nodes (count: number): N[] {
  return Array.from({ length: count }, (_, i) => ({ name: `node-${i}`, weight: 1, active: 0 }))
}

/** Place `keys` long-lived requests one after another; returns the peak load and the share not on their own node. */
function place (factor: number, count: number, keys: string[]): { maxLoad: number, moved: number } {
  const bounded = new IpHash<N>(factor)
  const plain = new IpHash<N>()
  const list = nodes(count)
  bounded.reset(list)
  plain.reset(list)
  let moved = 0
  for (const key of keys) {
    const node = bounded.pick({ clientKey: key })
    if (node === undefined) throw new Error('no node')
    if (node !== plain.pick({ clientKey: key })) moved++
    node.active++
  }
  return { maxLoad: Math.max(...list.map((n) => n.active)), moved: moved / keys.length }
}

const KEYS = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)

t.test('load bound and keys moved, by factor (10 nodes, 10,000 clients)', async (t) => {
  const unbounded = place(0, 10, KEYS)
  t.ok(unbounded.maxLoad > 1000, `without a bound the busiest node holds ${unbounded.maxLoad} (average 1000)`)
  t.equal(unbounded.moved, 0)
  const table: Array<[factor: number, maxMoved: number]> = [[1.1, 0.2], [1.25, 0.12], [1.5, 0.05], [2, 0.01]]
  let previous = 1
  for (const [factor, maxMoved] of table) {
    const { maxLoad, moved } = place(factor, 10, KEYS)
    t.ok(maxLoad <= Math.ceil(factor * KEYS.length / 10), `factor ${factor}: busiest node ${maxLoad} ≤ ${Math.ceil(factor * 1000)}`)
    t.ok(moved <= maxMoved, `factor ${factor}: ${(moved * 100).toFixed(2)}% of clients off their own node (≤ ${maxMoved * 100}%)`)
    t.ok(moved <= previous, 'a larger factor moves no more clients')
    previous = moved
  }
})

t.test('many users behind one NAT address are spread, and come home when the load falls', async (t) => {
  const list = nodes(3)
  const alg = new IpHash<N>(1.5)
  alg.reset(list)
  const home = new IpHash<N>()
  home.reset(list)
  const own = home.pick({ clientKey: '198.51.100.7' })
  const placed: N[] = []
  for (let i = 0; i < 300; i++) {
    const node = alg.pick({ clientKey: '198.51.100.7' })
    if (node === undefined) throw new Error('no node')
    node.active++
    placed.push(node)
  }
  for (const n of list) t.ok(n.active <= 150, `${n.name} holds ${n.active} of 300 (bound 150)`)
  t.equal(own?.active, 150, 'its own node is filled to the bound first')
  for (const node of placed) node.active--
  t.equal(alg.pick({ clientKey: '198.51.100.7' }), own, 'back on its own node once the load fell')
})

t.test('with no load the bounded hash is the plain hash (replicas with no traffic agree exactly)', async (t) => {
  const list = nodes(5)
  const a = new IpHash<N>(1.25)
  const b = new IpHash<N>()
  a.reset(list)
  b.reset(list)
  t.ok(KEYS.slice(0, 2000).every((k) => a.pick({ clientKey: k }) === b.pick({ clientKey: k })))
})
