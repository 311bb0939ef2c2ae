// The proxy suite, run against every engine: correctness of forwarding (headers, bodies,
// framing, WebSocket), retries that never duplicate a write, timeouts and error answers.
// Real upstream processes on loopback; only the engine changes between runs.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { Agent } from 'node:http'
import WebSocket from 'ws'
import type { EngineName } from '../src/index.js'
import { startBalancer } from './helpers/balancer.js'
import { get, json, rawExchange, send, stickyCookie, type Seen } from './helpers/http.js'
import { deadPort, startBlackhole, startUpstream, startUpstreams } from './helpers/upstreams.js'
import { wsEcho, wsOpen } from './helpers/ws.js'

const ENGINES: EngineName[] = ['h1', 'undici', 'http-proxy']
const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0

const [a, b, c] = await startUpstreams(t, ['a', 'b', 'c'])
if (a === undefined || b === undefined || c === undefined) throw new Error('upstreams did not start')
const upstreams = [{ url: a.url, name: 'a' }, { url: b.url, name: 'b' }, { url: c.url, name: 'c' }]

for (const engine of ENGINES) {
  t.test(`engine ${engine}`, async (t) => {
    const { url } = await startBalancer(t, { engine, upstreams })

    t.test('forwards a GET and tells the app how it was routed', async (t) => {
      const res = await get(`${url}/hello?x=1`, { 'x-tether-route': 'sticky', 'x-tether-moved': '1', 'X-Tether-Evil': 'yes' })
      t.equal(res.status, 200)
      const seen = json<Seen>(res)
      t.equal(seen.url, '/hello?x=1', 'path and query pass unchanged')
      t.equal(seen.headers['x-tether-route'], 'new', 'client-sent x-tether-route is replaced')
      t.equal(seen.headers['x-tether-moved'], undefined, 'client-sent x-tether-moved is removed')
      t.equal(seen.headers['x-tether-evil'], undefined, 'any client-sent x-tether-* is removed')
      t.equal(seen.headers['x-tether-node'], seen.name, 'x-tether-node names the node that served')
      t.match(stickyCookie(res), /^tether_node=[\w-]{12}\.[\w-]{22}$/, 'inserts an opaque signed sticky cookie')
      t.notMatch(res.headers['set-cookie']?.join(';') ?? '', /127\.0\.0\.1|:\d{4,5}/, 'the cookie does not reveal the node address')
    })

    t.test('sets X-Forwarded-* and ignores client-sent ones from an untrusted peer', async (t) => {
      const res = await get(`${url}/`, { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6', host: 'shop.example' })
      const seen = json<Seen>(res)
      t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
      t.equal(seen.headers['x-forwarded-proto'], 'http')
      t.equal(seen.headers['x-forwarded-host'], 'shop.example')
      t.equal(seen.headers.host, 'shop.example', 'Host passes through unchanged')
      t.equal(seen.headers.forwarded, undefined)
      t.equal(seen.headers['x-real-ip'], undefined)
    })

    t.test('strips hop-by-hop headers both ways', async (t) => {
      const res = await get(`${url}/hop-by-hop`, {
        connection: 'keep-alive, x-secret',
        'x-secret': 'token',
        'keep-alive': 'timeout=9',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'proxy-connection': 'keep-alive',
        'x-kept': 'yes'
      })
      t.equal(res.status, 200)
      t.equal(res.headers['x-public'], 'visible')
      t.equal(res.headers['x-private'], undefined, 'a header the upstream listed in Connection is removed')
      t.equal(res.headers['proxy-authenticate'], undefined)
      t.equal(res.headers.trailer, undefined)
      const echo = json<Seen>(await get(`${url}/`, {
        connection: 'keep-alive, x-secret',
        'x-secret': 'token',
        'keep-alive': 'timeout=9',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'proxy-connection': 'keep-alive',
        'x-kept': 'yes'
      }))
      for (const h of ['x-secret', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection']) {
        t.equal(echo.headers[h], undefined, `${h} does not reach the upstream`)
      }
      t.equal(echo.headers['x-kept'], 'yes')
    })

    t.test('request bodies: content-length and chunked', async (t) => {
      const body = 'x'.repeat(100_000)
      const fixed = json<Seen>(await send(`${url}/echo`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } }))
      t.equal(fixed.bodyLength, body.length)
      t.equal(fixed.body, body)
      const chunked = json<Seen>(await send(`${url}/echo`, { method: 'PUT', body: 'hello chunks', headers: { 'transfer-encoding': 'chunked' } }))
      t.equal(chunked.body, 'hello chunks')
      t.equal(chunked.method, 'PUT')
    })

    t.test('response framing: chunked, large, HEAD, 204, 304', async (t) => {
      const chunked = await get(`${url}/chunked?parts=4`)
      t.equal(chunked.body.split('\n').filter(Boolean).length, 4)
      const big = await get(`${url}/big?bytes=3000000`)
      t.equal(big.body.length, 3_000_000, 'a 3 MB body arrives whole (backpressure path)')
      const head = await send(`${url}/big?bytes=1000`, { method: 'HEAD' })
      t.equal(head.status, 200)
      t.equal(head.body, '')
      t.equal(head.headers['content-length'], '1000', 'HEAD keeps the length the GET would have')
      const none = await get(`${url}/no-content`)
      t.equal(none.status, 204)
      t.equal(none.body, '')
      const notModified = await get(`${url}/not-modified`)
      t.equal(notModified.status, 304)
      t.equal(notModified.headers.etag, '"v1"')
    })

    t.test('keeps the upstream cookies next to its own', async (t) => {
      const res = await get(`${url}/set-cookie`)
      const cookies = res.headers['set-cookie'] ?? []
      t.ok(cookies.some((x) => x.startsWith('app=1')))
      t.ok(cookies.some((x) => x.startsWith('other=2')))
      t.ok(cookies.some((x) => x.startsWith('tether_node=')))
    })

    t.test('keep-alive on both sides: 60 requests on one client connection', async (t) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      t.teardown(() => agent.destroy())
      const names = new Set<string>()
      for (let i = 0; i < 60; i++) {
        const res = await send(`${url}/`, { agent })
        if (res.status !== 200) t.fail(`request ${i} answered ${res.status}`)
        names.add(json<Seen>(res).name)
      }
      t.same([...names].sort(), ['a', 'b', 'c'], 'round-robin spread them over every node')
    })

    t.test('WebSocket echo through the balancer, sticky', async (t) => {
      const wsUrl = url.replace('http:', 'ws:')
      const first = await wsOpen(`${wsUrl}/ws`)
      t.teardown(() => first.ws.close())
      t.equal(first.hello.headers['x-tether-route'], 'new')
      t.equal(first.hello.headers['x-tether-node'], first.hello.hello)
      t.equal(first.hello.headers['x-forwarded-for'], '127.0.0.1')
      t.equal(await wsEcho(first.ws, 'ping'), `${first.hello.hello}:ping`)
      const cookie = first.setCookie.find((x) => x.startsWith('tether_node='))?.split(';')[0]
      t.ok(cookie, 'the 101 response carries the sticky cookie')
      for (let i = 0; i < 3; i++) {
        const again = await wsOpen(`${wsUrl}/ws`, { cookie: cookie ?? '' })
        t.equal(again.hello.hello, first.hello.hello, 'a sticky WebSocket lands on the same node')
        t.equal(again.hello.headers['x-tether-route'], 'sticky')
        again.ws.close()
      }
    })

    t.test('an upstream declining the upgrade: its answer reaches the client', async (t) => {
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${url.replace('http:', 'ws:')}/ws-refuse`)
        ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate() })
        ws.on('open', () => reject(new Error('opened')))
        ws.on('error', () => {})
      })
      t.equal(status, 403)
    })

    t.test('an invalid answer to an upgrade is a protocol failure, as on plain requests', async (t) => {
      const { port, balancer } = await startBalancer(t, { engine, upstreams: [{ url: a.url, name: 'a' }] })
      const { data } = await rawExchange(port, (socket) => {
        socket.write('GET /ws-garbage HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
      })
      t.match(data, /^HTTP\/1\.1 502 /)
      t.match(data, /x-tether-error: TETHER_ERR_UPSTREAM_PROTOCOL/)
      t.match(balancer.nodes()[0], { requests: 1, errors: 1, activeConnections: 0 }, 'counted against the node, nothing left in flight')
    })

    t.test('upstream response timeout gives 504', async (t) => {
      const { url, logs } = await startBalancer(t, { engine, upstreams, timeouts: { response: '400ms' } })
      const started = Date.now()
      const res = await get(`${url}/slow?ms=5000`)
      t.equal(res.status, 504)
      t.equal(res.headers['x-tether-error'], 'TETHER_ERR_UPSTREAM_TIMEOUT')
      t.ok(Date.now() - started < 4500, 'within the response timeout, not the 5 s upstream delay')
      t.ok(logs.some((l) => l.phase === 'timeout'), 'logged')
    })

    t.test('a write is never sent twice; an idempotent request is retried', async (t) => {
      // Passive checks off, so that each failure does not shrink the set of nodes to retry on.
      const { url } = await startBalancer(t, { engine, upstreams: upstreams.map((u) => ({ ...u, maxFails: 0 })) })
      const before = await Promise.all([a.counts(), b.counts(), c.counts()])
      const post = await send(`${url}/crash`, { method: 'POST', body: 'order=1', headers: { 'content-type': 'text/plain' } })
      t.equal(post.status, 502)
      t.equal(post.headers['x-tether-error'], 'TETHER_ERR_UPSTREAM_RESET')
      const getRes = await get(`${url}/crash`)
      t.equal(getRes.status, 502)
      const after = await Promise.all([a.counts(), b.counts(), c.counts()])
      const delta = (key: string): number => after.reduce((sum, x, i) => sum + (x[key] ?? 0) - (before[i]?.[key] ?? 0), 0)
      t.equal(delta('POST /crash'), 1, 'the upstreams saw the POST exactly once')
      t.equal(delta('GET /crash'), 3, 'the GET was tried on every node (1 + 2 retries)')
    })

    t.test('connect failures are retried on another node, whatever the method', async (t) => {
      const dead = await deadPort()
      const { url: u, balancer } = await startBalancer(t, { engine, upstreams: [{ url: `http://127.0.0.1:${dead}`, name: 'dead' }, { url: a.url, name: 'a' }], algorithm: 'weighted-round-robin' })
      const first = await get(`${u}/`)
      t.equal(first.status, 200)
      const post = json<Seen>(await send(`${u}/echo`, { method: 'POST', body: 'pay=1' }))
      t.equal(post.name, 'a')
      t.equal(post.body, 'pay=1', 'the POST body survived the failed connect and was sent once')
      const dead1 = balancer.nodes().find((n) => n.name === 'dead')
      t.equal(dead1?.health, 'down', 'the passive check took the dead node out')
      t.ok((dead1?.errors ?? 0) >= 1)
    })

    t.test('a client that aborts mid-upload is not held against the node', async (t) => {
      const { port, balancer } = await startBalancer(t, { engine, upstreams })
      await rawExchange(port, (socket) => {
        socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial body')
        setTimeout(() => socket.destroy(), 150)
      })
      await new Promise((resolve) => setTimeout(resolve, 150))
      t.same(balancer.nodes().map((n) => [n.health, n.errors, n.activeConnections]), [['up', 0, 0], ['up', 0, 0], ['up', 0, 0]], 'no node was marked failed, nothing is left in flight')
      t.equal((await get(`http://127.0.0.1:${port}/`)).status, 200)
    })

    t.test('absolute-form request targets reach the app in origin-form', async (t) => {
      const { data } = await rawExchange(Number(new URL(url).port), (socket) => {
        socket.write('GET http://shop.example/abs?q=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n')
      })
      const body = data.slice(data.indexOf('\r\n\r\n') + 4)
      t.match(data, /^HTTP\/1\.1 200 /)
      t.equal((JSON.parse(body) as Seen).url, '/abs?q=1')
    })

    t.test('a hung connect times out and the next node answers', { skip: hasPython ? false : 'python3 is not installed: a hung connect cannot be made on loopback without it' }, async (t) => {
      const hole = await startBlackhole(t)
      if (hole === undefined) throw new Error('the blackhole listener did not start')
      const spec = { engine, timeouts: { connect: '300ms' } }
      const { url: u } = await startBalancer(t, { ...spec, upstreams: [{ url: `http://127.0.0.1:${hole}`, name: 'hole' }, { url: a.url, name: 'a' }] })
      const res = await get(`${u}/`)
      t.equal(res.status, 200)
      t.equal(json<Seen>(res).name, 'a', 'retried after the connect timeout')
      const alone = await startBalancer(t, { ...spec, upstreams: [{ url: `http://127.0.0.1:${hole}`, name: 'hole' }] })
      const started = Date.now()
      const failed = await get(`${alone.url}/`)
      t.equal(failed.status, 503)
      t.equal(failed.headers['x-tether-error'], 'TETHER_ERR_UPSTREAM_CONNECT')
      t.ok(Date.now() - started >= 250, 'after the connect timeout')
    })

    t.test('503 when no node is available', async (t) => {
      const dead = await deadPort()
      const { url: u, logs: l } = await startBalancer(t, { engine, upstreams: [{ url: `http://127.0.0.1:${dead}`, name: 'dead' }] })
      const res = await get(`${u}/`)
      t.equal(res.status, 503, 'the only node refuses connections')
      t.equal(res.headers['x-tether-error'], 'TETHER_ERR_UPSTREAM_CONNECT')
      const again = await get(`${u}/`)
      t.equal(again.status, 503, 'and once it is marked down, nothing is tried at all')
      t.equal(again.headers['x-tether-error'], 'TETHER_ERR_NO_UPSTREAM')
      t.match(again.body, /no upstream node is available/)
      t.ok(l.some((x) => x.code === 'TETHER_ERR_NO_UPSTREAM'), 'logged with its code')
    })
  })
}

t.test('trusted proxies: X-Forwarded-* are kept and extended', async (t) => {
  const { url } = await startBalancer(t, { upstreams, trustedProxies: ['127.0.0.0/8'] })
  const seen = json<Seen>(await get(`${url}/`, { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example', forwarded: 'for=203.0.113.7' }))
  t.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'https')
  t.equal(seen.headers['x-forwarded-host'], 'shop.example')
  t.equal(seen.headers.forwarded, 'for=203.0.113.7')
})

t.test('IPv6 end to end: client, balancer and upstream on ::1; ip-hash by /64', async (t) => {
  const v6 = await startUpstream(t, 'v6', '::1')
  const only = await startBalancer(t, { listen: '[::1]:0', upstreams: [{ url: v6.url, name: 'v6' }] })
  const seen = json<Seen>(await get(`http://[::1]:${only.port}/`))
  t.equal(seen.name, 'v6', 'an IPv6 upstream is reached')
  t.equal(seen.headers['x-forwarded-for'], '::1', 'the IPv6 peer address is forwarded')
  t.equal(only.balancer.nodes()[0]?.url, `http://[::1]:${v6.port}`)

  const hashed = await startBalancer(t, { listen: '[::1]:0', algorithm: 'ip-hash', sticky: false, upstreams: [{ url: v6.url, name: 'v6' }, { url: a.url, name: 'a' }, { url: b.url, name: 'b' }] })
  const names = new Set<string>()
  for (let i = 0; i < 6; i++) names.add(json<Seen>(await get(`http://[::1]:${hashed.port}/`)).name)
  t.equal(names.size, 1, 'ip-hash keeps an IPv6 client on one node without any cookie')
})

t.test('ip-hash uses X-Forwarded-For only behind a trusted proxy', async (t) => {
  const spec = { algorithm: 'ip-hash' as const, sticky: false as const, upstreams }
  const clients = Array.from({ length: 24 }, (_, i) => `198.51.100.${i + 1}`)
  const route = async (url: string, xff: string): Promise<string> => json<Seen>(await get(`${url}/`, { 'x-forwarded-for': xff })).name

  const trusted = await startBalancer(t, { ...spec, trustedProxies: ['127.0.0.1'] })
  const spread = new Set<string>()
  for (const client of clients) {
    const first = await route(trusted.url, client)
    if (await route(trusted.url, client) !== first) t.fail(`${client} moved between two requests`)
    spread.add(first)
  }
  t.equal(spread.size, 3, 'behind a trusted proxy, each client is hashed on its own address')

  const untrusted = await startBalancer(t, spec)
  const one = new Set<string>()
  for (const client of clients.slice(0, 8)) one.add(await route(untrusted.url, client))
  t.equal(one.size, 1, 'from an untrusted peer, a forged X-Forwarded-For does not steer the hash')
})
