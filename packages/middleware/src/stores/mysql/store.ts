/**
 * MySqlStore on `mysql2`, for MySQL 8 and MariaDB 10.11+: one row per session, a JSON object
 * of JSON texts. A read is one prepared SELECT (a due idle-TTL refresh is sent alongside, not
 * waited for); a write is one CALL of a stored procedure that checks (exists, gone, fence,
 * counters) and merges only the changed keys under the row's lock, atomically. Lock mode:
 * see locks.ts (GET_LOCK wakes waiters; lease and fencing token in the row). Expired rows are
 * deleted by a background sweep in bounded batches, never on the request path.
 */
import { outcomeUnknown, storeUnavailable, tetherError } from '../../errors.js'
import type { ApplyResult, LoadOptions, LockOptions, SessionChange, SessionLock, SessionStore, StoreCapabilities, StoredSession } from '../../store.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadMysql2 } from './driver.js'
import type { MyPool, MyPoolConnection, MyResult } from './driver.js'
import { MySqlLocks } from './locks.js'
import { addWritesColumn, ddl, NOT_A_COUNTER, SCHEMA_VERSION, statements } from './schema.js'
import type { SessionRow } from './schema.js'

/**
 * Options of {@link MySqlStore}.
 *
 * @example
 * ```ts
 * const options: MySqlStoreOptions = { url: 'mysql://app:secret@db:3306/app', table: 'sessions', poolSize: 20 }
 * ```
 */
export interface MySqlStoreOptions {
  /** `mysql://user:password@host:port/database`. */
  url: string
  /**
   * The sessions table, created on first use with `<table>_meta` (the schema version) and the
   * procedure `<table>_apply`. Letters, digits and `_`, at most 48 characters. Default
   * `tether_sessions`.
   */
  table?: string
  /**
   * Connections in the store's pool (mysql2's own). A held session lock pins one connection
   * while held, as does a session's waiting request per process. Default 10.
   */
  poolSize?: number
  /** Connect timeout (ms). Default 5000. */
  connectTimeout?: number
  /**
   * Per-statement timeout (ms), so a hung server or a long lock wait cannot hang a request.
   * A write that times out is `TETHER_ERR_STORE_OUTCOME_UNKNOWN` (it may still commit on the
   * server; the middleware's retry under the same write id then settles it). Default 5000.
   */
  queryTimeout?: number
  /** How often expired sessions are deleted (ms); 0 turns the sweep off. Default 60 s. */
  cleanupInterval?: number
  /** Rows deleted per sweep statement. Default 500. */
  sweepBatch?: number
}

type Statements = ReturnType<typeof statements>

const BACKEND = 'MySqlStore'
/** MySQL's and MariaDB's error number for a transaction rolled back as a deadlock victim. */
const ER_LOCK_DEADLOCK = 1213
/** Tries of one statement that keeps losing deadlocks before the store reports it unavailable. */
const DEADLOCK_RETRIES = 5

interface ApplyRow { r: 'ok' | 'gone' | 'exists' | 'fenced', v?: string | number, c?: string | Record<string, string> }

/**
 * A session store in MySQL 8 or MariaDB, shared by every app process that connects to it.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { expressSession } from '@tether/middleware/express'
 * import { MySqlStore } from '@tether/middleware/mysql'
 * const app = express()
 * app.use(expressSession({ secret: process.env.SESSION_SECRET!, store: new MySqlStore({ url: process.env.MYSQL_URL! }) }))
 * ```
 */
export class MySqlStore implements SessionStore {
  /** A change's write id is applied at most once per session (see {@link SessionStore.exactlyOnce}). */
  readonly exactlyOnce = true
  /** Log out everywhere: an indexed owner column, written by the same call as the session. */
  readonly capabilities: StoreCapabilities = { destroyAll: true }
  readonly #pool: MyPool
  readonly #sql: Statements
  readonly #table: string
  readonly #locks: MySqlLocks
  readonly #sweeper: NodeJS.Timeout | undefined
  readonly #sweepBatch: number
  readonly #timeout: number
  #ready: Promise<void> | undefined
  #closed = false

  constructor (options: MySqlStoreOptions) {
    if (typeof options !== 'object' || options === null || typeof options.url !== 'string' || options.url === '') {
      throw tetherError('TETHER_ERR_INVALID_OPTION', "MySqlStore needs a 'url': mysql://user@host:3306/database")
    }
    const table = options.table ?? 'tether_sessions'
    if (typeof table !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,47}$/.test(table)) {
      throw tetherError('TETHER_ERR_INVALID_OPTION', `MySqlStore option 'table' must be letters, digits and _, at most 48 characters; got ${JSON.stringify(table)}`)
    }
    const poolSize = positive('poolSize', options.poolSize, 10)
    const connectTimeout = positive('connectTimeout', options.connectTimeout, 5000)
    this.#timeout = positive('queryTimeout', options.queryTimeout, 5000)
    const cleanupInterval = nonNegative('cleanupInterval', options.cleanupInterval, 60_000)
    this.#sweepBatch = positive('sweepBatch', options.sweepBatch, 500)
    this.#pool = loadMysql2().createPool({
      uri: options.url,
      connectionLimit: poolSize,
      connectTimeout,
      multipleStatements: false,
      charset: 'utf8mb4_bin',
      supportBigNumbers: true,
      bigNumberStrings: true,
      enableKeepAlive: true
    }).promise()
    this.#table = table
    this.#sql = statements(table)
    this.#locks = new MySqlLocks(this.#pool, this.#sql, table)
    if (cleanupInterval > 0) {
      this.#sweeper = setInterval(() => { void this.#sweep() }, cleanupInterval)
      this.#sweeper.unref()
    }
  }

  async load (id: string, options: LoadOptions): Promise<StoredSession | undefined> {
    const { now } = options
    const [rows] = await this.#run('load', [id, now, now])
    const row = (rows as SessionRow[])[0]
    if (row === undefined) return undefined
    const data = typeof row.data === 'string' ? JSON.parse(row.data) as Record<string, string> : row.data
    let expiresAt = Number(row.expires_at)
    const absoluteExpiry = Number(row.absolute_expiry)
    let refreshed = false
    if (options.refreshBelow > 0 && expiresAt - now < options.refreshBelow) {
      const target = Math.min(now + options.idleTimeout, absoluteExpiry)
      if (target > expiresAt) {
        // Sent, not waited for: the WHERE clause makes it a no-op when a destroy or another
        // refresh got there first.
        this.#run('refresh', [target, id, target, now]).catch(() => {})
        expiresAt = target
        refreshed = true
      }
    }
    return { fields: new Map(Object.entries(data)), createdAt: Number(row.created_at), absoluteExpiry, expiresAt, version: Number(row.version), refreshed }
  }

  async apply (id: string, change: SessionChange): Promise<ApplyResult> {
    const [sets] = await this.#write('apply', [
      id,
      change.create?.createdAt ?? null,
      change.create?.absoluteExpiry ?? null,
      patchOf(change),
      JSON.stringify(change.incr),
      Math.floor(change.ttl),
      change.now,
      change.fence ?? null,
      change.owner !== undefined ? 1 : 0,
      change.owner ?? null,
      change.writeId ?? null
    ])
    // A CALL answers with its SELECT's rows, then a status header.
    const row = (sets as [ApplyRow[], unknown])[0][0]!
    if (row.r !== 'ok') return { ok: false, reason: row.r }
    const c = typeof row.c === 'string' ? JSON.parse(row.c) as Record<string, string> : (row.c ?? {})
    const counters = new Map<string, number>()
    for (const [key, value] of Object.entries(c)) counters.set(key, Number(value))
    return { ok: true, version: Number(row.v), counters }
  }

  async destroy (id: string): Promise<void> {
    await this.#run('destroy', [id])
  }

  async destroyAll (owner: string): Promise<number> {
    const now = Date.now()
    const [rows] = await this.#run('countOwned', [owner, now, now])
    await this.#run('destroyAll', [owner])
    return Number((rows as Array<{ n: string | number }>)[0]?.n ?? 0)
  }

  async touch (id: string, ttl: number, now: number): Promise<boolean> {
    const [header] = await this.#run('touch', [now + ttl, id, now, now])
    return (header as { affectedRows: number }).affectedRows === 1
  }

  async lock (id: string, options: LockOptions): Promise<SessionLock | undefined> {
    await this.#prepare()
    try {
      return await this.#locks.lock(id, options)
    } catch (err) {
      throw storeUnavailable(BACKEND, err)
    }
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#sweeper)
    await this.#locks.close()
    await this.#pool.end().catch(() => {})
  }

  /** Delete expired sessions one bounded batch at a time, yielding between batches. */
  async #sweep (): Promise<void> {
    try {
      for (;;) {
        if (this.#closed) return
        const [header] = await this.#run('sweep', [Date.now(), this.#sweepBatch])
        if ((header as { affectedRows: number }).affectedRows < this.#sweepBatch) return
      }
    } catch {
      // Unavailable or closing: the next interval tries again; loads never return expired rows.
    }
  }

  /** Run a prepared statement, creating the schema first if this store has not yet. */
  async #run (name: keyof Statements, values: readonly unknown[]): Promise<MyResult> {
    return await this.#execute(name, values, false)
  }

  /** Run a write (the apply procedure): see {@link MySqlStore.#execute}. */
  async #write (name: keyof Statements, values: readonly unknown[]): Promise<MyResult> {
    return await this.#execute(name, values, true)
  }

  /**
   * Run one statement on a connection of its own, so that a failure says whether it was sent:
   * no connection is `TETHER_ERR_STORE_UNAVAILABLE` (nothing sent). An error the server
   * answered with changed nothing (the apply procedure rolls back); a deadlock victim is run
   * again, as MySQL's manual says to (seen with 300 concurrent writes to one row). Anything
   * else once it was sent (the statement timeout, a connection lost mid-statement) leaves the
   * connection with a statement outstanding, so it is destroyed, not reused; for a write
   * (`unknownIfSent`) that is `TETHER_ERR_STORE_OUTCOME_UNKNOWN`: the CALL may still commit.
   */
  async #execute (name: keyof Statements, values: readonly unknown[], unknownIfSent: boolean): Promise<MyResult> {
    await this.#prepare()
    for (let attempt = 1; ; attempt++) {
      let conn: MyPoolConnection
      try {
        conn = await this.#pool.getConnection()
      } catch (err) {
        throw storeUnavailable(BACKEND, err)
      }
      try {
        const result = await conn.execute({ sql: this.#sql[name], timeout: this.#timeout }, values)
        conn.release()
        return result
      } catch (err) {
        if (!isServerError(err)) {
          conn.destroy()
          throw unknownIfSent ? outcomeUnknown(BACKEND, err) : storeUnavailable(BACKEND, err)
        }
        conn.release()
        if ((err as { errno?: number }).errno === ER_LOCK_DEADLOCK && attempt < DEADLOCK_RETRIES) {
          await sleep(attempt * Math.random() * 5)
          continue
        }
        this.#fail(err)
      }
    }
  }

  /** A driver failure as the store's typed error. */
  #fail (err: unknown): never {
    const message = (err as Error).message ?? ''
    if (message.startsWith(NOT_A_COUNTER)) throw tetherError('TETHER_ERR_NOT_A_COUNTER', `increment('${message.slice(NOT_A_COUNTER.length)}'): the stored value is not an integer, or the result not a safe integer`)
    throw storeUnavailable(BACKEND, err)
  }

  async #prepare (): Promise<void> {
    if (this.#closed) throw tetherError('TETHER_ERR_STORE_UNAVAILABLE', `session store (${BACKEND}) unavailable: the store is closed`)
    this.#ready ??= this.#ensureSchema()
    try {
      await this.#ready
    } catch (err) {
      throw storeUnavailable(BACKEND, err)
    }
  }

  /**
   * Create the schema once, under a named lock so that processes starting together do not
   * race on the procedure (DROP + CREATE).
   */
  async #ensureSchema (): Promise<void> {
    try {
      const conn = await this.#pool.getConnection()
      try {
        const name = `tether:ddl:${this.#table}`
        await conn.query('SELECT GET_LOCK(?, 30)', [name])
        try {
          const [have] = await conn.query('SELECT COUNT(*) AS n FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_name = ?', [`${this.#table}_apply`]) as [Array<{ n: string | number }>, unknown]
          const at = await conn.query(this.#sql.version).then(([rows]) => (rows as Array<{ version: number }>)[0]?.version, () => undefined)
          // The procedure is created last and the version row after it: both present and
          // current means the schema is complete. Otherwise create, or migrate from version 1.
          if (Number(have[0]?.n) === 0 || at === undefined || at < SCHEMA_VERSION) {
            const [column] = await conn.query('SELECT COUNT(*) AS n FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = \'writes\'', [this.#table]) as [Array<{ n: string | number }>, unknown]
            const statements = ddl(this.#table)
            await conn.query(statements[0]!)
            await conn.query(statements[1]!)
            if (Number(column[0]?.n) === 0 && at !== undefined) await conn.query(addWritesColumn(this.#table))
            for (const statement of statements.slice(2)) await conn.query(statement)
          }
        } finally {
          await conn.query('SELECT RELEASE_LOCK(?)', [name])
        }
        const [rows] = await conn.query(this.#sql.version) as [Array<{ version: number }>, unknown]
        const found = rows[0]?.version
        if (found !== SCHEMA_VERSION) throw new Error(`table ${this.#table} is at schema version ${String(found)}, this code uses version ${SCHEMA_VERSION}`)
      } finally {
        conn.release()
      }
    } catch (err) {
      this.#ready = undefined
      throw err
    }
  }
}

/**
 * The JSON_MERGE_PATCH document of a change: each set key to its text, each deleted key to
 * null (deletes after sets, as everywhere). Written by hand, not through an object, so that a
 * key such as `__proto__` is a plain key.
 */
function patchOf (change: SessionChange): string {
  const patch = new Map<string, string | null>()
  for (const [key, json] of change.set) patch.set(key, json)
  for (const key of change.del) patch.set(key, null)
  return `{${[...patch].map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`
}

/** An error the server answered with (an SQLSTATE, not fatal to the connection), not a local one. */
function isServerError (err: unknown): boolean {
  const e = err as { sqlState?: unknown, fatal?: unknown } | null
  return typeof e === 'object' && e !== null && typeof e.sqlState === 'string' && e.fatal !== true
}

function positive (option: string, value: unknown, fallback: number): number {
  const n = nonNegative(option, value, fallback)
  if (n === 0) throw tetherError('TETHER_ERR_INVALID_OPTION', `MySqlStore option '${option}' must be positive; got 0`)
  return n
}

function nonNegative (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw tetherError('TETHER_ERR_INVALID_OPTION', `MySqlStore option '${option}' must be a non-negative number; got ${String(value)}`)
  }
  return Math.floor(value)
}
