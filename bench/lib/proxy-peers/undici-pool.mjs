// Peer: the minimal undici proxy the issue measured, one Pool per upstream driven through
// dispatch() with a raw handler, round-robin, hop-by-hop headers dropped. No features.
import http from 'node:http'
import { createRequire } from 'node:module'

// The balancer's own undici (v7); the root install has an older one for @fastify/reply-from.
const require = createRequire(new URL('../../../packages/balancer/package.json', import.meta.url))
const { Pool } = require('undici')
const pools = process.env.UPSTREAMS.split(',').map((u) => new Pool(u, { connections: 128, pipelining: 1 }))
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection'])
let next = 0
http.createServer((req, res) => {
  const raw = req.rawHeaders
  const headers = []
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1])
  pools[next++ % pools.length].dispatch({ method: req.method, path: req.url, headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }, {
    onConnect () {},
    onHeaders (status, rh) {
      const out = []
      for (let i = 0; i < rh.length; i += 2) {
        const k = rh[i].toString('latin1')
        if (!HOP.has(k.toLowerCase())) out.push(k, rh[i + 1].toString('latin1'))
      }
      res.writeHead(status, out)
      return true
    },
    onData (chunk) { return res.write(chunk) },
    onComplete () { res.end() },
    onError () { if (!res.headersSent) res.writeHead(502); res.end() }
  })
}).listen(Number(process.env.PORT), '127.0.0.1')
