// The near-cache hit rate on the balancer's status page, checked against what the app nodes
// really did: two near-cache-app processes (each counts the store loads it made) on one
// redis-server behind tether-balancer, clients with cookie jars writing and reading. Every read
// of an existing session is a near-cache hit or a store load, so the misses the balancer counted
// for a node must equal that node's own load count exactly, and the hits the rest.
import t from 'tap'
import { nearCacheCluster } from './helpers/near-cache-cluster.js'
import { request } from './helpers/net.js'

const names = ['a', 'b']
const { apps, front, admin } = await nearCacheCluster(t, names, 'ncrep:')

interface StatsBody { summary: { total: { cacheHitRate: number | null }, nodes: Record<string, { cacheHitRate: number | null }> }, series: { nodes: Record<string, { cacheHits: number[], cacheMisses: number[] }> } }

t.test('the hits and misses the balancer shows are the nodes\' own, and clients never see the header', async (t) => {
  const loadsBefore = await Promise.all(apps.map(async (a) => (JSON.parse((await request(`${a.url}/stats`)).body) as { loads: number }).loads))
  let leaked = 0
  let readsWithCookie = 0
  // 6 clients, each: a write (new session), then reads and one more write, over both nodes:
  // half the clients keep their sticky cookie, half drop it (round robin over the nodes).
  await Promise.all(Array.from({ length: 6 }, async (_, c) => {
    const jar = new Map<string, string>()
    const send = async (method: string, path: string): Promise<void> => {
      const cookie = [...jar].filter(([k]) => c % 2 === 0 || k !== 'tether_node').map(([k, v]) => `${k}=${v}`).join('; ')
      const r = await request(front + path, { method, headers: cookie === '' ? {} : { cookie } })
      if (r.status !== 200) throw new Error(`${method} ${path} → ${r.status}`)
      if (r.headers['x-tether-cache'] !== undefined) leaked++
      if (cookie.includes('tether.sid=')) readsWithCookie++
      for (const line of r.headers['set-cookie'] ?? []) {
        const pair = line.split(';')[0]!
        const eq = pair.indexOf('=')
        jar.set(pair.slice(0, eq), pair.slice(eq + 1))
      }
    }
    await send('POST', `/w?val=${c}`)
    for (let i = 0; i < 10; i++) await send('GET', '/r')
    await send('POST', `/w?val=${c + 100}`)
    for (let i = 0; i < 10; i++) await send('GET', '/r')
  }))
  t.equal(leaked, 0, 'x-tether-cache never reaches a client')
  await new Promise((resolve) => setTimeout(resolve, 1100)) // let the current second complete
  const stats = JSON.parse((await request(`${admin}/api/stats`)).body) as StatsBody
  const sum = (xs: number[] | undefined): number => (xs ?? []).reduce((x, y) => x + y, 0)
  let hits = 0
  let misses = 0
  for (const [i, name] of names.entries()) {
    const loads = (JSON.parse((await request(`${apps[i]!.url}/stats`)).body) as { loads: number }).loads - loadsBefore[i]!
    const s = stats.series.nodes[name]!
    t.equal(sum(s.cacheMisses), loads, `${name}: the misses the balancer counted are the ${loads} store loads the node made`)
    hits += sum(s.cacheHits)
    misses += sum(s.cacheMisses)
  }
  t.equal(hits + misses, readsWithCookie, `every request with a session cookie was reported once (${readsWithCookie})`)
  t.ok(hits > 0, `the near-cache served reads (${hits} hits, ${misses} misses)`)
  const rate = stats.summary.total.cacheHitRate
  t.ok(rate !== null && Math.abs(rate - hits / (hits + misses)) < 0.001, `the page's hit rate ${rate} is hits / reads`)

  const metrics = (await request(`${admin}/metrics`)).body
  const counted = (result: string): number => [...metrics.matchAll(new RegExp(`^tether_balancer_near_cache_reads_total\\{node="[ab]",result="${result}"\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0)
  t.equal(counted('hit'), hits, '/metrics agrees: hits')
  t.equal(counted('miss'), misses, '/metrics agrees: misses')
  const page = (await request(`${admin}/`)).body
  t.match(page, /data-cache="">\d+\.\d %</, 'the status page shows the hit rate, rendered on the server')
  t.match(page, /id="chart-cache"/)
})
