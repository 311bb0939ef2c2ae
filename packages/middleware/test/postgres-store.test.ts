// PostgresStore: the whole conformance suite against the real PostgreSQL of the machine, in a
// schema of this run's own (dropped at the end), then what only PostgreSQL shows: one round
// trip per read and per write, the schema version row, the bounded sweep.
import t from 'tap'
import { createRequire } from 'node:module'
import type { Test } from 'tap'
import { PostgresStore, newId } from '../src/index.js'
import { PG_URL, pgSchema } from '../../../test/helpers/sql.js'
import { create, storeConformance, update } from './helpers/store-conformance.js'

const schema = pgSchema(t)

// A new store per case on one schema: the cases also show that instances share state.
storeConformance(t, 'PostgresStore', async (t) => {
  const store = new PostgresStore({ url: PG_URL, schema, poolSize: 4 })
  t.teardown(() => store.close())
  // Warm: the first call connects and checks the schema, which on a loaded machine can eat
  // the whole 300 ms TTL the expiry cases give a session.
  await store.load(newId(), { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 })
  return store
})

interface Admin { query<R = Record<string, unknown>> (q: string, v?: unknown[]): Promise<{ rows: R[] }>, end (): Promise<void>, connect (): Promise<void> }
const { Client } = createRequire(import.meta.url)('pg') as { Client: new (c: { connectionString: string }) => Admin }

async function admin (t: Test): Promise<Admin> {
  const client = new Client({ connectionString: PG_URL })
  await client.connect()
  t.teardown(() => client.end())
  return client
}

t.test('the schema carries its version; a second store on it does not recreate anything', async (t) => {
  const store = new PostgresStore({ url: PG_URL, schema })
  t.teardown(() => store.close())
  await store.apply(newId(), create([['a', '1']]))
  const db = await admin(t)
  const { rows } = await db.query<{ version: number }>(`SELECT version FROM "${schema}".tether_meta WHERE name = 'schema'`)
  t.same(rows, [{ version: 2 }])
})

t.test('a read is one statement and a write one function call (pg_stat_statements-free count)', async (t) => {
  const store = new PostgresStore({ url: PG_URL, schema, poolSize: 1 })
  t.teardown(() => store.close())
  const id = newId()
  await store.apply(id, create([['a', '1'], ['b', '2']]))
  const db = await admin(t)
  const calls = async (): Promise<number> => Number((await db.query<{ calls: string }>('SELECT coalesce(sum(calls), 0) AS calls FROM pg_stat_user_functions WHERE schemaname = $1 AND funcname = \'tether_apply\'', [schema])).rows[0]!.calls)
  // Function call counts need track_functions; the test skips that part where it is off.
  const tracking = (await db.query<{ track_functions: string }>('SHOW track_functions')).rows[0]!.track_functions !== 'none'
  const before = await calls()
  const r = await store.apply(id, update({ set: [['a', '10']], del: ['b'], incr: [['n', 1]] }))
  t.ok(r.ok)
  if (tracking) t.equal(await calls() - before, 1, 'one call of tether_apply')
  const s = await store.load(id, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 })
  t.same(Object.fromEntries(s!.fields), { a: '10', n: '1' })
  const { rows } = await db.query<{ data: unknown }>(`SELECT data FROM "${schema}".sessions WHERE id = $1`, [id])
  t.same(rows[0]!.data, { a: '10', n: '1' }, 'one jsonb object of JSON texts per session')
})

t.test('expired rows are swept in bounded batches', async (t) => {
  const store = new PostgresStore({ url: PG_URL, schema, cleanupInterval: 100, sweepBatch: 7 })
  t.teardown(() => store.close())
  const ids = Array.from({ length: 30 }, () => newId())
  await Promise.all(ids.map((id) => store.apply(id, create([['a', '1']], 50))))
  const live = newId()
  await store.apply(live, create([['a', '1']]))
  const db = await admin(t)
  const left = async (): Promise<number> => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".sessions WHERE id = ANY($1)`, [ids])).rows[0]!.n)
  const deadline = Date.now() + 10_000
  while (await left() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(await left(), 0, 'every expired row deleted')
  t.ok(await store.load(live, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }), 'the live one kept')
})

t.test('options are checked, and an unreachable server is a typed 503', async (t) => {
  t.throws(() => new PostgresStore({ url: '' }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new PostgresStore({ url: PG_URL, schema: 'Robert"); DROP' }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new PostgresStore({ url: PG_URL, poolSize: 0 }), { code: 'TETHER_ERR_INVALID_OPTION' })
  const store = new PostgresStore({ url: 'postgres://postgres@127.0.0.1:1/test', queryTimeout: 1000 })
  t.teardown(() => store.close())
  await t.rejects(store.load(newId(), { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), { code: 'TETHER_ERR_STORE_UNAVAILABLE' })
})

t.test('a version-1 schema (before write ids) is migrated on first use', async (t) => {
  const old = pgSchema(t, 'tm')
  const first = new PostgresStore({ url: PG_URL, schema: old })
  const id = newId()
  await first.apply(id, create([['n', '1']]))
  await first.close()
  // Back to version 1's layout: no writes column, the 11-argument function.
  const db = await admin(t)
  await db.query(`ALTER TABLE "${old}".sessions DROP COLUMN writes; DROP FUNCTION "${old}".tether_apply(text, bigint, bigint, jsonb, text[], jsonb, bigint, bigint, bigint, boolean, text, text); UPDATE "${old}".tether_meta SET version = 1`)
  const store = new PostgresStore({ url: PG_URL, schema: old })
  t.teardown(() => store.close())
  const change = { ...update({ incr: [['n', 1]] }), writeId: newId() }
  t.same(await store.apply(id, change), { ok: true, version: 2, counters: new Map([['n', 2]]) }, 'the old session is written')
  t.same(await store.apply(id, change), { ok: true, version: 2, counters: new Map([['n', 2]]) }, 'and its write id remembered')
  t.same((await db.query<{ version: number }>(`SELECT version FROM "${old}".tether_meta`)).rows, [{ version: 2 }])
})
