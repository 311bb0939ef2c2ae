/**
 * `@tether/middleware/postgres`: sessions in PostgreSQL. Needs the optional peer dependency
 * `pg`, loaded when a store is constructed.
 *
 * @example
 * ```ts
 * import { PostgresStore } from '@tether/middleware/postgres'
 * const store = new PostgresStore({ url: 'postgres://app@127.0.0.1:5432/app' })
 * ```
 * @packageDocumentation
 */
export { PostgresStore } from './store.js'
export type { PostgresStoreOptions } from './store.js'
