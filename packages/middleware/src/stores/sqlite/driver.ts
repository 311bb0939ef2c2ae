/**
 * better-sqlite3, loaded on first use, not on import: it is an optional peer dependency with a
 * native addon, and users of the other stores should neither install nor load it.
 */
import type BetterSqlite3 from 'better-sqlite3'
import { requirePeer } from '../kit/index.js'

/** The better-sqlite3 `Database` class. */
export type DatabaseConstructor = typeof BetterSqlite3
/** An open better-sqlite3 database. */
export type Database = BetterSqlite3.Database
/** A prepared statement taking positional parameters. */
export type Statement = BetterSqlite3.Statement<unknown[], unknown>

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
  return requirePeer<DatabaseConstructor>('better-sqlite3', 'SqliteStore', { native: true })
}
