// Benchmark peer: Express 5 + express-session 1.19 + connect-redis 9 (node-redis client),
// configured as its README recommends (resave and saveUninitialized off).
import express from 'express'
import session from 'express-session'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'
import { serveRoutes } from './store-routes.mjs'

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
serveRoutes(app)
