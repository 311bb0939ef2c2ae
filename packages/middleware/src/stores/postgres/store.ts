/**
 * PostgresStore on `pg`: one row per session, a jsonb object of JSON texts. A read is one
 * statement (the lazy idle-TTL refresh rides in it when due); a write is one call of a stored
 * function that checks (exists, gone, fence, counters) and merges only the changed keys, under
 * the row's lock, atomically. Lock mode keeps its lease and fencing token in the row and wakes
 * waiters with LISTEN/NOTIFY. Expired rows are deleted by a background sweep in bounded
 * batches, never on the request path.
 */
import { outcomeUnknown, storeUnavailable, tetherError } from '../../errors.js'
import type { ApplyResult, LoadOptions, LockOptions, SessionChange, SessionLock, SessionStore, StoreCapabilities, StoredSession } from '../../store.js'
import { StoreLocks } from '../kit/index.js'
import type { LockAttempt } from '../kit/index.js'
import { loadPg } from './driver.js'
import type { PgConfig, PgPool, PgPoolClient, PgQuery } from './driver.js'
import { ReleaseListener } from './listener.js'
import { ddl, SCHEMA_VERSION, statements } from './schema.js'
import type { SessionRow } from './schema.js'

/**
 * Options of {@link PostgresStore}.
 *
 * @example
 * ```ts
 * const options: PostgresStoreOptions = { url: 'postgres://app@db/app', schema: 'sessions', poolSize: 20 }
 * ```
 */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (any libpq-style URL `pg` accepts). */
  url: string
  /**
   * The schema holding the store's table and functions, created on first use. A lower-case
   * identifier (letters, digits, `_`, at most 40 characters). Default `tether`.
   */
  schema?: string
  /** Connections in the store's pool (pg's own Pool). Default 10. */
  poolSize?: number
  /** Per-query timeout (ms), so a hung server cannot hang a request. Default 5000. */
  queryTimeout?: number
  /** How often expired sessions are deleted (ms); 0 turns the sweep off. Default 60 s. */
  cleanupInterval?: number
  /** Rows deleted per sweep statement. Default 500. */
  sweepBatch?: number
}

type Statements = ReturnType<typeof statements>

const BACKEND = 'PostgresStore'
/** SQLSTATE the apply function raises for an increment of a value that is not a counter. */
const NOT_A_COUNTER = 'TT001'

type ApplyReply =
  | { r: 'ok', v: number, c: Record<string, string> }
  | { r: 'gone' | 'exists' | 'fenced' }

/**
 * A session store in PostgreSQL, shared by every app process that connects to it.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { fastifySession } from '@tether/middleware'
 * import { PostgresStore } from '@tether/middleware/postgres'
 * const app = Fastify()
 * app.register(fastifySession, { secret: process.env.SESSION_SECRET!, store: new PostgresStore({ url: process.env.DATABASE_URL! }) })
 * ```
 */
export class PostgresStore implements SessionStore {
  /** A change's write id is applied at most once per session (see {@link SessionStore.exactlyOnce}). */
  readonly exactlyOnce = true
  /** Log out everywhere: an indexed owner column, written by the same call as the session. */
  readonly capabilities: StoreCapabilities = { destroyAll: true }
  readonly #pool: PgPool
  readonly #sql: Statements
  readonly #schema: string
  readonly #channel: string
  readonly #listener: ReleaseListener
  readonly #locks: StoreLocks
  readonly #sweeper: NodeJS.Timeout | undefined
  readonly #sweepBatch: number
  #ready: Promise<void> | undefined
  #closed = false

  constructor (options: PostgresStoreOptions) {
    if (typeof options !== 'object' || options === null || typeof options.url !== 'string' || options.url === '') {
      throw tetherError('TETHER_ERR_INVALID_OPTION', "PostgresStore needs a 'url': postgres://user@host:5432/database")
    }
    const schema = options.schema ?? 'tether'
    if (typeof schema !== 'string' || !/^[a-z_][a-z0-9_]{0,39}$/.test(schema)) {
      throw tetherError('TETHER_ERR_INVALID_OPTION', `PostgresStore option 'schema' must be a lower-case identifier of at most 40 characters; got ${JSON.stringify(schema)}`)
    }
    const poolSize = positive('poolSize', options.poolSize, 10)
    const queryTimeout = positive('queryTimeout', options.queryTimeout, 5000)
    const cleanupInterval = nonNegative('cleanupInterval', options.cleanupInterval, 60_000)
    this.#sweepBatch = positive('sweepBatch', options.sweepBatch, 500)
    const pg = loadPg()
    const config: PgConfig = { connectionString: options.url, connectionTimeoutMillis: queryTimeout, query_timeout: queryTimeout, application_name: 'tether' }
    this.#pool = new pg.Pool({ ...config, max: poolSize })
    // An idle connection that dies emits 'error' on the pool; the next query reconnects.
    this.#pool.on('error', () => {})
    this.#schema = schema
    this.#sql = statements(schema)
    this.#channel = `tether_unlock_${schema}`
    this.#locks = new StoreLocks({
      attempt: async (id, lease) => await this.#tryLock(id, lease),
      renew: async (id, token, lease) => (await this.#query('renew', [id, token, lease])).rowCount === 1,
      release: async (id, token) => {
        if (this.#closed) return
        await this.#query('release', [id, token, this.#channel])
      }
    })
    this.#listener = new ReleaseListener(pg, config, this.#channel, (id) => { this.#locks.released(id) })
    if (cleanupInterval > 0) {
      this.#sweeper = setInterval(() => { void this.#sweep() }, cleanupInterval)
      this.#sweeper.unref()
    }
  }

  async load (id: string, options: LoadOptions): Promise<StoredSession | undefined> {
    const { now } = options
    const { rows } = await this.#query<SessionRow>('load', [id, now, options.idleTimeout, options.refreshBelow])
    const row = rows[0]
    if (row === undefined) return undefined
    return {
      fields: new Map(Object.entries(row.data)),
      createdAt: Number(row.created_at),
      absoluteExpiry: Number(row.absolute_expiry),
      expiresAt: Number(row.refreshed_to ?? row.expires_at),
      version: Number(row.version),
      refreshed: row.refreshed_to !== null
    }
  }

  async apply (id: string, change: SessionChange): Promise<ApplyResult> {
    const { rows } = await this.#write<{ res: ApplyReply }>('apply', [
      id,
      change.create?.createdAt ?? null,
      change.create?.absoluteExpiry ?? null,
      JSON.stringify(Object.fromEntries(change.set)),
      change.del,
      JSON.stringify(change.incr),
      Math.floor(change.ttl),
      change.now,
      change.fence ?? null,
      change.owner !== undefined,
      change.owner ?? null,
      change.writeId ?? null
    ])
    const reply = rows[0]!.res
    if (reply.r !== 'ok') return { ok: false, reason: reply.r }
    const counters = new Map<string, number>()
    for (const [key, value] of Object.entries(reply.c)) counters.set(key, Number(value))
    return { ok: true, version: reply.v, counters }
  }

  async destroy (id: string): Promise<void> {
    await this.#query('destroy', [id, this.#channel])
  }

  async destroyAll (owner: string): Promise<number> {
    const { rows } = await this.#query<{ n: string }>('destroyAll', [owner, Date.now(), this.#channel])
    return Number(rows[0]?.n ?? 0)
  }

  async touch (id: string, ttl: number, now: number): Promise<boolean> {
    return (await this.#query('touch', [id, now + ttl, now])).rowCount === 1
  }

  async lock (id: string, options: LockOptions): Promise<SessionLock | undefined> {
    this.#open()
    // LISTEN first: a release committed after this line wakes us.
    await this.#listener.ready()
    return await this.#locks.lock(id, options)
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#sweeper)
    this.#locks.close()
    await this.#listener.close()
    await this.#pool.end().catch(() => {})
  }

  async #tryLock (id: string, lease: number): Promise<LockAttempt> {
    const { rows } = await this.#query<{ res: { t?: number, w?: number, m?: true } }>('lock', [id, lease, Date.now()])
    const res = rows[0]!.res
    if (res.t !== undefined) return { token: res.t }
    if (res.w !== undefined) return { retryIn: res.w }
    return 'missing'
  }

  /** Delete expired sessions one bounded batch at a time, yielding between batches. */
  async #sweep (): Promise<void> {
    try {
      for (;;) {
        if (this.#closed) return
        const { rowCount } = await this.#query('sweep', [Date.now(), this.#sweepBatch])
        if ((rowCount ?? 0) < this.#sweepBatch) return
      }
    } catch {
      // Unavailable or closing: the next interval tries again; loads never return expired rows.
    }
  }

  /** Run a named statement, creating the schema first if this store has not yet. */
  async #query<R = Record<string, unknown>> (name: keyof Statements, values: readonly unknown[]): Promise<{ rows: R[], rowCount: number | null }> {
    this.#open()
    this.#ready ??= this.#ensureSchema()
    try {
      await this.#ready
      const query: PgQuery = { name: `${this.#schema}.${name}`, text: this.#sql[name], values }
      return await this.#pool.query<R>(query)
    } catch (err) {
      if ((err as { code?: unknown }).code === NOT_A_COUNTER) throw tetherError('TETHER_ERR_NOT_A_COUNTER', (err as Error).message)
      throw storeUnavailable(BACKEND, err)
    }
  }

  /**
   * Run a write (the apply function) on a connection of its own, so that a failure says
   * whether the statement was sent: a connection that could not be had is
   * `TETHER_ERR_STORE_UNAVAILABLE` (nothing sent), an error the server answered with rolled
   * the statement back (nothing applied), and anything else once it was sent (the query
   * timeout, a connection lost mid-statement) is `TETHER_ERR_STORE_OUTCOME_UNKNOWN`: the
   * function may still commit on the server. That connection is destroyed, not reused.
   */
  async #write<R> (name: keyof Statements, values: readonly unknown[]): Promise<{ rows: R[], rowCount: number | null }> {
    this.#open()
    this.#ready ??= this.#ensureSchema()
    let client: PgPoolClient
    try {
      await this.#ready
      client = await this.#pool.connect()
    } catch (err) {
      throw storeUnavailable(BACKEND, err)
    }
    try {
      const result = await client.query<R>({ name: `${this.#schema}.${name}`, text: this.#sql[name], values })
      client.release()
      return result
    } catch (err) {
      const answered = isServerError(err)
      client.release(answered ? undefined : err as Error)
      if (answered && (err as { code?: unknown }).code === NOT_A_COUNTER) throw tetherError('TETHER_ERR_NOT_A_COUNTER', (err as Error).message)
      throw answered ? storeUnavailable(BACKEND, err) : outcomeUnknown(BACKEND, err)
    }
  }

  /**
   * Create the schema, idempotently, under a transaction-scoped advisory lock (a multi-statement
   * simple query runs as one transaction): processes starting together create it once.
   */
  async #ensureSchema (): Promise<void> {
    try {
      // Usually the schema is there already: one cheap read instead of the DDL.
      let found = await this.#schemaVersion().catch(() => undefined)
      // Absent, or older: the DDL is idempotent and migrates (version 2 adds write ids).
      if (found === undefined || found < SCHEMA_VERSION) {
        await this.#pool.query(`SELECT pg_advisory_xact_lock(hashtext('tether:${this.#schema}'));\n${ddl(this.#schema)}`)
        found = await this.#schemaVersion()
      }
      if (found !== SCHEMA_VERSION) {
        throw new Error(`schema "${this.#schema}" is at version ${String(found)}, this code uses version ${SCHEMA_VERSION}`)
      }
    } catch (err) {
      // Let the next call try again (the server may come up later).
      this.#ready = undefined
      throw err
    }
  }

  async #schemaVersion (): Promise<number | undefined> {
    const { rows } = await this.#pool.query<{ version: number }>(this.#sql.version)
    return rows[0]?.version
  }

  #open (): void {
    if (this.#closed) throw tetherError('TETHER_ERR_STORE_UNAVAILABLE', `session store (${BACKEND}) unavailable: the store is closed`)
  }
}

/** An error the server sent (pg's DatabaseError: a SQLSTATE and a severity), not a local one. */
function isServerError (err: unknown): boolean {
  const e = err as { code?: unknown, severity?: unknown } | null
  return typeof e === 'object' && e !== null && typeof e.severity === 'string' && typeof e.code === 'string'
}

function positive (option: string, value: unknown, fallback: number): number {
  const n = nonNegative(option, value, fallback)
  if (n === 0) throw tetherError('TETHER_ERR_INVALID_OPTION', `PostgresStore option '${option}' must be positive; got 0`)
  return n
}

function nonNegative (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw tetherError('TETHER_ERR_INVALID_OPTION', `PostgresStore option '${option}' must be a non-negative number; got ${String(value)}`)
  }
  return Math.floor(value)
}
