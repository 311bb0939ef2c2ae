/**
 * `mysql2`, loaded on first use, not on import: it is an optional peer dependency, and users of
 * the other stores should neither install nor load it. mysql2 is the maintained MySQL driver
 * with promises, a pool of its own and server-side prepared statements (`execute`); it speaks
 * to MySQL 8 and MariaDB alike, and express-mysql-session uses it too, so the benchmark
 * compares stores rather than drivers. Only the members the store calls are typed here, so the
 * package's types do not depend on mysql2's.
 */
import { requirePeer } from '../kit/index.js'

/** What `execute` / `query` resolve to: rows (or a result header) and the column info. */
export type MyResult = [unknown, unknown]

/** A pool or a pooled connection: something that runs statements. */
export interface MyQueryable {
  /** A prepared statement with bound values (prepared once per connection). */
  execute (sql: string | { sql: string, timeout?: number }, values?: readonly unknown[]): Promise<MyResult>
  /** A text-protocol statement (DDL, and statements that cannot be prepared). */
  query (sql: string, values?: readonly unknown[]): Promise<MyResult>
}

/** One connection taken out of the pool (a held session lock pins one). */
export interface MyPoolConnection extends MyQueryable {
  release (): void
  destroy (): void
}

/** The pool members the store uses. */
export interface MyPool extends MyQueryable {
  getConnection (): Promise<MyPoolConnection>
  end (): Promise<void>
  on (event: 'connection', listener: (connection: { query (sql: string): unknown }) => void): this
}

/** The pool settings the store gives. */
export interface MyPoolOptions {
  uri: string
  connectionLimit: number
  connectTimeout: number
  multipleStatements: boolean
  charset: string
  supportBigNumbers: boolean
  bigNumberStrings: boolean
  enableKeepAlive: boolean
}

/** The part of `mysql2` the store needs: a callback pool, turned into its promise form. */
export interface MysqlModule {
  createPool (options: MyPoolOptions): { promise (): MyPool }
}

/**
 * `mysql2`, required synchronously. Throws `TETHER_ERR_DEPENDENCY_MISSING` when absent.
 *
 * @example
 * ```ts
 * const pool = loadMysql2().createPool({ uri: 'mysql://root@127.0.0.1/app', connectionLimit: 10, ... }).promise()
 * ```
 */
export function loadMysql2 (): MysqlModule {
  return requirePeer<MysqlModule>('mysql2', 'MySqlStore')
}
