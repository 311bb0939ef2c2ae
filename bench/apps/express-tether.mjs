// Benchmark app: Express 5 + @tether/middleware expressSession on RedisStore. The routes are
// the same as the peer app's (express-session-peer.mjs): store-routes.mjs, plus /incr.
import express from 'express'
import { expressSession, RedisStore } from '@tether/middleware'
import { serveRoutes } from './store-routes.mjs'

const app = express()
app.use(expressSession({
  secret: 'bench-secret-0123456789-abcdefghijklmnopqrst',
  store: new RedisStore({ url: process.env.REDIS_URL }),
  ...(process.env.NEAR === '1' ? { nearCache: true } : {})
}))
app.get('/incr', (req, res) => { res.json({ n: req.session.increment('n') }) })
serveRoutes(app)
