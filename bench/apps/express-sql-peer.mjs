// Benchmark peer: Express 5 + express-session 1.19 on a SQL store, configured as the stores'
// READMEs show (resave and saveUninitialized off): connect-pg-simple for STORE_URL=postgres://…,
// express-mysql-session for mysql://…; TABLE names the table (in schema SCHEMA for PostgreSQL).
import express from 'express'
import session from 'express-session'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const url = process.env.STORE_URL
let store
if (url.startsWith('postgres')) {
  const PgSession = require('connect-pg-simple')(session)
  store = new PgSession({ conString: url, schemaName: process.env.SCHEMA, tableName: process.env.TABLE, createTableIfMissing: true })
} else {
  const MySQLStore = require('express-mysql-session')(session)
  const u = new URL(url)
  store = new MySQLStore({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database: u.pathname.slice(1), createDatabaseTable: true, schema: { tableName: process.env.TABLE } })
}
const app = express()
app.use(session({
  secret: 'bench-secret-0123456789-abcdefghijklmnopqrst',
  store,
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
