// Benchmark app: Express 5 + @tether/middleware expressSession on RedisStore. The routes are
// the same as the peer app's (express-session-peer.mjs).
import express from 'express'
import { expressSession, RedisStore } from '@tether/middleware'

const app = express()
app.use(expressSession({
  secret: 'bench-secret-0123456789-abcdefghijklmnopqrst',
  store: new RedisStore({ url: process.env.REDIS_URL }),
  ...(process.env.NEAR === '1' ? { nearCache: true } : {})
}))
app.get('/read', (req, res) => { res.json({ user: req.session.user ?? null }) })
app.get('/write', (req, res) => { req.session.user = 'ada'; req.session.n = (req.session.n ?? 0) + 1; res.json({ n: req.session.n }) })
app.get('/n', (req, res) => { res.json({ n: req.session.n ?? null }) })
app.get('/incr', (req, res) => { res.json({ n: req.session.increment('n') }) })
app.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGINT', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
