// The admin API: node listing, runtime state and weight changes, bad input with codes, the
// bearer token (constant-time, Basic for browsers), loopback binding by default, the Host
// check against DNS rebinding, Prometheus metrics on the balancer's own registry, and the
// HTML status page with working buttons' targets.
import t from 'tap'
import { register } from 'prom-client'
import { startBalancer } from './helpers/balancer.js'
import { get, json, send, waitFor, type Seen } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'

const [a, b] = await startUpstreams(t, ['a', 'b'])
if (a === undefined || b === undefined) throw new Error('no upstreams')
const upstreams = [{ url: a.url, name: 'a' }, { url: b.url, name: 'b', weight: 2 }]

interface NodeJson { name: string, state: string, weight: number, health: string, status: string, activeConnections: number, requests: number, errors: number, lastCheck: unknown }

const patch = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  send(url, { method: 'PATCH', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } })

t.test('lists nodes and changes state and weight at runtime', async (t) => {
  const { url, adminUrl, balancer, logs } = await startBalancer(t, { upstreams, admin: { listen: 0 } })
  for (let i = 0; i < 3; i++) await get(`${url}/`)
  const list = json<{ nodes: NodeJson[] }>(await get(`${adminUrl}/api/nodes`))
  t.same(list.nodes.map((n) => [n.name, n.state, n.weight, n.health, n.status]), [['a', 'active', 1, 'up', 'up'], ['b', 'active', 2, 'up', 'up']])
  t.equal(list.nodes.reduce((sum, n) => sum + n.requests, 0), 3, 'request counters')
  t.match(list.nodes[0], { activeConnections: 0, errors: 0, lastCheck: null })

  const drained = await patch(`${adminUrl}/api/nodes/a`, { state: 'drain', weight: 5 })
  t.equal(drained.status, 200)
  t.match(json(drained), { name: 'a', state: 'drain', weight: 5, status: 'drain' })
  t.equal(balancer.nodes().find((n) => n.name === 'a')?.state, 'drain')
  t.ok(logs.some((l) => l.msg === 'node updated through the admin API' && l.node === 'a'), 'logged')
  const seen = await Promise.all(Array.from({ length: 6 }, async () => json<Seen>(await get(`${url}/`)).name))
  t.notOk(seen.includes('a'), 'no new client reaches the drained node')

  t.match(json(await get(`${adminUrl}/api/nodes/b`)), { name: 'b', weight: 2 })
  t.match(json(await get(`${adminUrl}/api/health`)), { status: 'ok', nodes: 2, nodesUp: 2 })
})

t.test('bad admin requests get a code and a status, and are logged', async (t) => {
  const { adminUrl, logs } = await startBalancer(t, { upstreams, admin: { listen: 0 } })
  const cases: Array<[string, () => Promise<{ status: number, body: string }>, number, string]> = [
    ['unknown node', () => patch(`${adminUrl}/api/nodes/zzz`, { state: 'drain' }), 404, 'TETHER_ERR_UNKNOWN_NODE'],
    ['unknown node GET', () => get(`${adminUrl}/api/nodes/zzz`), 404, 'TETHER_ERR_UNKNOWN_NODE'],
    ['bad state', () => patch(`${adminUrl}/api/nodes/a`, { state: 'off' }), 400, 'TETHER_ERR_INVALID_NODE_UPDATE'],
    ['weight zero', () => patch(`${adminUrl}/api/nodes/a`, { weight: 0 }), 400, 'TETHER_ERR_INVALID_NODE_UPDATE'],
    ['weight text', () => patch(`${adminUrl}/api/nodes/a`, { weight: 'heavy' }), 400, 'TETHER_ERR_INVALID_NODE_UPDATE'],
    ['unknown field', () => patch(`${adminUrl}/api/nodes/a`, { colour: 'red' }), 400, 'TETHER_ERR_INVALID_NODE_UPDATE'],
    ['empty update', () => patch(`${adminUrl}/api/nodes/a`, {}), 400, 'TETHER_ERR_INVALID_NODE_UPDATE'],
    ['not JSON', () => patch(`${adminUrl}/api/nodes/a`, '{state:'), 400, 'TETHER_ERR_ADMIN_BAD_REQUEST'],
    ['JSON array', () => patch(`${adminUrl}/api/nodes/a`, '[1]'), 400, 'TETHER_ERR_ADMIN_BAD_REQUEST'],
    ['form encoding', () => send(`${adminUrl}/api/nodes/a`, { method: 'PATCH', body: 'state=drain', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 400, 'TETHER_ERR_ADMIN_BAD_REQUEST'],
    ['body too large', () => patch(`${adminUrl}/api/nodes/a`, JSON.stringify({ state: 'x'.repeat(20_000) })), 400, 'TETHER_ERR_ADMIN_BAD_REQUEST'],
    ['POST on a node', () => send(`${adminUrl}/api/nodes/a`, { method: 'POST' }), 405, 'TETHER_ERR_ADMIN_METHOD'],
    ['DELETE on nodes', () => send(`${adminUrl}/api/nodes`, { method: 'DELETE' }), 405, 'TETHER_ERR_ADMIN_METHOD'],
    ['no such route', () => get(`${adminUrl}/api/unknown`), 404, 'TETHER_ERR_ADMIN_NOT_FOUND']
  ]
  for (const [name, call, status, code] of cases) {
    const res = await call().catch((err: Error) => ({ status: -1, body: err.message }))
    t.equal(res.status, status, `${name}: status`)
    t.match(res.body, code, `${name}: code in the body`)
  }
  t.ok(logs.some((l) => l.code === 'TETHER_ERR_UNKNOWN_NODE'), 'failures are logged with their code')
})

t.test('bearer token: required everywhere, compared safely, Basic accepted for browsers', async (t) => {
  const token = 'admin-token-0123456789abcdef'
  const { adminUrl } = await startBalancer(t, { upstreams, admin: { listen: 0, token } })
  for (const path of ['/', '/api/nodes', '/metrics', '/api/health']) {
    const res = await get(`${adminUrl}${path}`)
    t.equal(res.status, 401, `${path} without a token`)
    t.match(res.headers['www-authenticate'], /Basic realm="tether-balancer"/)
  }
  const wrong: Array<Record<string, string>> = [
    { authorization: 'Bearer wrong' },
    { authorization: `Bearer ${token}x` },
    { authorization: `Bearer ${token.slice(0, -1)}` },
    { authorization: token },
    { authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` }
  ]
  for (const headers of wrong) t.equal((await get(`${adminUrl}/api/nodes`, headers)).status, 401, JSON.stringify(headers))
  t.equal((await get(`${adminUrl}/api/nodes`, { authorization: `Bearer ${token}` })).status, 200)
  t.equal((await get(`${adminUrl}/api/nodes`, { authorization: `bearer ${token}` })).status, 200, 'scheme is case-insensitive')
  t.equal((await get(`${adminUrl}/`, { authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` })).status, 200, 'Basic with the token as password')
  const changed = await patch(`${adminUrl}/api/nodes/b`, { state: 'maint' }, { authorization: `Bearer ${token}` })
  t.equal(changed.status, 200)
  t.equal((await get(`${adminUrl}/api/nodes`, { authorization: `Bearer ${token}`, host: 'evil.example' })).status, 200, 'with a token, any Host may call')
})

t.test('binds to 127.0.0.1 by default and refuses foreign Host headers without a token', async (t) => {
  const { balancer, adminUrl, adminPort } = await startBalancer(t, { upstreams, admin: { listen: 0 } })
  t.equal(balancer.config.admin?.listen.host, '127.0.0.1')
  const viaOther = await get(`http://127.0.0.2:${adminPort ?? 0}/api/nodes`).then((r) => r.status, (err: NodeJS.ErrnoException) => err.code)
  t.equal(viaOther, 'ECONNREFUSED', 'not reachable on another address')
  t.equal((await get(`${adminUrl}/api/nodes`, { host: 'attacker.example' })).status, 403, 'DNS rebinding: foreign Host refused')
  t.equal((await get(`${adminUrl}/api/nodes`, { host: `localhost:${adminPort ?? 0}` })).status, 200)
  t.equal((await get(`${adminUrl}/api/nodes`, { host: `[::1]:${adminPort ?? 0}` })).status, 200)
  const allowed = await startBalancer(t, { upstreams, admin: { listen: 0, allowedHosts: ['lb.internal'] } })
  t.equal((await get(`${allowed.adminUrl}/api/nodes`, { host: 'lb.internal:9090' })).status, 200, 'allowedHosts')
})

t.test('metrics: own registry, per-node counters, latency histogram, routes', async (t) => {
  const { url, adminUrl } = await startBalancer(t, { upstreams, admin: { listen: 0 } })
  const first = await get(`${url}/`)
  const cookie = first.headers['set-cookie']?.[0]?.split(';')[0] ?? ''
  await get(`${url}/`, { cookie })
  await get(`${url}/`, { cookie })
  const res = await get(`${adminUrl}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  const text = res.body
  t.match(text, /tether_balancer_requests_total\{node="a"\} \d+/)
  t.match(text, /tether_balancer_requests_total\{node="b"\} \d+/)
  t.match(text, /tether_balancer_errors_total\{node="a"\} 0/)
  t.match(text, /tether_balancer_active_connections\{node="a"\} 0/)
  t.match(text, /tether_balancer_node_up\{node="a"\} 1/)
  t.match(text, /tether_balancer_node_weight\{node="b"\} 2/)
  t.match(text, /tether_balancer_node_state\{node="a",state="active"\} 1/)
  t.match(text, /tether_balancer_upstream_latency_seconds_bucket\{le="0\.005",node="[ab]"\} \d+/)
  t.match(text, /tether_balancer_upstream_latency_seconds_count\{node="[ab]"\} \d+/)
  t.match(text, /tether_balancer_routes_total\{route="new"\} 1/)
  t.match(text, /tether_balancer_routes_total\{route="sticky"\} 2/)
  t.match(text, /tether_balancer_process_cpu_seconds_total/)
  const total = [...text.matchAll(/tether_balancer_requests_total\{node="[ab]"\} (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0)
  t.equal(total, 3)
  t.notMatch(await register.metrics(), /tether_balancer/, 'nothing lands in prom-client\'s global registry')
})

t.test('status page: self-contained HTML with every node and working button targets', async (t) => {
  const { adminUrl, balancer } = await startBalancer(t, { upstreams, admin: { listen: 0 }, healthCheck: { path: '/health', interval: '100ms' } })
  balancer.setNode('b', { state: 'maint' })
  await waitFor(() => balancer.nodes().every((n) => n.lastCheck?.ok === true), 8000, 'a good check on every node')
  const res = await get(`${adminUrl}/`)
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.headers['content-security-policy'], /script-src 'sha256-[\w+/=]+'/)
  t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/)
  const html = res.body
  t.notMatch(html, /<(script|link|img)[^>]+(src|href)=["']?https?:/, 'no external assets')
  for (const name of ['a', 'b']) {
    t.match(html, `data-node-row="${name}"`)
    for (const state of ['active', 'drain', 'maint']) t.match(html, `data-node="${name}" data-state="${state}"`)
  }
  t.match(html, /data-node-row="b"[\s\S]*?data-field="state">maint</, 'b shows maint')
  t.match(html, /data-node-row="a"[\s\S]*?data-field="health" class="ok">up/)
  t.match(html, /data-node-row="a"[\s\S]*?data-field="last-check"><span class="ok">OK 200/, 'last check shown')
  for (const column of ['Status', 'State', 'Health', 'Weight', 'Active', 'Requests', 'Errors', 'Last check']) t.match(html, `<th scope="col">${column}</th>`)
  t.match(html, /fetch\('api\/nodes\/' \+ encodeURIComponent/, 'buttons call the admin API')
  // What the buttons send works:
  t.equal((await patch(`${adminUrl}/api/nodes/b`, { state: 'active' })).status, 200)
  t.match(html, /<script>[\s\S]*<\/script>/)
})
