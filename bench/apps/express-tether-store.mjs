// Benchmark app: Express 5 + @tether/middleware on PostgresStore (STORE_URL=postgres://…,
// schema SCHEMA), MySqlStore (mysql://…, table TABLE) or MemcachedStore (memcached://…, key
// prefix TABLE). Routes as express-store-peer.mjs, plus /incr (an atomic increment).
import express from 'express'
import { expressSession, MemcachedStore, MySqlStore, PostgresStore } from '@tether/middleware'
import { serveRoutes } from './store-routes.mjs'

const url = process.env.STORE_URL
const store = url.startsWith('postgres')
  ? new PostgresStore({ url, schema: process.env.SCHEMA, queryTimeout: 30_000 })
  : url.startsWith('memcached')
    ? new MemcachedStore({ url, prefix: process.env.TABLE })
    : new MySqlStore({ url, table: process.env.TABLE, connectTimeout: 30_000, queryTimeout: 30_000 })
const app = express()
app.use(expressSession({ secret: 'bench-secret-0123456789-abcdefghijklmnopqrst', store }))
app.get('/incr', (req, res) => { res.json({ n: req.session.increment('n') }) })
serveRoutes(app)
