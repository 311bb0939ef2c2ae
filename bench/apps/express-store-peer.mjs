// Benchmark peer: Express 5 + express-session 1.19 on the express-session store teams run on
// each backend today, configured as the stores' READMEs show (resave and saveUninitialized
// off): connect-pg-simple for STORE_URL=postgres://…, express-mysql-session for mysql://…,
// connect-memcached for memcached://…; TABLE names the table (in schema SCHEMA for PostgreSQL).
import express from 'express'
import session from 'express-session'
import { createRequire } from 'node:module'
import { serveRoutes } from './store-routes.mjs'

const require = createRequire(import.meta.url)
const url = process.env.STORE_URL
let store
if (url.startsWith('postgres')) {
  const PgSession = require('connect-pg-simple')(session)
  store = new PgSession({ conString: url, schemaName: process.env.SCHEMA, tableName: process.env.TABLE, createTableIfMissing: true })
} else if (url.startsWith('memcached')) {
  const MemcachedStore = require('connect-memcached')(session)
  store = new MemcachedStore({ hosts: [new URL(url).host], prefix: process.env.TABLE })
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
serveRoutes(app)
