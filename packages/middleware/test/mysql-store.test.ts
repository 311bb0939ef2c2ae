// MySqlStore: the whole conformance suite against the real MariaDB (or MySQL 8) of the machine,
// in tables of this run's own (dropped at the end), then what only this store shows: the
// schema version row, one CALL per write, the bounded sweep, typed failures.
import t from 'tap'
import { createRequire } from 'node:module'
import type { Test } from 'tap'
import { MySqlStore, newId } from '../src/index.js'
import { MYSQL_URL, mysqlTable } from '../../../test/helpers/sql.js'
import { create, storeConformance, update } from './helpers/store-conformance.js'

const table = mysqlTable(t)

// A new store per case on one table: the cases also show that instances share state.
storeConformance(t, 'MySqlStore', async (t) => {
  const store = new MySqlStore({ url: MYSQL_URL, table, poolSize: 6 })
  t.teardown(() => store.close())
  // Warm: the first call connects and checks the schema, which on a loaded machine can eat
  // the whole 300 ms TTL the expiry cases give a session.
  await store.load(newId(), { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 })
  return store
})

interface Admin { query (q: string, v?: unknown[]): Promise<[unknown, unknown]>, end (): Promise<void> }
const mysql = createRequire(import.meta.url)('mysql2/promise') as { createConnection (uri: string): Promise<Admin> }

async function admin (t: Test): Promise<Admin> {
  const conn = await mysql.createConnection(MYSQL_URL)
  t.teardown(() => conn.end())
  return conn
}

t.test('the schema carries its version; values are stored as one JSON object of texts', async (t) => {
  const store = new MySqlStore({ url: MYSQL_URL, table })
  t.teardown(() => store.close())
  const id = newId()
  await store.apply(id, create([['a', '1'], ['b', '2']]))
  const r = await store.apply(id, update({ set: [['a', '10']], del: ['b'], incr: [['n', 1]] }))
  t.ok(r.ok)
  const db = await admin(t)
  const [meta] = await db.query(`SELECT version FROM \`${table}_meta\` WHERE name = 'schema'`) as [Array<{ version: number }>, unknown]
  t.same(meta, [{ version: 2 }])
  const [rows] = await db.query(`SELECT data FROM \`${table}\` WHERE id = ?`, [id]) as [Array<{ data: unknown }>, unknown]
  const data = typeof rows[0]!.data === 'string' ? JSON.parse(rows[0]!.data) : rows[0]!.data
  t.same(data, { a: '10', n: '1' })
})

t.test('expired rows are swept in bounded batches', async (t) => {
  const store = new MySqlStore({ url: MYSQL_URL, table, cleanupInterval: 100, sweepBatch: 7 })
  t.teardown(() => store.close())
  const ids = Array.from({ length: 30 }, () => newId())
  await Promise.all(ids.map((id) => store.apply(id, create([['a', '1']], 50))))
  const live = newId()
  await store.apply(live, create([['a', '1']]))
  const db = await admin(t)
  const left = async (): Promise<number> => {
    const [rows] = await db.query(`SELECT COUNT(*) AS n FROM \`${table}\` WHERE id IN (?)`, [ids]) as [Array<{ n: number }>, unknown]
    return Number(rows[0]!.n)
  }
  const deadline = Date.now() + 10_000
  while (await left() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(await left(), 0, 'every expired row deleted')
  t.ok(await store.load(live, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }), 'the live one kept')
})

t.test('options are checked, and an unreachable server is a typed 503', async (t) => {
  t.throws(() => new MySqlStore({ url: '' }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new MySqlStore({ url: MYSQL_URL, table: 'x`; DROP' }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new MySqlStore({ url: MYSQL_URL, poolSize: 0 }), { code: 'TETHER_ERR_INVALID_OPTION' })
  const store = new MySqlStore({ url: 'mysql://root@127.0.0.1:1/test', connectTimeout: 1000 })
  t.teardown(() => store.close())
  await t.rejects(store.load(newId(), { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), { code: 'TETHER_ERR_STORE_UNAVAILABLE' })
})

t.test('a version-1 table (before write ids) is migrated on first use', async (t) => {
  const old = mysqlTable(t, 'tm')
  const first = new MySqlStore({ url: MYSQL_URL, table: old })
  const id = newId()
  await first.apply(id, create([['n', '1']]))
  await first.close()
  const db = await admin(t)
  await db.query(`ALTER TABLE \`${old}\` DROP COLUMN writes`)
  await db.query(`UPDATE \`${old}_meta\` SET version = 1`)
  const store = new MySqlStore({ url: MYSQL_URL, table: old })
  t.teardown(() => store.close())
  const change = { ...update({ incr: [['n', 1]] }), writeId: newId() }
  t.same(await store.apply(id, change), { ok: true, version: 2, counters: new Map([['n', 2]]) }, 'the old session is written')
  t.same(await store.apply(id, change), { ok: true, version: 2, counters: new Map([['n', 2]]) }, 'and its write id remembered')
  const [meta] = await db.query(`SELECT version FROM \`${old}_meta\``) as [Array<{ version: number }>, unknown]
  t.same(meta, [{ version: 2 }])
})
