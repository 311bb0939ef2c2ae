/**
 * Loads better-sqlite3 on first use, not on import: it is an optional peer dependency with a
 * native addon, and users of RedisStore or MemoryStore should neither install nor load it.
 */
import { createRequire } from 'node:module'
import type BetterSqlite3 from 'better-sqlite3'
import { tetherError } from '../errors.js'

/** The better-sqlite3 `Database` class. */
export type DatabaseConstructor = typeof BetterSqlite3
/** An open better-sqlite3 database. */
export type Database = BetterSqlite3.Database
/** A prepared statement taking positional parameters. */
export type Statement = BetterSqlite3.Statement<unknown[], unknown>

const require = createRequire(import.meta.url)
let cached: DatabaseConstructor | undefined

/**
 * The better-sqlite3 constructor, required synchronously so `new SqliteStore()` stays a plain
 * constructor. Throws `TETHER_ERR_DEPENDENCY_MISSING` when the package (or its native build)
 * is absent.
 *
 * @example
 * ```ts
 * const Database = loadBetterSqlite3()
 * const db = new Database('/var/lib/app/sessions.db')
 * ```
 */
export function loadBetterSqlite3 (): DatabaseConstructor {
  if (cached !== undefined) return cached
  try {
    cached = require('better-sqlite3') as DatabaseConstructor
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND'
      ? 'it is not installed'
      : `it failed to load (${err instanceof Error ? err.message : String(err)}); its native addon may need a rebuild: npm rebuild better-sqlite3`
    throw tetherError('TETHER_ERR_DEPENDENCY_MISSING', `SqliteStore needs the optional peer dependency better-sqlite3, but ${why}. Install it with: npm install better-sqlite3`, { cause: err })
  }
  return cached
}
