// A tiny upstream for proxy benchmarks: answers every request with a 3-byte body and keeps
// connections alive. Run one per port: `PORT=3001 node tiny-upstream.mjs`.
import http from 'node:http'

const body = Buffer.from('ok\n')
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
  res.end(body)
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
