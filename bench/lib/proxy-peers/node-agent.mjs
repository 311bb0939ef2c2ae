// Peer: a minimal proxy on node:http with a tuned keep-alive Agent (LIFO, 128 sockets),
// round-robin, hop-by-hop headers dropped. No features.
import http from 'node:http'

const upstreams = process.env.UPSTREAMS.split(',').map((u) => new URL(u))
const agent = new http.Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128, scheduling: 'lifo' })
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection'])
let next = 0
http.createServer((req, res) => {
  const target = upstreams[next++ % upstreams.length]
  const headers = {}
  for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v
  const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (ur) => {
    const out = []
    for (let i = 0; i < ur.rawHeaders.length; i += 2) if (!HOP.has(ur.rawHeaders[i].toLowerCase())) out.push(ur.rawHeaders[i], ur.rawHeaders[i + 1])
    res.writeHead(ur.statusCode, out)
    ur.pipe(res)
  })
  up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end() })
  req.pipe(up)
}).listen(Number(process.env.PORT), '127.0.0.1')
