// Issue 14: Tether on PostgreSQL, MySQL/MariaDB and memcached against the express-session stores
// teams run there today (connect-pg-simple, express-mysql-session, connect-memcached), in the
// same run, all under Express 5: read and write req/s (median of runs, wrk -c50 over a pool of
// 50 sessions), statements (memcached: commands) per request counted on the server, and how
// many of 300 concurrent increments of one session (3 app processes) survive. The shared SQL
// servers of the machine are used under names of this run's own, dropped at the end (other
// clients of those servers make the statement counts an upper bound); memcached is a private
// one started for the run.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { startMemcachedServer } from '../lib/memcached.mjs'
import { measure, median, mintCookies, startBenchApp } from '../lib/sessions.mjs'
import { fmt, table } from '../lib/table.mjs'

const require = createRequire(import.meta.url)
const PG_URL = process.env.TETHER_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const MYSQL_URL = process.env.TETHER_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
const N = 300

/** Per database: how to count its statements, set names up, and clean up. */
function backends () {
  const name = `bench_${randomBytes(4).toString('hex')}`
  return [
    {
      db: 'PostgreSQL 15',
      peer: 'connect-pg-simple',
      // A database of the run's own, so that its commit counter counts only this benchmark.
      env: { STORE_URL: withDatabase(PG_URL, name), SCHEMA: name, TABLE: 'peer_sessions' },
      async open () {
        const { Client } = require('pg')
        const admin = new Client({ connectionString: PG_URL })
        await admin.connect()
        await admin.query(`CREATE DATABASE "${name}"`)
        const c = new Client({ connectionString: withDatabase(PG_URL, name) })
        await c.connect()
        await c.query(`CREATE SCHEMA "${name}"`)
        return {
          // Transactions committed in the database: one per autocommitted statement or call.
          count: async () => { await c.query('SELECT pg_stat_clear_snapshot()'); return Number((await c.query('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0].n) },
          // Backends report their counts when idle for 10 s at most (PostgreSQL 15).
          settle: async () => { await new Promise((resolve) => setTimeout(resolve, 11_000)) },
          close: async () => { await c.end(); await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`); await admin.end() }
        }
      }
    },
    {
      db: 'MariaDB 10.11',
      peer: 'express-mysql-session',
      env: { STORE_URL: MYSQL_URL, SCHEMA: name, TABLE: `${name}_peer` },
      async open () {
        const c = await require('mysql2/promise').createConnection(MYSQL_URL)
        return {
          // Statements the server ran for clients (ours included: subtracted below).
          count: async () => Number((await c.query("SHOW GLOBAL STATUS LIKE 'Questions'"))[0][0].Value),
          settle: async () => {},
          close: async () => {
            await c.query(`DROP PROCEDURE IF EXISTS \`${name}_apply\``)
            await c.query(`DROP TABLE IF EXISTS \`${name}\`, \`${name}_meta\`, \`${name}_peer\``)
            await c.end()
          }
        }
      }
    },
    {
      db: 'memcached',
      peer: 'connect-memcached',
      // The URL is known once the private server runs: open() fills it in.
      env: { STORE_URL: '', SCHEMA: `${name}:`, TABLE: `${name}_peer:` },
      async open () {
        const server = await startMemcachedServer()
        this.env.STORE_URL = server.url
        return { count: () => server.commands(), settle: async () => {}, close: () => server.stop() }
      }
    }
  ]
}

const IMPLS = [
  { name: (b) => `express-session + ${b.peer}`, file: 'express-store-peer.mjs', incr: '/write', tether: false },
  { name: () => 'Tether (Express)', file: 'express-tether-store.mjs', incr: '/incr', tether: true }
]

function withDatabase (url, db) {
  const u = new URL(url)
  u.pathname = `/${db}`
  return u.href
}

/** Statements per request over `n` sequential requests (minus the counter's own). */
async function statementsPerRequest (server, url, cookie, n = 200) {
  await server.settle()
  const idle = await server.count()
  const before = await server.count()
  const own = before - idle
  for (let i = 0; i < n; i++) await (await fetch(url, { headers: { cookie } })).arrayBuffer()
  await server.settle()
  return (await server.count() - before - own) / n
}

export default async function ({ duration, quick }) {
  const runs = quick ? 1 : 3
  const rows = []
  for (const b of backends()) {
    const server = await b.open()
    try {
      for (const impl of IMPLS) {
        const name = impl.name(b)
        const env = { ...b.env, TABLE: impl.tether ? b.env.SCHEMA : b.env.TABLE }
        const apps = []
        try {
          for (let i = 0; i < 3; i++) apps.push(await startBenchApp(impl.file, env))
          const app = apps[0]
          const cookies = await mintCookies(app.url, 50, { path: '/write' })
          const reads = []
          const writes = []
          for (let r = 0; r < runs; r++) {
            reads.push(await measure(app, 'read', { duration, cookies }))
            writes.push(await measure(app, 'write', { duration, cookies }))
          }
          const readRt = await statementsPerRequest(server, `${app.url}/read`, cookies[0])
          const writeRt = await statementsPerRequest(server, `${app.url}/write`, cookies[1])
          // Lost updates: one fresh session, N concurrent increments over the 3 processes.
          const [cookie] = await mintCookies(app.url, 1, { path: '/write' })
          const replies = await Promise.all(Array.from({ length: N }, (_, i) =>
            fetch(apps[i % 3].url + impl.incr, { headers: { cookie } }).then(async (r) => { await r.arrayBuffer(); return r.status })))
          const failed = replies.filter((s) => s !== 200).length
          const final = (await (await fetch(app.url + '/n', { headers: { cookie } })).json()).n
          rows.push([b.db, name, fmt(median(reads).rps), fmt(median(writes).rps), fmt(readRt, 1), fmt(writeRt, 1), `${N + 1 - final} of ${N}`, failed])
        } finally {
          for (const a of apps) await a.stop()
        }
      }
    } finally {
      await server.close()
    }
  }
  return table(`SQL and memcached stores: Tether vs the express-session stores, ${runs === 1 ? 'one run' : `median of ${runs} runs`} of ${duration} s, wrk -c50, 50 sessions; ${N} concurrent increments over 3 processes`,
    ['database', 'setup', 'read req/s', 'write req/s', 'statements (commands)/read', 'statements (commands)/write', 'lost increments', 'failed requests'], rows)
}
