// Several balancers, one routing: two tether-balancer processes with the same configuration and
// secret, in front of the same nodes, send a client to the same node whichever one it reaches,
// with no state shared between them (as behind DNS round-robin or an L4 balancer).
import t from 'tap'
import { SECRET } from './helpers/balancer.js'
import { assertBuilt, listening, run } from './helpers/cli.js'
import { get, json, stickyCookie, type Seen } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'

assertBuilt()
const ups = await startUpstreams(t, ['a', 'b', 'c'])
const upstreamArgs = ups.flatMap((u) => ['-u', `${u.url},name=${u.name}`])

async function replicas (args: string[]): Promise<[string, string]> {
  // One process each: the bounded-load spill compares each replica's own view of the load.
  const common = ['--listen', '127.0.0.1:0', '--workers', '1', '--log-level', 'info', ...upstreamArgs, ...args]
  const one = run(t, common, { TETHER_STICKY_SECRET: SECRET })
  const two = run(t, common, { TETHER_STICKY_SECRET: SECRET })
  const [p1, p2] = await Promise.all([listening(one), listening(two)])
  return [`http://127.0.0.1:${p1.port}`, `http://127.0.0.1:${p2.port}`]
}

t.test('a sticky cookie from one replica routes to the same node on the other', async (t) => {
  const [one, two] = await replicas([])
  for (let i = 0; i < 6; i++) {
    const first = await get(`${one}/`)
    const cookie = stickyCookie(first)
    if (cookie === undefined) throw new Error('no sticky cookie')
    const node = json<Seen>(first).name
    const other = await get(`${two}/`, { cookie })
    t.equal(json<Seen>(other).name, node, `client ${i}: the other replica sends it to ${node}`)
    t.equal(json<Seen>(other).headers['x-tether-route'], 'sticky')
    t.equal(stickyCookie(other), undefined, 'and does not rewrite the cookie')
  }
})

t.test('ip-hash with bounded loads: both replicas choose the same node for each client', async (t) => {
  const [one, two] = await replicas(['--algorithm', 'ip-hash', '--no-sticky', '--trusted-proxy', '127.0.0.1', '--hash-balance-factor', '150'])
  const nodes = new Set<string>()
  for (let i = 0; i < 30; i++) {
    const client = `203.0.113.${i + 1}`
    const a = json<Seen>(await get(`${one}/`, { 'x-forwarded-for': client })).name
    const b = json<Seen>(await get(`${two}/`, { 'x-forwarded-for': client })).name
    if (a !== b) t.fail(`${client}: ${a} on one replica, ${b} on the other`)
    nodes.add(a)
  }
  t.equal(nodes.size, 3, 'the clients are spread over every node, identically on both replicas')
})
