// Peer: raw http-proxy with a keep-alive agent, round-robin over UPSTREAMS.
import http from 'node:http'
import httpProxy from 'http-proxy'

const upstreams = process.env.UPSTREAMS.split(',')
let next = 0
const agent = new http.Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 })
const proxy = httpProxy.createProxyServer({ agent })
proxy.on('error', (err, req, res) => { res.writeHead?.(502); res.end?.(String(err.code)) })
http.createServer((req, res) => proxy.web(req, res, { target: upstreams[next++ % upstreams.length] }))
  .listen(Number(process.env.PORT), '127.0.0.1')
