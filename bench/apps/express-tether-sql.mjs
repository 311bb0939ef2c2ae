// Benchmark app: Express 5 + @tether/middleware on PostgresStore (STORE_URL=postgres://…,
// schema SCHEMA) or MySqlStore (mysql://…, table TABLE). Routes as express-sql-peer.mjs.
import express from 'express'
import { expressSession, MySqlStore, PostgresStore } from '@tether/middleware'

const url = process.env.STORE_URL
const store = url.startsWith('postgres')
  ? new PostgresStore({ url, schema: process.env.SCHEMA, queryTimeout: 30_000 })
  : new MySqlStore({ url, table: process.env.TABLE, connectTimeout: 30_000 })
const app = express()
app.use(expressSession({ secret: 'bench-secret-0123456789-abcdefghijklmnopqrst', store }))
app.get('/read', (req, res) => { res.json({ user: req.session.user ?? null }) })
app.get('/write', (req, res) => { req.session.user = 'ada'; req.session.n = (req.session.n ?? 0) + 1; res.json({ n: req.session.n }) })
app.get('/n', (req, res) => { res.json({ n: req.session.n ?? null }) })
app.get('/incr', (req, res) => { res.json({ n: req.session.increment('n') }) })
app.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGINT', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
