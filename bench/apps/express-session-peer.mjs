// Benchmark peer: Express 5 + express-session 1.19 + connect-redis 9 (node-redis client),
// configured as its README recommends (resave and saveUninitialized off).
import express from 'express'
import session from 'express-session'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'

const client = createClient({ url: process.env.REDIS_URL })
await client.connect()
const app = express()
app.use(session({
  secret: 'bench-secret-0123456789-abcdefghijklmnopqrst',
  store: new RedisStore({ client }),
  resave: false,
  saveUninitialized: false,
  cookie: { secure: false }
}))
app.get('/read', (req, res) => { res.json({ user: req.session.user ?? null }) })
app.get('/write', (req, res) => { req.session.user = 'ada'; req.session.n = (req.session.n ?? 0) + 1; res.json({ n: req.session.n }) })
app.get('/n', (req, res) => { res.json({ n: req.session.n ?? null }) })
app.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGINT', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
