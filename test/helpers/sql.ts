/**
 * The shared SQL servers of the test machine (PostgreSQL on 5432, MariaDB on 3306), used under
 * names of a test's own: a fresh PostgreSQL schema or MySQL database per test file, dropped when
 * the test ends, so helpers and CI runs never collide. TETHER_PG_URL / TETHER_MYSQL_URL point
 * the tests elsewhere.
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export const PG_URL = process.env.TETHER_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.TETHER_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

interface Teardownable { teardown (fn: () => unknown): void }

/** A unique lower-case name with `prefix`. */
export function uniqueName (prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`
}

/** A schema name of the test's own, dropped (with everything in it) at teardown. */
export function pgSchema (t: Teardownable, prefix = 'tt'): string {
  const schema = uniqueName(prefix)
  t.teardown(async () => {
    const { Client } = require('pg') as { Client: new (c: { connectionString: string }) => { connect (): Promise<void>, query (q: string): Promise<unknown>, end (): Promise<void> } }
    const client = new Client({ connectionString: PG_URL })
    await client.connect()
    try { await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`) } finally { await client.end() }
  })
  return schema
}

/**
 * A table name of the test's own in the MySQL database; the table, its `_meta` table and its
 * procedure are dropped at teardown.
 */
export function mysqlTable (t: Teardownable, prefix = 'tt'): string {
  const table = uniqueName(prefix)
  t.teardown(async () => {
    const mysql = require('mysql2/promise') as { createConnection (uri: string): Promise<{ query (q: string): Promise<unknown>, end (): Promise<void> }> }
    const conn = await mysql.createConnection(MYSQL_URL)
    try {
      await conn.query(`DROP PROCEDURE IF EXISTS \`${table}_apply\``)
      await conn.query(`DROP TABLE IF EXISTS \`${table}\`, \`${table}_meta\``)
    } finally { await conn.end() }
  })
  return table
}
