// Graceful close on the TLS listener, as on the plain one (test/lifecycle.test.ts): idle
// HTTP/1.1 keep-alive connections stay open during the drain, a request on one is served with
// `Connection: close`, and one that stays idle ends cleanly at its keep-alive timeout; an h2
// session gets GOAWAY at once, its stream in flight finishes, and then it closes.
import t from 'tap'
import { connect as tlsConnect } from 'node:tls'
import { startBalancer } from './helpers/balancer.js'
import { get, keepAliveSocket } from './helpers/http.js'
import { h2Send, h2Session, hasOpenssl, makeCert, tempDir } from './helpers/tls.js'
import { startUpstreams } from './helpers/upstreams.js'

if (!hasOpenssl) {
  t.plan(0, 'openssl is not installed: no certificates to test with')
} else {
  const dir = tempDir(t)
  const cert = makeCert(dir, 'main', ['localhost', '127.0.0.1'])
  const [a] = await startUpstreams(t, ['a'])
  if (a === undefined) throw new Error('upstream did not start')
  const listen = { port: '127.0.0.1:0', tls: { cert: cert.cert, key: cert.key } }

  t.test('TLS, HTTP/1.1: idle keep-alive connections are drained, not cut', async (t) => {
    const { port, balancer } = await startBalancer(t, { upstreams: [a.url], listen, timeouts: { shutdown: '8s', clientKeepAlive: '2s' } })
    const open = (): ReturnType<typeof tlsConnect> => tlsConnect({ host: '127.0.0.1', port, ca: cert.pem, servername: 'localhost', ALPNProtocols: ['http/1.1'] })
    const conns = await Promise.all(Array.from({ length: 4 }, () => keepAliveSocket(open, 'secureConnect')))
    t.teardown(() => { for (const c of conns) c.socket.destroy() })
    for (const c of conns) t.match(await c.request('/'), /^HTTP\/1\.1 200[^]*connection: keep-alive/i, 'kept alive before the drain')
    // A request in flight keeps the drain going (its own connection).
    const slow = keepAliveSocket(open, 'secureConnect').then((c) => c.request('/slow?ms=1500'))
    await new Promise((resolve) => setTimeout(resolve, 150))
    const closing = balancer.close()
    const answers = await Promise.all(conns.slice(0, 3).map(async (c, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * 250))
      return await c.request('/').catch((err: Error) => err.message)
    }))
    for (const answer of answers) t.match(answer, /^HTTP\/1\.1 200[^]*connection: close/i, 'served during the drain, and told the connection closes')
    t.same(await Promise.all(conns.map((c) => c.ended)), Array(4).fill('end'), 'every connection ended cleanly: 0 resets')
    t.match(await slow, /^HTTP\/1\.1 200/, 'the request in flight finished')
    await closing
  })

  t.test('TLS, h2: GOAWAY at once, the stream in flight finishes, then the session closes', async (t) => {
    const { port, balancer } = await startBalancer(t, { upstreams: [a.url], listen, timeouts: { shutdown: '8s' } })
    const session = h2Session(t, port, cert.pem)
    t.equal((await h2Send(session, '/')).status, 200)
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)))
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()))
    const slow = h2Send(session, '/slow?ms=1000')
    await new Promise((resolve) => setTimeout(resolve, 150))
    const started = Date.now()
    const closing = balancer.close()
    t.equal(await goaway, 0, 'GOAWAY (NO_ERROR) is sent at once')
    t.ok(Date.now() - started < 900, 'before the stream in flight ends')
    const res = await slow
    t.equal(res.status, 200, 'the stream in flight finished')
    t.match(res.body, /slow/)
    await closed
    t.pass('the session closed after its last stream')
    await closing
    // A new connection is refused: the listener is closed.
    await t.rejects(get(`https://127.0.0.1:${port}/`))
  })
}
