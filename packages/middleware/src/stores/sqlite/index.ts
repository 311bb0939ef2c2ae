/**
 * `@tether/middleware/sqlite`: sessions in one SQLite file shared by the processes of a host.
 * Needs the optional peer dependency better-sqlite3, loaded when a store is constructed.
 *
 * @example
 * ```ts
 * import { SqliteStore } from '@tether/middleware/sqlite'
 * const store = new SqliteStore({ path: './data/sessions.db' })
 * ```
 * @packageDocumentation
 */
export { SqliteStore } from './store.js'
export type { SqliteStoreOptions } from './store.js'
