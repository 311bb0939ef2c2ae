// Table tests for the algorithms: exact pick sequences, exact ratios, and for ip-hash the
// share of clients that move when a node is added or removed.
import t from 'tap'
import { createAlgorithm, hashKeyForAddress, IpHash, type Candidate } from '../src/index.js'

interface N extends Candidate { name: string, weight: number, active: number }
const nodes = (spec: Record<string, number>, active: Record<string, number> = {}): N[] =>
  Object.entries(spec).map(([name, weight]) => ({ name, weight, active: active[name] ?? 0 }))

function sequence (algorithm: 'weighted-round-robin' | 'least-connections', list: N[], count: number, avoid?: Set<N>): string {
  const alg = createAlgorithm<N>(algorithm)
  alg.reset(list)
  return Array.from({ length: count }, () => alg.pick({ clientKey: '' }, avoid)?.name ?? '-').join(' ')
}

t.test('smooth weighted round-robin: exact sequences (nginx)', async (t) => {
  const cases: Array<[string, Record<string, number>, number, string]> = [
    ['{5,1,1} spreads the heavy node', { a: 5, b: 1, c: 1 }, 7, 'a a b a c a a'],
    ['second cycle repeats', { a: 5, b: 1, c: 1 }, 14, 'a a b a c a a a a b a c a a'],
    ['equal weights: plain round-robin', { a: 1, b: 1, c: 1 }, 6, 'a b c a b c'],
    ['{3,1}', { a: 3, b: 1 }, 8, 'a a b a a a b a'],
    ['{2,3}', { a: 2, b: 3 }, 5, 'b a b a b'],
    ['single node', { a: 4 }, 3, 'a a a'],
    ['no nodes', {}, 2, '- -']
  ]
  for (const [name, spec, count, want] of cases) t.equal(sequence('weighted-round-robin', nodes(spec), count), want, name)
})

t.test('weighted round-robin: exact ratios over whole cycles', async (t) => {
  const cases: Array<Record<string, number>> = [{ a: 5, b: 1, c: 1 }, { a: 3, b: 2, c: 1 }, { a: 10, b: 1 }, { a: 1, b: 1, c: 1, d: 1 }]
  for (const spec of cases) {
    const total = Object.values(spec).reduce((x, y) => x + y, 0)
    const alg = createAlgorithm<N>('weighted-round-robin')
    alg.reset(nodes(spec))
    const counts: Record<string, number> = {}
    for (let i = 0; i < total * 100; i++) {
      const name = alg.pick({ clientKey: '' })?.name ?? '-'
      counts[name] = (counts[name] ?? 0) + 1
    }
    t.same(counts, Object.fromEntries(Object.entries(spec).map(([k, w]) => [k, w * 100])), JSON.stringify(spec))
  }
})

t.test('weighted round-robin skips nodes a request already tried', async (t) => {
  const list = nodes({ a: 5, b: 1, c: 1 })
  const avoid = new Set([list[0] as N])
  t.equal(sequence('weighted-round-robin', list, 4, avoid), 'b c b c')
  t.equal(sequence('weighted-round-robin', list, 1, new Set(list)), '-', 'nothing left to try')
})

t.test('least-connections: fewest active per weight wins, ties by smooth WRR', async (t) => {
  const cases: Array<[string, N[], number, string]> = [
    ['no load: identical to WRR {5,1,1}', nodes({ a: 5, b: 1, c: 1 }), 7, 'a a b a c a a'],
    ['busy node avoided', nodes({ a: 1, b: 1, c: 1 }, { a: 3, b: 0, c: 2 }), 3, 'b b b'],
    ['weight scales the load: 4/4 beats 2/1', nodes({ a: 4, b: 1 }, { a: 4, b: 2 }), 2, 'a a'],
    ['tie between b and c broken by WRR', nodes({ a: 1, b: 1, c: 1 }, { a: 5, b: 1, c: 1 }), 4, 'b c b c'],
    ['tie weighted 2:1', nodes({ a: 2, b: 1 }, { a: 2, b: 1 }), 3, 'a b a']
  ]
  for (const [name, list, count, want] of cases) t.equal(sequence('least-connections', list, count), want, name)
})

t.test('least-connections follows load as it changes', async (t) => {
  const list = nodes({ a: 1, b: 1 })
  const alg = createAlgorithm<N>('least-connections')
  alg.reset(list)
  // Each pick opens a request that stays open: every pick must go to a least-loaded node.
  for (let i = 0; i < 9; i++) {
    const least = Math.min(...list.map((n) => n.active))
    const n = alg.pick({ clientKey: '' }) as N
    if (n.active !== least) t.fail(`pick ${i} went to ${n.name} with ${n.active} active, not the least (${least})`)
    n.active++
  }
  t.same(list.map((n) => n.active).sort(), [4, 5])
  list[0]!.active = 0
  t.equal(alg.pick({ clientKey: '' }), list[0], 'a node that freed up is picked next')
})

// Deterministic client addresses: a simple LCG over the IPv4 space.
function clients (count: number, seed = 1): string[] {
  let x = seed
  return Array.from({ length: count }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`
  })
}

function assign (list: N[], keys: string[]): Map<string, string> {
  const alg = new IpHash<N>()
  alg.reset(list)
  return new Map(keys.map((k) => [k, alg.pick({ clientKey: k })?.name ?? '-']))
}

const ten = nodes(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`n${i}`, 1])))
const keys = clients(20_000)

t.test('ip-hash: same client, same node; stable across node order', async (t) => {
  const first = assign(ten, keys.slice(0, 500))
  const reversed = assign([...ten].reverse(), keys.slice(0, 500))
  t.same([...first], [...reversed], 'node order does not matter: seeds come from names')
  const again = assign(ten, keys.slice(0, 500))
  t.same([...first], [...again])
})

t.test('ip-hash: adding one node to ten moves about 1/11 of clients, all to the new node', async (t) => {
  const before = assign(ten, keys)
  const after = assign([...ten, { name: 'n10', weight: 1, active: 0 }], keys)
  let moved = 0
  let movedElsewhere = 0
  for (const [k, node] of before) {
    const now = after.get(k)
    if (now !== node) { moved++; if (now !== 'n10') movedElsewhere++ }
  }
  const share = moved / keys.length
  t.ok(share > 0.08 && share < 0.10, `moved share ${share.toFixed(4)} is close to 1/11 = 0.0909`)
  t.equal(movedElsewhere, 0, 'no client moved between two old nodes')
})

t.test('ip-hash: removing one node of ten moves only its clients', async (t) => {
  const before = assign(ten, keys)
  const after = assign(ten.filter((n) => n.name !== 'n3'), keys)
  let moved = 0
  let wrongly = 0
  for (const [k, node] of before) {
    if (after.get(k) !== node) { moved++; if (node !== 'n3') wrongly++ }
  }
  const share = moved / keys.length
  t.ok(share > 0.08 && share < 0.12, `moved share ${share.toFixed(4)} is close to 1/10`)
  t.equal(wrongly, 0, 'only clients of the removed node moved')
})

t.test('ip-hash: modulo hashing would move nearly everyone (the contrast)', async (t) => {
  let moved = 0
  for (const k of keys) {
    const h = [...k].reduce((x, ch) => (Math.imul(x, 31) + ch.charCodeAt(0)) >>> 0, 7)
    if (h % 10 !== h % 11) moved++
  }
  t.ok(moved / keys.length > 0.85, `modulo moved ${(moved / keys.length).toFixed(2)}`)
})

t.test('ip-hash: weights are honoured in proportion', async (t) => {
  const list = nodes({ a: 3, b: 1, c: 1 })
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 }
  for (const node of assign(list, keys).values()) counts[node] = (counts[node] ?? 0) + 1
  const shareA = (counts.a ?? 0) / keys.length
  t.ok(shareA > 0.57 && shareA < 0.63, `weight 3 of 5 gets ${shareA.toFixed(3)} (want 0.6)`)
  t.ok(Math.abs((counts.b ?? 0) - (counts.c ?? 0)) / keys.length < 0.02, 'equal weights get equal shares')
})

t.test('ip-hash: a retry goes to the next-best node, consistently', async (t) => {
  const alg = new IpHash<N>()
  const list = nodes({ a: 1, b: 1, c: 1 })
  alg.reset(list)
  const problems: string[] = []
  for (const k of keys.slice(0, 200)) {
    const first = alg.pick({ clientKey: k }) as N
    const second = alg.pick({ clientKey: k }, new Set([first])) as N
    if (second === first) problems.push(`${k}: retry picked the failed node`)
    if (alg.pick({ clientKey: k }, new Set([first])) !== second) problems.push(`${k}: retry not deterministic`)
    // Without the first node, the client lands where the retry went.
    const without = new IpHash<N>()
    without.reset(list.filter((n) => n !== first))
    if (without.pick({ clientKey: k }) !== second) problems.push(`${k}: retry and removal disagree`)
  }
  t.same(problems, [], 'for 200 clients: retry differs from the first pick, is deterministic, and matches removal')
})

t.test('ip-hash keys: IPv4 whole, IPv6 by /64 prefix', async (t) => {
  const cases: Array<[string, string]> = [
    ['203.0.113.9', '203.0.113.9'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::99', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64']
  ]
  for (const [address, key] of cases) t.equal(hashKeyForAddress(address.toLowerCase()), key, address)
})
