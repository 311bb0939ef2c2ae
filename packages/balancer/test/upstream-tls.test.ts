// TLS to https:// upstreams, with real TLS servers and throwaway CAs made by openssl: every
// engine proxies to a node whose certificate its CA signed, and refuses (502,
// TETHER_ERR_UPSTREAM_TLS) a node signed by another CA or named otherwise; active health
// checks use the same settings and take such a node down; `verify: false` works and is logged.
import t from 'tap'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import WebSocket, { WebSocketServer } from 'ws'
import { ENGINES, resolveConfig, type TetherBalancerError } from '../src/index.js'
import { startBalancer } from './helpers/balancer.js'
import { get, send, waitFor } from './helpers/http.js'
import { hasOpenssl, makeCa, makeSignedCert, tempDir, type CertFiles } from './helpers/tls.js'

interface TlsUpstream { readonly port: number, readonly seen: string[], readonly server: Server, readonly resumed: boolean[] }

/** An HTTPS node that answers `name path` and records each request it gets (and that it came over TLS). */
async function startTlsUpstream (name: string, cert: CertFiles): Promise<TlsUpstream> {
  const seen: string[] = []
  const server = createServer({ cert: cert.pem, key: (await import('node:fs')).readFileSync(cert.key) }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''} tls=${String((req.socket as TLSSocket).encrypted)} host=${req.headers.host ?? ''}`)
      res.end(`${name} ${req.url ?? ''} ${Buffer.concat(chunks).toString()}`)
    })
  })
  const resumed: boolean[] = []
  server.on('secureConnection', (socket: TLSSocket) => resumed.push(socket.isSessionReused()))
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`${name} echo ${String(m)}`)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { wss.close(); server.closeAllConnections(); server.close() })
  return { port: (server.address() as AddressInfo).port, seen, server, resumed }
}

if (!hasOpenssl) {
  t.plan(0, 'openssl is not installed: no certificates to test with')
} else {
  const dir = tempDir(t)
  const ca = makeCa(dir, 'ca')
  const otherCa = makeCa(dir, 'other')
  const good = await startTlsUpstream('good', makeSignedCert(dir, ca, 'good', ['app.internal', '127.0.0.1']))
  const foreign = await startTlsUpstream('foreign', makeSignedCert(dir, otherCa, 'foreign', ['app.internal', '127.0.0.1']))

  for (const engine of ENGINES) {
    t.test(`${engine}: a node signed by the configured CA is proxied over TLS`, async (t) => {
      good.seen.length = 0
      const lb = await startBalancer(t, { engine, upstreams: [{ url: `https://127.0.0.1:${good.port}`, name: 'good' }], upstreamTls: { ca: ca.cert } })
      const res = await get(`${lb.url}/hello`)
      t.equal(res.status, 200)
      t.equal(res.body, 'good /hello ')
      const posted = await send(`${lb.url}/form`, { method: 'POST', body: 'a=1' })
      t.equal(posted.body, 'good /form a=1')
      // Several requests: kept-alive TLS connections are reused, not broken.
      for (let i = 0; i < 5; i++) t.equal((await get(`${lb.url}/n${i}`)).status, 200)
      t.same(good.seen.slice(0, 2), [`GET /hello tls=true host=127.0.0.1:${lb.port}`, `POST /form tls=true host=127.0.0.1:${lb.port}`], "the node saw the requests over TLS, with the client's Host")
      // WebSocket upgrades go over TLS too.
      const ws = new WebSocket(`ws://127.0.0.1:${lb.port}/ws`)
      const echoed = await new Promise<string>((resolve, reject) => {
        ws.on('open', () => ws.send('hi'))
        ws.on('message', (m) => { resolve(String(m)); ws.close() })
        ws.on('error', reject)
      })
      t.equal(echoed, 'good echo hi')
      if (engine === 'h1') {
        // New connections to the node resume the TLS session of an earlier one.
        good.resumed.length = 0
        await Promise.all(Array.from({ length: 4 }, async (_, i) => await get(`${lb.url}/c${i}`)))
        t.ok(good.resumed.length > 0 && good.resumed.every((r) => r), `new connections resumed the session (${JSON.stringify(good.resumed)})`)
      }
    })

    t.test(`${engine}: a node signed by another CA, or named otherwise, is refused with 502 TETHER_ERR_UPSTREAM_TLS`, async (t) => {
      foreign.seen.length = 0
      good.seen.length = 0
      const lb = await startBalancer(t, {
        engine,
        retries: 0,
        upstreams: [{ url: `https://127.0.0.1:${foreign.port}`, name: 'foreign', maxFails: 0 }],
        upstreamTls: { ca: ca.cert }
      })
      const res = await get(`${lb.url}/x`)
      t.equal(res.status, 502)
      t.equal(res.headers['x-tether-error'], 'TETHER_ERR_UPSTREAM_TLS')
      t.same(foreign.seen, [], 'no request reached the unverified node')
      const misnamed = await startBalancer(t, {
        engine,
        retries: 0,
        upstreams: [{ url: `https://127.0.0.1:${good.port}`, name: 'good', maxFails: 0, tls: { servername: 'someone-else.internal' } }],
        upstreamTls: { ca: ca.cert }
      })
      const wrongName = await get(`${misnamed.url}/x`)
      t.equal(wrongName.status, 502)
      t.equal(wrongName.headers['x-tether-error'], 'TETHER_ERR_UPSTREAM_TLS')
      t.same(good.seen, [], 'no request reached the misnamed node')
      t.ok(lb.logs.some((l) => JSON.stringify(l).includes('TLS to foreign failed')), 'the failure is logged with its cause')
    })
  }

  t.test('a node that does not verify is taken down by active health checks; the right one stays up', async (t) => {
    const lb = await startBalancer(t, {
      upstreams: [{ url: `https://127.0.0.1:${good.port}`, name: 'good' }, { url: `https://127.0.0.1:${foreign.port}`, name: 'foreign' }],
      upstreamTls: { ca: ca.cert },
      healthCheck: { path: '/health', interval: 50, timeout: 50, fall: 2, rise: 1 }
    })
    await waitFor(() => lb.balancer.nodes().find((n) => n.name === 'foreign')?.health === 'down', 5000, 'foreign marked down')
    const nodes = lb.balancer.nodes()
    t.equal(nodes.find((n) => n.name === 'good')?.health, 'up')
    t.match(nodes.find((n) => n.name === 'foreign')?.lastCheck?.error, /TETHER_ERR_UPSTREAM_TLS/)
    for (let i = 0; i < 4; i++) t.match((await get(`${lb.url}/`)).body, /^good /, 'traffic goes to the verified node')
  })

  t.test('a reload reads the CA again: the node is verified with the new one', async (t) => {
    const config = { retries: 0, upstreams: [{ url: `https://127.0.0.1:${good.port}`, name: 'good', maxFails: 0 }] }
    const lb = await startBalancer(t, { ...config, upstreamTls: { ca: otherCa.cert } })
    t.equal((await get(`${lb.url}/r`)).status, 502, 'the wrong CA: refused')
    lb.balancer.reload({ ...config, listen: '127.0.0.1:0', sticky: { secret: 'test-secret-0123456789abcdef' }, upstreamTls: { ca: ca.cert } })
    t.equal((await get(`${lb.url}/r`)).body, 'good /r ', 'after the reload, the right CA: proxied')
    t.throws(() => lb.balancer.reload({ ...config, listen: '127.0.0.1:0', upstreamTls: { ca: `${dir}/gone.pem` } }), { code: 'TETHER_ERR_CONFIG_INVALID' }, 'a missing CA file rejects the reload')
    t.equal((await get(`${lb.url}/r`)).status, 200, 'and the previous configuration stays')
  })

  t.test('verify: false is explicit, works, and is logged as a warning', async (t) => {
    const lb = await startBalancer(t, { upstreams: [{ url: `https://127.0.0.1:${foreign.port}`, name: 'foreign', tls: { verify: false } }] })
    t.equal((await get(`${lb.url}/x`)).body, 'foreign /x ')
    t.ok(lb.logs.some((l) => l.level === 40 && String(l.msg).includes('NOT verified') && JSON.stringify(l.nodes) === '["foreign"]'))
  })

  t.test('the CA file is read at start: a missing or non-PEM file is a configuration error naming the field', async (t) => {
    const err = t.throws(() => resolveConfig({ upstreams: ['https://127.0.0.1:1'], upstreamTls: { ca: `${dir}/missing.pem` } })) as TetherBalancerError
    t.equal(err.code, 'TETHER_ERR_CONFIG_INVALID')
    t.match(err.message, /upstreamTls\.ca.*cannot be read \(ENOENT\)/)
    const notPem = t.throws(() => resolveConfig({ upstreams: ['http://127.0.0.1:2', { url: 'https://127.0.0.1:1', tls: { ca: ca.key } }] })) as TetherBalancerError
    t.match(notPem.message, /upstreams\[1\]\.tls\.ca.*holds no PEM certificate/)
    const resolved = resolveConfig({ upstreams: ['https://app.internal', 'http://127.0.0.1:3001', { url: 'https://127.0.0.1:8443', tls: { servername: 'x.internal', verify: false } }], upstreamTls: { ca: ca.cert } })
    t.match(resolved.upstreams[0], { url: 'https://app.internal:443', port: 443, tls: { caFile: ca.cert, servername: 'app.internal', verify: true } })
    t.equal(resolved.upstreams[0]?.tls?.ca, ca.pem)
    t.equal(resolved.upstreams[1]?.tls, null)
    t.match(resolved.upstreams[2], { tls: { caFile: ca.cert, servername: 'x.internal', verify: false } })
  })
}
