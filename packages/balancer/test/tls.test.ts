// TLS termination and HTTP/2 at the front door, with real handshakes: certificates made by
// openssl for the test (ECDSA P-256), node:tls, node:https and node:http2 clients, curl when
// installed, and the hostile clients a public port meets (plain HTTP, a handshake cut short,
// the HTTP/2 rapid-reset pattern).
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'
import { copyFileSync, writeFileSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { join } from 'node:path'
import WebSocket from 'ws'
import { createBalancer, type TetherBalancerError } from '../src/index.js'
import { startBalancer } from './helpers/balancer.js'
import { get, json, rawExchange, waitFor, type Seen } from './helpers/http.js'
import { h2Send, h2Session, handshake, hasOpenssl, httpsSend, makeCert, tempDir } from './helpers/tls.js'
import { startUpstreams } from './helpers/upstreams.js'

const execFileAsync = promisify(execFile)

if (!hasOpenssl) {
  t.plan(0, 'openssl is not installed: no certificates to test with')
} else {
  const dir = tempDir(t)
  const main = makeCert(dir, 'main', ['localhost', '127.0.0.1'])
  const shop = makeCert(dir, 'shop', ['shop.test', '*.shop.test'])
  const renewed = makeCert(dir, 'renewed', ['localhost', '127.0.0.1'])
  // The files the balancer reads: copies, so that a test can "renew" them in place.
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') }
  copyFileSync(main.cert, live.cert)
  copyFileSync(main.key, live.key)
  const ca = [main.pem, shop.pem, renewed.pem].join('\n')

  const [a, b] = await startUpstreams(t, ['a', 'b'])
  if (a === undefined || b === undefined) throw new Error('upstreams did not start')
  const upstreams = [{ url: a.url, name: 'a' }, { url: b.url, name: 'b' }]

  const tlsConfig = { cert: live.cert, key: live.key, sni: [{ cert: shop.cert, key: shop.key }], hsts: '4320h', redirectHttp: '127.0.0.1:0', http2: { maxResetsPerSecond: 2 } }
  const lb = await startBalancer(t, { upstreams, listen: { port: '127.0.0.1:0', tls: tlsConfig } })
  const port = lb.port
  const base = `https://127.0.0.1:${port}`

  t.test('SNI picks the certificate; names no certificate has get the default', async (t) => {
    t.equal((await handshake(port, { servername: 'shop.test' })).cert.subject.CN, 'shop.test')
    t.equal((await handshake(port, { servername: 'www.shop.test' })).cert.subject.CN, 'shop.test', 'a wildcard covers one label')
    t.equal((await handshake(port, { servername: 'a.b.shop.test' })).cert.subject.CN, 'localhost', 'but not two')
    t.equal((await handshake(port, { servername: 'other.test' })).cert.subject.CN, 'localhost')
    t.equal((await handshake(port)).cert.subject.CN, 'localhost', 'no SNI at all (an IP address)')
  })

  t.test('ALPN offers h2 and http/1.1; TLS 1.2 is the oldest version', async (t) => {
    t.equal((await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn, 'h2')
    t.equal((await handshake(port, { ALPNProtocols: ['http/1.1'] })).alpn, 'http/1.1')
    t.equal((await handshake(port, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2')
    t.equal((await handshake(port)).protocol, 'TLSv1.3')
    await t.rejects(handshake(port, { maxVersion: 'TLSv1.2', minVersion: 'TLSv1', ALPNProtocols: ['http/1.1'] }).then(() => handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' as 'TLSv1.2' })), 'TLS 1.1 is refused')
  })

  t.test('HTTPS over HTTP/1.1: X-Forwarded-Proto https, a Secure sticky cookie, HSTS', async (t) => {
    const res = await httpsSend(`${base}/hello`, { ca })
    t.equal(res.status, 200)
    const seen = json<Seen>(res)
    t.equal(seen.headers['x-forwarded-proto'], 'https')
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    t.match(res.headers['set-cookie']?.[0] ?? '', /^tether_node=[\w-]+\.[\w-]+; .*; Secure/, 'the sticky cookie is Secure on a TLS listener')
    t.equal(res.headers['strict-transport-security'], 'max-age=15552000')
    const cookie = (res.headers['set-cookie']?.[0] ?? '').split(';')[0] ?? ''
    const again = json<Seen>(await httpsSend(`${base}/`, { ca, headers: { cookie } }))
    t.equal(again.name, seen.name, 'the cookie keeps the client on its node')
    t.equal(again.headers['x-tether-route'], 'sticky')
  })

  t.test('HTTP/2: streams are forwarded as HTTP/1.1 requests with the same routing and headers', async (t) => {
    const session = h2Session(t, port, ca)
    const first = await h2Send(session, '/h2?x=1', { headers: { 'x-tether-route': 'forged', cookie: ['a=1', 'b=2'] } })
    t.equal(first.status, 200)
    const seen = json<Seen>({ status: first.status, headers: {}, rawHeaders: [], body: first.body })
    t.equal(seen.url, '/h2?x=1')
    t.match(seen.headers.host, new RegExp(`^(localhost|127\\.0\\.0\\.1):${port}$`), ':authority becomes Host')
    t.equal(seen.headers['x-forwarded-proto'], 'https')
    t.equal(seen.headers['x-tether-route'], 'new', 'client-sent x-tether-* are replaced')
    t.equal(seen.headers.cookie, 'a=1; b=2', 'cookie crumbs are joined into one header')
    t.notOk(seen.rawHeaders.some((h) => h.startsWith(':')), 'no pseudo-header reaches the node')
    const setCookie = first.headers['set-cookie'] as string[] | undefined
    t.match(setCookie?.[0] ?? '', /; Secure/)
    t.equal(first.headers['strict-transport-security'], 'max-age=15552000')
    const cookie = (setCookie?.[0] ?? '').split(';')[0] ?? ''
    const names = new Set<string>()
    for (let i = 0; i < 6; i++) names.add(json<Seen>({ status: 200, headers: {}, rawHeaders: [], body: (await h2Send(session, '/', { headers: { cookie } })).body }).name)
    t.same([...names], [seen.name], 'sticky over h2')
    // A body without content-length (DATA frames only) arrives whole, framed as chunked.
    const posted = await h2Send(session, '/echo', { method: 'POST', body: 'x'.repeat(100_000) })
    const echo = json<Seen>({ status: 200, headers: {}, rawHeaders: [], body: posted.body })
    t.equal(echo.bodyLength, 100_000)
    t.equal(echo.headers['transfer-encoding'], 'chunked')
    // Several streams at once on one connection.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => h2Send(session, `/status?code=200&i=${i}`)))
    t.same(many.map((r) => r.status), Array(20).fill(200))
  })

  t.test('HTTP/2: an upstream failure is answered with the same coded error', async (t) => {
    const dead = await startBalancer(t, { upstreams: ['http://127.0.0.1:1'], retries: 0, listen: { port: '127.0.0.1:0', tls: { cert: main.cert, key: main.key } } })
    const session = h2Session(t, dead.port, ca)
    const res = await h2Send(session, '/')
    t.equal(res.status, 503)
    t.equal(res.headers['x-tether-error'], 'TETHER_ERR_UPSTREAM_CONNECT')
  })

  for (const engine of ['h1', 'undici', 'http-proxy'] as const) {
    t.test(`engine ${engine} behind h2 and HTTPS clients: forwarding, bodies, retries, timeouts`, async (t) => {
      const dead = 'http://127.0.0.1:1'
      const e = await startBalancer(t, { engine, upstreams: [{ url: dead, name: 'dead' }, ...upstreams], algorithm: 'weighted-round-robin', timeouts: { response: '1s' }, listen: { port: '127.0.0.1:0', tls: { cert: main.cert, key: main.key } } })
      const session = h2Session(t, e.port, ca)
      const seen = await Promise.all(Array.from({ length: 6 }, async () => json<Seen>({ status: 200, headers: {}, rawHeaders: [], body: (await h2Send(session, '/')).body })))
      t.ok(seen.every((s) => s.name === 'a' || s.name === 'b'), 'a connect failure on the dead node is retried on another')
      const posted = await h2Send(session, '/echo', { method: 'POST', headers: { 'content-length': '5' }, body: 'hello' })
      t.equal(json<Seen>({ status: 200, headers: {}, rawHeaders: [], body: posted.body }).body, 'hello', 'a body with content-length')
      const chunked = await h2Send(session, '/echo', { method: 'PUT', body: 'y'.repeat(50_000) })
      t.equal(json<Seen>({ status: 200, headers: {}, rawHeaders: [], body: chunked.body }).bodyLength, 50_000, 'a body without length')
      const slow = await h2Send(session, '/slow?ms=3000')
      t.equal(slow.status, 504, 'timeouts.response answers 504 over h2')
      t.equal(slow.headers['x-tether-error'], 'TETHER_ERR_UPSTREAM_TIMEOUT')
      const big = await h2Send(session, '/big?bytes=1000000')
      t.equal(big.body.length, 1_000_000, 'a large response streams whole')
      const https = await httpsSend(`https://127.0.0.1:${e.port}/echo`, { ca, method: 'POST', body: 'over h1', headers: { 'content-type': 'text/plain' } })
      t.equal(json<Seen>(https).body, 'over h1', 'HTTPS/1.1 with a body')
    })
  }

  t.test('WebSocket keeps working over HTTP/1.1 on the TLS port (wss)', async (t) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, { ca })
    const hello = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d) => resolve(String(d)))
      ws.once('error', reject)
    })
    t.match(hello, /hello/)
    const echoed = await new Promise<string>((resolve) => { ws.once('message', (d) => resolve(String(d))); ws.send('over tls') })
    t.match(echoed, /over tls$/)
    ws.close()
  })

  t.test('curl --http2 negotiates h2 and gets an answer', { skip: spawnSync('curl', ['--version']).stdout?.toString().includes('HTTP2') !== true && 'curl with HTTP/2 is not installed' }, async (t) => {
    // Asynchronously: the balancer answering curl runs in this process.
    const out = await execFileAsync('curl', ['-s', '--http2', '--cacert', main.cert, '--resolve', `localhost:${port}:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://localhost:${port}/`], { timeout: 20_000 })
    t.equal(out.stdout, '2 200')
    const h1 = await execFileAsync('curl', ['-s', '--http1.1', '--cacert', main.cert, '--resolve', `localhost:${port}:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://localhost:${port}/`], { timeout: 20_000 })
    t.equal(h1.stdout, '1.1 200')
  })

  t.test('the HTTP listener redirects to https with 308', async (t) => {
    const redirectPort = (await lb.balancer.listen()).redirectPort
    const res = await get(`http://127.0.0.1:${redirectPort ?? 0}/cart?x=1`, { host: 'shop.test' })
    t.equal(res.status, 308)
    t.equal(res.headers.location, `https://shop.test:${port}/cart?x=1`)
    t.equal((await get(`http://127.0.0.1:${redirectPort ?? 0}/`, { host: 'bad host\\x' })).status, 400)
  })

  t.test('hostile clients: plain HTTP, a handshake cut short, rapid reset; others are served', async (t) => {
    const plain = await rawExchange(port, (s) => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'), 10_000)
    t.notMatch(plain.data, /200 OK/, 'plain HTTP on the TLS port is not served')
    // The first bytes of a ClientHello, then silence: closed by the handshake timeout.
    const cut = await rawExchange(port, (s) => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])), 20_000)
    t.ok(cut.closedAfterMs < 15_000, 'a truncated handshake is closed')

    // Rapid reset: open a stream and cancel it, again and again, on one connection.
    const heapBefore = process.memoryUsage().heapUsed
    const attacker = h2Session(t, port, ca)
    let sent = 0
    for (; sent < 1000 && !attacker.closed && !attacker.destroyed; sent++) {
      try {
        const stream = attacker.request({ ':path': '/slow?ms=2000' })
        stream.on('error', () => {})
        stream.close(0x8 /* CANCEL */)
      } catch { break }
      if (sent % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 1))
      if (lb.logs.some((l) => l.code === 'TETHER_ERR_CLIENT_RAPID_RESET')) break
    }
    await waitFor(() => lb.logs.some((l) => l.code === 'TETHER_ERR_CLIENT_RAPID_RESET'), 10_000, 'the rapid-reset log line')
    t.pass(`the abuser's connection was closed after ${sent} cancelled streams (budget: 2/s over 10 s)`)
    attacker.destroy()
    const growth = process.memoryUsage().heapUsed - heapBefore
    t.ok(growth < 64 * 1024 * 1024, `memory stays bounded (heap grew ${Math.round(growth / 1024)} KiB)`)

    const session = h2Session(t, port, ca)
    t.equal((await h2Send(session, '/')).status, 200, 'an h2 client is served after the abuse')
    t.equal((await httpsSend(`${base}/`, { ca })).status, 200, 'an HTTPS/1.1 client too')
  })

  t.test('SIGHUP-style reload: new handshakes get the new certificate, a long request on the old one completes', async (t) => {
    const before = await handshake(port)
    const long = httpsSend(`${base}/slow?ms=1500`, { ca })
    await new Promise((resolve) => setTimeout(resolve, 300))
    copyFileSync(renewed.cert, live.cert)
    copyFileSync(renewed.key, live.key)
    lb.balancer.reload({ upstreams, sticky: { secret: 'test-secret-0123456789abcdef' }, listen: { port: '127.0.0.1:0', tls: tlsConfig } })
    const after = await handshake(port)
    t.not(after.cert.fingerprint256, before.cert.fingerprint256, 'a new handshake sees the renewed certificate')
    t.equal(after.cert.fingerprint256, (await handshake(port)).cert.fingerprint256)
    const res = await long
    t.equal(res.status, 200, 'the request on the old certificate completed')

    // A broken certificate on reload: the previous one stays, and a typed error is logged.
    writeFileSync(live.cert, 'not a certificate')
    lb.balancer.reload({ upstreams, sticky: { secret: 'test-secret-0123456789abcdef' }, listen: { port: '127.0.0.1:0', tls: tlsConfig } })
    t.equal((await handshake(port)).cert.fingerprint256, after.cert.fingerprint256, 'the previous certificate is still served')
    t.ok(lb.logs.some((l) => l.code === 'TETHER_ERR_TLS_CERT'), 'TETHER_ERR_TLS_CERT is logged')
    t.equal((await httpsSend(`${base}/`, { ca })).status, 200)
    copyFileSync(renewed.cert, live.cert)
  })

  t.test('unreadable or mismatched certificates are typed errors at start', async (t) => {
    const make = (tls: { cert: string, key: string }): unknown => createBalancer({ upstreams: [a.url], listen: { port: 0, tls } })
    const thrown = (fn: () => unknown): TetherBalancerError | undefined => {
      try { fn() } catch (err) { return err as TetherBalancerError }
      return undefined
    }
    const missing = thrown(() => make({ cert: join(dir, 'missing.crt'), key: main.key }))
    t.equal(missing?.code, 'TETHER_ERR_TLS_CERT')
    t.match(missing?.message, /missing\.crt: cannot be read \(ENOENT\)/)
    const mismatched = thrown(() => make({ cert: main.cert, key: shop.key }))
    t.equal(mismatched?.code, 'TETHER_ERR_TLS_CERT')
    t.match(mismatched?.message, /is not the private key of/)
    const garbage = join(dir, 'garbage.crt')
    writeFileSync(garbage, 'not a certificate')
    t.match(thrown(() => make({ cert: garbage, key: main.key }))?.message, /is not a PEM certificate/)
  })

  t.test('a plain listener still says http, and its sticky cookie is not Secure', async (t) => {
    const plain = await startBalancer(t, { upstreams })
    const res = await get(`${plain.url}/`)
    t.equal(json<Seen>(res).headers['x-forwarded-proto'], 'http')
    t.notMatch(res.headers['set-cookie']?.[0] ?? '', /Secure/)
  })

  t.test('an Expect other than 100-continue: a typed 417 over h2 and over HTTP/1.1 on TLS, not Node\'s bare one', async (t) => {
    const session = h2Session(t, port, ca)
    const h2 = await h2Send(session, '/', { headers: { expect: 'nonsense' } })
    t.equal(h2.status, 417)
    t.equal(h2.headers['x-tether-error'], 'TETHER_ERR_CLIENT_EXPECTATION')
    const h1 = await httpsSend(`${base}/`, { headers: { expect: 'nonsense' }, ca })
    t.equal(h1.status, 417)
    t.equal(h1.headers['x-tether-error'], 'TETHER_ERR_CLIENT_EXPECTATION')
  })

  // Keep the client sockets of the hostile tests from holding the process open.
  t.teardown(() => { netConnect({ port, host: '127.0.0.1' }).destroy() })
}
