// A tiny upstream for proxy benchmarks: answers every request with a 3-byte body and keeps
// connections alive. Run one per port: `PORT=3001 node tiny-upstream.mjs`.
//
// With DELAY_MS it can turn into a slow node with a bounded worker pool, as a PHP-FPM or
// servlet pool is: after `POST /__slow`, WORKERS requests (default 10) are served at once, each
// taking DELAY_MS, and the rest wait in the process. `GET /__stats` answers { inFlight,
// maxInFlight, served } (requests accepted and not yet answered: what a balancer's maxConn
// bounds); `GET /__health` is answered at once and not counted (php-fpm's ping.path is answered
// by the master, not by a busy worker). NAME is sent in `x-node`.
import http from 'node:http'

const body = Buffer.from('ok\n')
const name = process.env.NAME ?? ''
const delay = Number(process.env.DELAY_MS ?? 0)
const workers = Number(process.env.WORKERS ?? 10)
const headers = { 'content-type': 'text/plain', 'content-length': body.length, ...(name === '' ? {} : { 'x-node': name }) }

let handler = (req, res) => {
  res.writeHead(200, headers)
  res.end(body)
}

if (delay > 0) {
  const stats = { inFlight: 0, maxInFlight: 0, served: 0 }
  const waiting = []
  let slow = false
  let busy = 0
  const done = (res) => {
    stats.inFlight--
    stats.served++
    if (!res.destroyed) { res.writeHead(200, headers); res.end(body) }
  }
  const serve = (res) => {
    busy++
    setTimeout(() => {
      busy--
      done(res)
      const next = waiting.shift()
      if (next !== undefined) serve(next)
    }, delay)
  }
  handler = (req, res) => {
    if (req.url.startsWith('/__')) {
      if (req.url === '/__slow') slow = true
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(stats))
      return
    }
    stats.inFlight++
    if (stats.inFlight > stats.maxInFlight) stats.maxInFlight = stats.inFlight
    if (!slow) done(res)
    else if (busy < workers) serve(res)
    else waiting.push(res)
  }
}

const server = http.createServer((req, res) => handler(req, res))
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
