/**
 * `pg` (node-postgres), loaded on first use, not on import: it is an optional peer dependency,
 * and users of the other stores should neither install nor load it.
 *
 * Why `pg` rather than `postgres` (porsager): it is CommonJS, so the store's constructor loads
 * it synchronously like the other stores' drivers; its Pool is the driver's own and sized by
 * one option; LISTEN/NOTIFY works on a plain Client; named statements give per-connection
 * prepared statements; and it is the driver connect-pg-simple uses, so the benchmark compares
 * stores rather than drivers. Only the few members the store calls are typed here, so the
 * package's types do not depend on `@types/pg`.
 */
import { requirePeer } from '../kit/index.js'

/** A query as the store sends it: a named (prepared) statement with bound values. */
export interface PgQuery {
  readonly name?: string
  readonly text: string
  readonly values?: readonly unknown[]
}

/** The result members the store reads. */
export interface PgResult<R> {
  readonly rows: R[]
  readonly rowCount: number | null
}

/** A pg Pool or Client: something that runs a query. */
export interface PgQueryable {
  query<R = Record<string, unknown>> (query: PgQuery | string): Promise<PgResult<R>>
}

/** A notification heard on a LISTENing client. */
export interface PgNotification {
  readonly channel: string
  readonly payload?: string
}

/** The pg Client members the store uses (the LISTEN connection). */
export interface PgClient extends PgQueryable {
  connect (): Promise<void>
  end (): Promise<void>
  on (event: 'notification', listener: (message: PgNotification) => void): this
  on (event: 'error', listener: (err: Error) => void): this
  on (event: 'end', listener: () => void): this
}

/** A connection checked out of the pool; `release(err)` destroys it instead of reusing it. */
export interface PgPoolClient extends PgQueryable {
  release (err?: Error | boolean): void
}

/** The pg Pool members the store uses. */
export interface PgPool extends PgQueryable {
  connect (): Promise<PgPoolClient>
  end (): Promise<void>
  on (event: 'error', listener: (err: Error) => void): this
}

/** Connection settings shared by the pool and the LISTEN client. */
export interface PgConfig {
  connectionString: string
  max?: number
  connectionTimeoutMillis?: number
  query_timeout?: number
  idleTimeoutMillis?: number
  application_name?: string
}

/** The part of the `pg` module the store needs. */
export interface PgModule {
  Pool: new (config: PgConfig) => PgPool
  Client: new (config: PgConfig) => PgClient
}

/**
 * The `pg` module, required synchronously. Throws `TETHER_ERR_DEPENDENCY_MISSING` when absent.
 *
 * @example
 * ```ts
 * const { Pool } = loadPg()
 * const pool = new Pool({ connectionString: 'postgres://127.0.0.1/app', max: 10 })
 * ```
 */
export function loadPg (): PgModule {
  return requirePeer<PgModule>('pg', 'PostgresStore')
}
