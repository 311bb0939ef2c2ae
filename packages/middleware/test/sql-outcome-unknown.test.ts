// Exactly-once on the SQL stores, under a real fault: another connection holds the session's
// row lock, so the store's write is sent and then waits in the server past the store's query
// timeout. The store must call that outcome unknown (the write may still commit), not "store
// unavailable, nothing written"; when the lock goes, the orphaned statement commits, and a
// retry under the same write id finds it applied. The increment lands exactly once.
import t from 'tap'
import { createRequire } from 'node:module'
import type { Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { MySqlStore, PostgresStore, newId } from '../src/index.js'
import type { SessionStore } from '../src/index.js'
import { MYSQL_URL, mysqlTable, PG_URL, pgSchema } from '../../../test/helpers/sql.js'
import { idOf, makeApp, sessionCookie } from './helpers/fastify-app.js'
import { create, update } from './helpers/store-conformance.js'

const require = createRequire(import.meta.url)

/** A connection that holds one session row locked until `release()`. */
interface RowLock { release (): Promise<void> }

interface Backend {
  name: string
  store (t: Test, queryTimeout: number): SessionStore
  lockRow (t: Test, id: string): Promise<RowLock>
}

const schema = pgSchema(t)
const table = mysqlTable(t)

const backends: Backend[] = [
  {
    name: 'PostgresStore',
    store: (t, queryTimeout) => {
      const store = new PostgresStore({ url: PG_URL, schema, queryTimeout, poolSize: 4 })
      t.teardown(() => store.close())
      return store
    },
    lockRow: async (t, id) => {
      const { Client } = require('pg') as { Client: new (c: { connectionString: string }) => { connect (): Promise<void>, query (q: string, v?: unknown[]): Promise<unknown>, end (): Promise<void> } }
      const client = new Client({ connectionString: PG_URL })
      await client.connect()
      t.teardown(() => client.end())
      await client.query('BEGIN')
      await client.query(`SELECT 1 FROM "${schema}".sessions WHERE id = $1 FOR UPDATE`, [id])
      return { release: async () => { await client.query('COMMIT') } }
    }
  },
  {
    name: 'MySqlStore',
    store: (t, queryTimeout) => {
      const store = new MySqlStore({ url: MYSQL_URL, table, queryTimeout, poolSize: 4 })
      t.teardown(() => store.close())
      return store
    },
    lockRow: async (t, id) => {
      const mysql = require('mysql2/promise') as { createConnection (uri: string): Promise<{ query (q: string, v?: unknown[]): Promise<unknown>, end (): Promise<void> }> }
      const conn = await mysql.createConnection(MYSQL_URL)
      t.teardown(() => conn.end())
      await conn.query('START TRANSACTION')
      await conn.query(`SELECT 1 FROM \`${table}\` WHERE id = ? FOR UPDATE`, [id])
      return { release: async () => { await conn.query('COMMIT') } }
    }
  }
]

async function counter (store: SessionStore, id: string): Promise<string | undefined> {
  return (await store.load(id, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }))?.fields.get('n')
}

for (const backend of backends) {
  t.test(`${backend.name}: a write stuck behind a row lock past the query timeout is outcome unknown; the same-id retry finds it applied once`, async (t) => {
    const store = backend.store(t, 300)
    const id = newId()
    t.ok((await store.apply(id, create([['n', '1']]))).ok)
    const lock = await backend.lockRow(t, id)
    const change = { ...update({ incr: [['n', 1]] }), writeId: newId() }
    await t.rejects(store.apply(id, change), { code: 'TETHER_ERR_STORE_OUTCOME_UNKNOWN' }, 'sent, unanswered: not "unavailable, nothing written"')
    t.equal(await counter(store, id), '1', 'not applied yet: it waits for the row lock in the server')
    await lock.release()
    // The orphaned statement gets the lock and commits, although its client is gone.
    for (let i = 0; i < 100 && await counter(store, id) === '1'; i++) await sleep(20)
    t.equal(await counter(store, id), '2', 'the timed-out write committed after all')
    const retry = await store.apply(id, change)
    t.same(retry, { ok: true, version: 2, counters: new Map([['n', 2]]) }, 'the retry is answered with the first attempt\'s result')
    t.equal(await counter(store, id), '2', 'and applied nothing')
  })

  t.test(`${backend.name}, Fastify: the middleware's one retry under the same write id, with the lock released in between`, async (t) => {
    // The first attempt times out at 500 ms; the retry is sent at once and waits for the row
    // lock too; the lock goes at 800 ms; the orphaned first attempt commits, then the retry
    // finds its write id. On a loaded machine the retry may time out as well: then the answer
    // is 503 outcome unknown. Either way the store counts the increment once.
    const store = backend.store(t, 500)
    const app = await makeApp(t, { store })
    app.post('/visit', async (req) => { req.session.increment('n'); await req.session.save(); return { n: req.session.n } })
    const first = await app.inject({ method: 'POST', url: '/visit' })
    const cookie = sessionCookie(first)!
    const id = idOf(cookie)!
    t.same(first.json(), { n: 1 })
    const lock = await backend.lockRow(t, id)
    setTimeout(() => { void lock.release() }, 800)
    const second = await app.inject({ method: 'POST', url: '/visit', headers: { cookie } })
    await sleep(1000)
    t.equal(await counter(store, id), '2', 'the store counted the increment once')
    if (second.statusCode === 200) {
      t.same(second.json(), { n: 2 }, 'the retry found the outcome: the answer is the store\'s count')
    } else {
      t.equal(second.statusCode, 503)
      t.equal(second.json().code, 'TETHER_ERR_STORE_OUTCOME_UNKNOWN', 'never "unavailable, nothing written"')
    }
  })
}
