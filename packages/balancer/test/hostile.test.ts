// The hostile inputs of issue 12, each reproduced on a raw TCP socket (node:net) and run over
// every engine: what a client sends must get a 408, 431 or 400 (or reach the app intact), and
// never hold a connection open beyond its timeout.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import type { EngineName } from '../src/index.js'
import { startBalancer } from './helpers/balancer.js'
import { rawExchange } from './helpers/http.js'
import { startUpstream } from './helpers/upstreams.js'

const ENGINES: EngineName[] = ['h1', 'undici', 'http-proxy']

const app = await startUpstream(t, 'app')

/** The status code of the first response in raw bytes (0 when there is none). */
function statusOf (data: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(data)
  return m === null ? 0 : Number(m[1])
}

/** The JSON body of the first response (the fixture reports what it received). */
function bodyOf<T> (data: string): T {
  return JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4)) as T
}

/** One request on a new connection, answered and closed (`connection: close` in `head`). */
async function exchange (port: number, bytes: string, timeoutMs = 10_000): Promise<string> {
  const { data } = await rawExchange(port, (s) => s.write(bytes, 'latin1'), timeoutMs)
  return data
}

/** Send a request and read the whole response on an open keep-alive connection, then close it from the client side while idle. */
async function requestThenIdleClose (port: number, bytes: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let data = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no response')), 10_000)
    socket.on('connect', () => socket.write(bytes, 'latin1'))
    socket.on('data', (c: Buffer) => {
      data += c.toString('latin1')
      const end = data.indexOf('\r\n\r\n')
      const length = /content-length: (\d+)/i.exec(data)
      if (end !== -1 && (length === null || data.length >= end + 4 + Number(length[1]))) { clearTimeout(timer); resolve() }
    })
    socket.on('close', () => { clearTimeout(timer); resolve() })
  })
  socket.end()
  await new Promise((resolve) => setTimeout(resolve, 100))
  return data
}

/**
 * A slowloris: the request line and Host, then one header line every `everyMs`. Resolves with
 * what the balancer answered and when it closed, or `still open` after `giveUpMs`.
 */
function trickle (port: number, everyMs: number, giveUpMs: number): Promise<{ data: string, closedAfterMs: number | 'still open' }> {
  return new Promise((resolve) => {
    const started = Date.now()
    const socket: Socket = connect(port, '127.0.0.1')
    let data = ''
    let n = 0
    let timer: NodeJS.Timeout | undefined
    const giveUp = setTimeout(() => { clearInterval(timer); socket.destroy(); resolve({ data, closedAfterMs: 'still open' }) }, giveUpMs)
    socket.on('error', () => {})
    socket.on('connect', () => {
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n')
      timer = setInterval(() => { if (socket.writable) socket.write(`x-trickle-${n++}: y\r\n`) }, everyMs)
    })
    socket.on('data', (c: Buffer) => { data += c.toString('latin1') })
    socket.on('close', () => { clearInterval(timer); clearTimeout(giveUp); resolve({ data, closedAfterMs: Date.now() - started }) })
  })
}

for (const engine of ENGINES) {
  t.test(`engine ${engine}`, async (t) => {
    const { port } = await startBalancer(t, { engine, upstreams: [{ url: app.url, name: 'app' }], timeouts: { clientHeaders: '1s' } })

    t.test('(1) the header timeout holds on every connection, also after a keep-alive connection was closed by its client', async (t) => {
      const fresh = await trickle(port, 200, 8000)
      t.equal(statusOf(fresh.data), 408, 'a fresh balancer answers the trickle 408')
      t.not(fresh.closedAfterMs, 'still open', 'and closes the connection though the client keeps sending')
      const ok = await requestThenIdleClose(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
      t.equal(statusOf(ok), 200)
      const afterClose = await trickle(port, 200, 8000)
      t.equal(statusOf(afterClose.data), 408, 'after an idle keep-alive connection was closed by its client: still 408')
      t.not(afterClose.closedAfterMs, 'still open')
      const bad = await exchange(port, 'NOT HTTP\r\n\r\n')
      t.equal(statusOf(bad), 400)
      const afterBad = await trickle(port, 200, 8000)
      t.equal(statusOf(afterBad.data), 408, 'after a 400: still 408')
      t.not(afterBad.closedAfterMs, 'still open')
      // Many at once, between keep-alive connections closed by their clients: none outlives
      // the header timeout plus the short linger after the 408.
      const many: Array<Promise<{ data: string, closedAfterMs: number | 'still open' }>> = []
      for (let i = 0; i < 20; i++) {
        await requestThenIdleClose(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        many.push(trickle(port, 200, 12_000))
      }
      const results = await Promise.all(many)
      t.same(results.filter((r) => r.closedAfterMs === 'still open' || statusOf(r.data) !== 408).length, 0, '20 concurrent trickles: each got a 408 and was closed')
    })

    t.test('(2) more header lines than limits.headerLines: 431; below it, the balancer\'s headers come first', async (t) => {
      const junk = 'a:\r\n'.repeat(1100)
      const flood = await exchange(port, `GET /ip HTTP/1.1\r\nHost: lb\r\n${junk}\r\n`)
      t.equal(statusOf(flood), 431)
      t.match(flood, /x-tether-error: TETHER_ERR_CLIENT_HEADERS_TOO_LARGE/)
      const atCap = await exchange(port, `GET /ip HTTP/1.1\r\nHost: lb\r\n${'a:\r\n'.repeat(100)}connection: close\r\n\r\n`)
      t.equal(statusOf(atCap), 431, '101 lines with the default cap of 100')
      const under = await exchange(port, `GET /ip HTTP/1.1\r\nHost: lb\r\n${'a:\r\n'.repeat(97)}connection: close\r\n\r\n`)
      t.equal(statusOf(under), 200)
      const seen = bodyOf<{ rawHeaders: string[], headers: Record<string, string> }>(under)
      const names = seen.rawHeaders.filter((_, i) => i % 2 === 0)
      const firstClientLine = names.indexOf('a')
      for (const own of ['x-tether-route', 'x-tether-node', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']) {
        const at = names.indexOf(own)
        // http-proxy hands Node's client a header object and the order is then its own; the
        // line cap (below the 1000 an app keeps) is what protects those headers there.
        if (engine === 'http-proxy') t.ok(at !== -1, `${own} reaches the app`)
        else t.ok(at !== -1 && at < firstClientLine, `${own} comes before the client's headers (at ${at})`)
      }
      t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    })

    t.test('(3) body framing after many header lines is never lost', async (t) => {
      const before = (await app.counts())['POST /echo'] ?? 0
      const late = await exchange(port, `POST /echo HTTP/1.1\r\nHost: lb\r\n${'a:\r\n'.repeat(1000)}Content-Length: 5\r\nConnection: close\r\n\r\nhello`)
      t.equal(statusOf(late), 431, 'framing beyond what Node keeps: refused, not forwarded without its body')
      const lateChunked = await exchange(port, `POST /echo HTTP/1.1\r\nHost: lb\r\n${'a:\r\n'.repeat(1000)}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
      t.equal(statusOf(lateChunked), 431)
      const counts = await app.counts()
      t.equal(counts['POST /echo'] ?? 0, before, 'the app never saw a body-less POST')
      const ok = await exchange(port, `POST /echo HTTP/1.1\r\nHost: lb\r\n${'a:\r\n'.repeat(95)}Content-Length: 5\r\nConnection: close\r\n\r\nhello`)
      t.equal(statusOf(ok), 200)
      t.equal(bodyOf<{ body: string }>(ok).body, 'hello', 'framing read from whole headers: the body arrives')
    })

    t.test('a chunked DELETE or OPTIONS whose body holds a request: the app gets one request with that body, never the one inside', async (t) => {
      // Found by test/fuzz-requests.test.ts: http-proxy sent these with content-length: 0 and the body after it.
      for (const method of ['DELETE', 'OPTIONS']) {
        const inner = 'GET /smuggled HTTP/1.1\r\nHost: lb\r\n\r\n'
        const before = (await app.counts())['GET /smuggled'] ?? 0
        const res = await exchange(port, `${method} /echo HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`)
        t.equal(statusOf(res), 200, `${method}: answered by the app`)
        t.equal(bodyOf<{ body: string }>(res).body, inner, `${method}: the app got the body as the body`)
        t.equal((await app.counts())['GET /smuggled'] ?? 0, before, `${method}: the app never saw the request inside the body`)
      }
    })

    t.test('(4) two Host headers, or an invalid Host: 400', async (t) => {
      const two = await exchange(port, 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n')
      t.equal(statusOf(two), 400)
      t.match(two, /TETHER_ERR_CLIENT_BAD_HOST/)
      for (const host of ['a@evil.example/x', 'a b', 'x/y', 'a.example:80x', '[::1']) {
        const bad = await exchange(port, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
        t.equal(statusOf(bad), 400, `Host: ${host}`)
      }
      for (const host of ['shop.example:8080', '[::1]:80', '127.0.0.1', 'xn--bcher-kva.example']) {
        const good = await exchange(port, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
        t.equal(statusOf(good), 200, `Host: ${host}`)
        t.equal(bodyOf<{ headers: Record<string, string> }>(good).headers['x-forwarded-host'], host)
      }
    })

    t.test('(5) a long Connection header: its tokens are removed, and the request is answered', async (t) => {
      const tokens = Array.from({ length: 2000 }, (_, i) => `x-h${i}`).join(',')
      const headers = Array.from({ length: 90 }, (_, i) => `x-h${i * 2}: v\r\n`).join('')
      const res = await exchange(port, `GET / HTTP/1.1\r\nHost: lb\r\nConnection: close, ${tokens}\r\n${headers}x-kept: yes\r\n\r\n`)
      t.equal(statusOf(res), 200)
      const seen = bodyOf<{ headers: Record<string, string> }>(res).headers
      t.equal(seen['x-h0'], undefined, 'a header listed in Connection is removed')
      t.equal(seen['x-h178'], undefined)
      t.equal(seen['x-kept'], 'yes')
    })

    t.test('(6) an Upgrade request with a body is refused with 400', async (t) => {
      const withLength = await rawExchange(port, (s) => s.write('GET /ws HTTP/1.1\r\nHost: lb\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello'), 10_000)
      t.equal(statusOf(withLength.data), 400)
      t.match(withLength.data, /TETHER_ERR_CLIENT_UPGRADE_BODY/)
      const chunked = await rawExchange(port, (s) => s.write('GET /ws HTTP/1.1\r\nHost: lb\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'), 10_000)
      t.equal(statusOf(chunked.data), 400)
    })
  })
}

// Found by the request-side fuzz test (test/fuzz-requests.test.ts): Node answered these itself,
// with a bare 400 or 417, no code and no log line.
t.test('fuzz findings: a missing Host, a Host past the line cap, an unknown Expect: typed answers', async (t) => {
  const { port, logs } = await startBalancer(t, { upstreams: [{ url: app.url, name: 'app' }] })
  const late = await exchange(port, `GET / HTTP/1.1\r\n${'a:\r\n'.repeat(150)}Host: x\r\nConnection: close\r\n\r\n`)
  t.equal(statusOf(late), 431, 'a Host after 150 lines: 431 (the line cap), not a bare 400 for a Host Node dropped')
  t.match(late, /x-tether-error: TETHER_ERR_CLIENT_HEADERS_TOO_LARGE/)
  const none = await exchange(port, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n')
  t.equal(statusOf(none), 400, 'HTTP/1.1 without Host: 400')
  t.match(none, /x-tether-error: TETHER_ERR_CLIENT_BAD_HOST/)
  t.equal(statusOf(await exchange(port, 'GET / HTTP/1.0\r\n\r\n')), 200, 'HTTP/1.0 without Host is fine')
  const expect = await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nExpect: nonsense\r\n\r\n')
  t.match(expect, /^HTTP\/1\.1 200[^]*HTTP\/1\.1 417 [^]*x-tether-error: TETHER_ERR_CLIENT_EXPECTATION/, 'pipelined: the 200, then a typed 417, in order')
  t.ok(logs.some((l) => l.code === 'TETHER_ERR_CLIENT_EXPECTATION'), 'and a log line')
  t.ok(logs.some((l) => l.code === 'TETHER_ERR_CLIENT_BAD_HOST'), 'the missing Host is logged too')
})
