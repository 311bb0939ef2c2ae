/**
 * `@tether/middleware/mysql`: sessions in MySQL 8 or MariaDB 10.11+. Needs the optional peer
 * dependency `mysql2`, loaded when a store is constructed.
 *
 * @example
 * ```ts
 * import { MySqlStore } from '@tether/middleware/mysql'
 * const store = new MySqlStore({ url: 'mysql://app@127.0.0.1:3306/app' })
 * ```
 * @packageDocumentation
 */
export { MySqlStore } from './store.js'
export type { MySqlStoreOptions } from './store.js'
