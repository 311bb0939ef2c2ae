// Lifecycle and bad clients: slowloris and malformed requests get a coded answer and a log
// line; reload swaps configuration without dropping connections; close() lets in-flight
// requests finish, then closes everything within its bound; listen errors are typed.
import t from 'tap'
import { Agent } from 'node:http'
import { connect } from 'node:net'
import WebSocket from 'ws'
import { createBalancer } from '../src/index.js'
import { SECRET, startBalancer } from './helpers/balancer.js'
import { get, json, keepAliveSocket, rawExchange, send, type Seen } from './helpers/http.js'
import { startUpstreams } from './helpers/upstreams.js'

const [a, b] = await startUpstreams(t, ['a', 'b'])
if (a === undefined || b === undefined) throw new Error('no upstreams')
const upstreams = [{ url: a.url, name: 'a' }, { url: b.url, name: 'b' }]

t.test('slowloris: headers that trickle in are cut off with 408', async (t) => {
  const { port, logs } = await startBalancer(t, { upstreams, timeouts: { clientHeaders: '400ms' } })
  const { data, closedAfterMs } = await rawExchange(port, (socket) => {
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n')
    const timer = setInterval(() => { if (socket.writable) socket.write('X-Slow: 1\r\n') }, 100)
    socket.on('close', () => clearInterval(timer))
  })
  t.match(data, /^HTTP\/1\.1 408 /)
  t.match(data, /TETHER_ERR_CLIENT_HEADER_TIMEOUT/)
  t.ok(closedAfterMs >= 350 && closedAfterMs < 5000, `closed after ${closedAfterMs} ms`)
  t.ok(logs.some((l) => l.code === 'TETHER_ERR_CLIENT_HEADER_TIMEOUT'), 'logged with its code')
})

t.test('malformed requests: 400 and 431 with codes, never a hang', async (t) => {
  const { port, logs } = await startBalancer(t, { upstreams })
  const garbage = await rawExchange(port, (s) => s.write('THIS IS NOT HTTP\r\n\r\n'))
  t.match(garbage.data, /^HTTP\/1\.1 400 [\s\S]*TETHER_ERR_CLIENT_BAD_REQUEST/)
  const smuggle = await rawExchange(port, (s) => s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'))
  t.match(smuggle.data, /^HTTP\/1\.1 400 /, 'Content-Length with Transfer-Encoding is refused')
  const huge = await rawExchange(port, (s) => s.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`))
  t.match(huge.data, /^HTTP\/1\.1 431 [\s\S]*TETHER_ERR_CLIENT_HEADERS_TOO_LARGE/)
  t.ok(logs.some((l) => l.code === 'TETHER_ERR_CLIENT_BAD_REQUEST'))
  t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200, 'and the balancer still serves')
})

t.test('reload changes weights, algorithm and nodes without dropping connections', async (t) => {
  const { url, balancer, logs } = await startBalancer(t, { upstreams })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const slow = send(`${url}/slow?ms=400`, { agent })
  await new Promise((resolve) => setTimeout(resolve, 100))
  balancer.reload({ listen: '127.0.0.1:0', sticky: { secret: SECRET }, upstreams: [{ url: a.url, name: 'a', weight: 3 }], algorithm: 'least-connections', engine: 'undici' })
  const inFlight = await slow
  t.equal(inFlight.status, 200, 'a request in flight across the reload completes')
  const after = await send(`${url}/`, { agent })
  t.equal(json<Seen>(after).name, 'a', 'the new configuration serves the next request on the same client connection')
  t.same(balancer.nodes().map((n) => [n.name, n.weight]), [['a', 3]])
  t.equal(balancer.config.algorithm, 'least-connections')
  t.ok(logs.some((l) => l.msg === 'configuration reloaded'))
  t.ok(logs.some((l) => l.node === 'b' && l.to === 'absent'), 'the removed node is logged')
})

t.test('an invalid reload is rejected and the old configuration stays', async (t) => {
  const { url, balancer } = await startBalancer(t, { upstreams })
  t.throws(() => balancer.reload({ upstreams: [{ url: a.url, weight: 0 }] }), { code: 'TETHER_ERR_CONFIG_INVALID' })
  t.equal(balancer.nodes().length, 2)
  t.equal((await get(`${url}/`)).status, 200)
})

t.test('a runtime change survives a reload unless the file changed that field', async (t) => {
  const { balancer } = await startBalancer(t, { upstreams })
  balancer.setNode('a', { state: 'drain', weight: 7 })
  balancer.reload({ listen: '127.0.0.1:0', sticky: { secret: SECRET }, upstreams: [{ url: a.url, name: 'a' }, { url: b.url, name: 'b', weight: 4 }] })
  t.same(balancer.nodes().map((n) => [n.name, n.state, n.weight]), [['a', 'drain', 7], ['b', 'active', 4]])
  balancer.reload({ listen: '127.0.0.1:0', sticky: { secret: SECRET }, upstreams: [{ url: a.url, name: 'a', state: 'maint' }, { url: b.url, name: 'b', weight: 4 }] })
  t.equal(balancer.nodes()[0]?.state, 'maint', 'the file changed the state: the file wins')
})

t.test('close(): stops accepting, finishes in-flight requests, closes tunnels', async (t) => {
  const { url, port, balancer, logs } = await startBalancer(t, { upstreams, timeouts: { shutdown: '5s' } })
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
  await new Promise((resolve, reject) => { ws.once('message', resolve); ws.once('error', reject) })
  const wsClosed = new Promise((resolve) => ws.once('close', resolve))
  const slow = get(`${url}/slow?ms=500`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  const closing = balancer.close()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const refused = await get(`${url}/`).then((r) => r.status, (err: NodeJS.ErrnoException) => err.code)
  t.equal(refused, 'ECONNREFUSED', 'no new connections once closing')
  const res = await slow
  t.equal(res.status, 200, 'the in-flight request finished')
  t.equal(res.headers.connection, 'close', 'and told its client the connection closes')
  await closing
  await wsClosed
  t.ok(Date.now() - started < 4500, 'closed as soon as the last request finished')
  t.notOk(logs.some((l) => /shutdown timeout/.test(String(l.msg))), 'without waiting for the shutdown deadline')
  await t.resolves(balancer.close(), 'close() twice is fine')
})

t.test('drain: a request on an idle keep-alive connection is served with Connection: close, never reset', async (t) => {
  const { port, url, balancer } = await startBalancer(t, { upstreams, timeouts: { shutdown: '8s', clientKeepAlive: '3s' } })
  const conns = await Promise.all(Array.from({ length: 6 }, () => keepAliveSocket(() => connect(port, '127.0.0.1'))))
  t.teardown(() => { for (const c of conns) c.socket.destroy() })
  // Each connection serves one request and is then idle, kept alive.
  for (const c of conns) t.match(await c.request('/'), /^HTTP\/1\.1 200[^]*connection: keep-alive/i, 'kept alive before the drain')
  // A request in flight keeps the drain going.
  const slow = get(`${url}/slow?ms=1500`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const closing = balancer.close()
  // During the drain, five of the idle connections send a request, spread over a second; the
  // sixth stays idle and must be ended by its keep-alive timeout, cleanly.
  const answers = await Promise.all(conns.slice(0, 5).map(async (c, i) => {
    await new Promise((resolve) => setTimeout(resolve, i * 250))
    return c.request('/').catch((err: Error) => err.message)
  }))
  for (const answer of answers) {
    t.match(answer, /^HTTP\/1\.1 200[^]*connection: close/i, 'served, and told the connection closes')
  }
  const ends = await Promise.all(conns.map((c) => c.ended))
  t.same(ends, Array(6).fill('end'), 'every connection ended with a FIN: 0 resets')
  t.equal((await slow).status, 200, 'the request in flight finished')
  await closing
})

t.test('close() is bounded by timeouts.shutdown', async (t) => {
  const { url, balancer } = await startBalancer(t, { upstreams, timeouts: { shutdown: '300ms' } })
  const stuck = get(`${url}/slow?ms=5000`).then((r) => r.status, (err: NodeJS.ErrnoException) => err.code)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  await balancer.close()
  const took = Date.now() - started
  t.ok(took >= 250 && took < 4000, `close took ${took} ms, bounded by the 300 ms deadline, not the 5 s request`)
  t.equal(await stuck, 'ECONNRESET', 'the request still in flight at the deadline is cut')
})

t.test('listen errors are typed', async (t) => {
  const { port } = await startBalancer(t, { upstreams })
  const clash = createBalancer({ listen: `127.0.0.1:${port}`, upstreams, log: { level: 'silent' } })
  await t.rejects(clash.listen(), { code: 'TETHER_ERR_LISTEN', message: new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`) })
  await clash.close()
  await t.rejects(clash.listen(), { code: 'TETHER_ERR_NOT_LISTENING' })
  t.throws(() => createBalancer({ upstreams: [] }), { code: 'TETHER_ERR_CONFIG_INVALID' })
})

t.test('access log: one line per request when enabled, none otherwise', async (t) => {
  const on = await startBalancer(t, { upstreams, log: { accessLog: true } })
  await get(`${on.url}/some/path?x=1`)
  const line = on.logs.find((l) => l.access === true)
  t.match(line, { msg: 'request', method: 'GET', url: '/some/path?x=1', status: 200, route: 'new', node: /^[ab]$/, attempts: 1, client: '127.0.0.1' })
  t.type(line?.ms, 'number')
  const off = await startBalancer(t, { upstreams })
  await get(`${off.url}/`)
  t.notOk(off.logs.some((l) => l.access === true))
})
