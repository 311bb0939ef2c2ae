/**
 * SqliteStore on better-sqlite3: an embedded store that several processes on one host share
 * through one database file (WAL mode, busy timeout). Every write is one IMMEDIATE
 * transaction, so checks (exists, gone, fence, counters) and writes are atomic across
 * processes; reads run in a WAL snapshot and never block writers.
 *
 * better-sqlite3 is synchronous. Transactions here are short (a few indexed rows), so the
 * event loop is held for microseconds, except when another process holds the write lock:
 * then SQLite's busy handler waits, up to `busyTimeout`.
 */
import { tetherError, storeUnavailable } from '../../errors.js'
import type { ApplyResult, LoadOptions, LockOptions, SessionChange, SessionLock, SessionStore, StoredSession } from '../../store.js'
import { addCounters, StoreLocks } from '../kit/index.js'
import type { LockAttempt } from '../kit/index.js'
import { loadBetterSqlite3 } from './driver.js'
import type { Database, Statement } from './driver.js'
import { SCHEMA, SQL } from './schema.js'
import type { SessionRow } from './schema.js'
import { ReleaseSignal } from './wakeup.js'

/**
 * Options of {@link SqliteStore}.
 *
 * @example
 * ```ts
 * const options: SqliteStoreOptions = { path: '/var/lib/app/sessions.db', busyTimeout: 2_000, cleanupInterval: 300_000 }
 * ```
 */
export interface SqliteStoreOptions {
  /** Database file, created if missing (its directory must exist). `':memory:'` for one process. */
  path: string
  /** How long a write waits for another process's write lock (ms). Default 5000. */
  busyTimeout?: number
  /** How often expired sessions are deleted (ms); 0 turns the sweep off. Default 60 s. */
  cleanupInterval?: number
}

type Statements = { [K in keyof typeof SQL]: Statement }

const SWEEP_BATCH = 500
/** Write ids are remembered for this many versions of a session: far more than can be in flight. */
const RECENT_WRITES = 32
const BACKEND = 'SqliteStore'

/**
 * A session store in one SQLite file, shared by every process on the host that opens it.
 *
 * Lock mode works across those processes: the lease and its fencing token live in the
 * session's row, and waiters sleep until a release (announced through a sidecar file watched
 * with inotify) or until the lease they wait on runs out; they do not poll the database.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { fastifySession, SqliteStore } from '@tether/middleware'
 * const app = Fastify()
 * app.register(fastifySession, { secret: process.env.SESSION_SECRET!, store: new SqliteStore({ path: './data/sessions.db' }) })
 * ```
 */
export class SqliteStore implements SessionStore {
  /** A change's write id is applied at most once per session (see {@link SessionStore.exactlyOnce}). */
  readonly exactlyOnce = true
  readonly #db: Database
  readonly #sql: Statements
  readonly #signal: ReleaseSignal
  readonly #locks: StoreLocks
  readonly #sweeper: NodeJS.Timeout | undefined
  readonly #unsubscribe: () => void
  #closed = false

  constructor (options: SqliteStoreOptions) {
    if (typeof options !== 'object' || options === null || typeof options.path !== 'string' || options.path === '') {
      throw tetherError('TETHER_ERR_INVALID_OPTION', "SqliteStore needs a 'path': a database file, or ':memory:'")
    }
    const busyTimeout = nonNegative('busyTimeout', options.busyTimeout, 5000)
    const cleanupInterval = nonNegative('cleanupInterval', options.cleanupInterval, 60_000)
    const Driver = loadBetterSqlite3()
    try {
      this.#db = new Driver(options.path, { timeout: busyTimeout })
    } catch (err) {
      throw tetherError('TETHER_ERR_INVALID_OPTION', `SqliteStore cannot open '${options.path}': ${(err as Error).message}`, { cause: err })
    }
    try {
      this.#db.pragma('journal_mode = WAL')
      // NORMAL is durable against process crashes in WAL mode; only a power loss can drop the
      // last commits, which for sessions means a few users log in again.
      this.#db.pragma('synchronous = NORMAL')
      this.#db.transaction(() => this.#db.exec(SCHEMA)).immediate()
      this.#sql = Object.fromEntries(Object.entries(SQL).map(([name, text]) => [name, this.#db.prepare<unknown[]>(text)])) as Statements
      this.#signal = new ReleaseSignal(this.#db.memory ? undefined : `${this.#db.name}-tether-unlock`)
    } catch (err) {
      this.#db.close()
      throw storeUnavailable(BACKEND, err)
    }
    this.#locks = new StoreLocks({
      attempt: (id, lease) => {
        // One short IMMEDIATE transaction; a release announced while it ran is not slept
        // through (the waiters count announcements, see lock-waiters.ts).
        return this.#run(() => this.#tryLock(id, lease))
      },
      renew: (id, token, lease) => this.#sql.renewLock.run(Date.now() + lease, id, token, Date.now()).changes === 1,
      release: (id, token) => {
        if (this.#closed) return
        const freed = this.#run(() => this.#sql.releaseLock.run(id, token).changes === 1)
        if (freed) this.#signal.notify()
      }
    })
    // The signal cannot say which session was released: every waiter of this process retries.
    this.#unsubscribe = this.#signal.subscribe(() => { this.#locks.released() })
    if (cleanupInterval > 0) {
      this.#sweeper = setInterval(() => this.#sweep(), cleanupInterval)
      this.#sweeper.unref()
    }
  }

  async load (id: string, options: LoadOptions): Promise<StoredSession | undefined> {
    return this.#run(() => {
      const { now } = options
      const found = this.#db.transaction(() => {
        const row = this.#sql.selectSession.get(id) as SessionRow | undefined
        if (row === undefined || !alive(row, now)) return undefined
        const fields = new Map<string, string>()
        for (const f of this.#sql.selectFields.all(id) as Array<{ key: string, value: string }>) fields.set(f.key, f.value)
        return { row, fields }
      }).deferred()
      if (found === undefined) return undefined
      const { row, fields } = found
      let expiresAt = row.expires_at
      let refreshed = false
      if (options.refreshBelow > 0 && row.expires_at - now < options.refreshBelow) {
        const target = Math.min(now + options.idleTimeout, row.absolute_expiry)
        // A separate write keeps plain reads off the write lock; the WHERE clause makes it a
        // no-op when a destroy or another refresh got there first.
        if (target > row.expires_at && this.#sql.refresh.run(target, id, target, now).changes === 1) {
          expiresAt = target
          refreshed = true
        }
      }
      return { fields, createdAt: row.created_at, absoluteExpiry: row.absolute_expiry, expiresAt, version: row.version, refreshed }
    })
  }

  async apply (id: string, change: SessionChange): Promise<ApplyResult> {
    return this.#run(() => this.#db.transaction((): ApplyResult => {
      const { now } = change
      // A repeat of a write this session has applied: its result, nothing applied again.
      const seen = change.writeId === undefined ? undefined : this.#sql.selectWrite.get(id, change.writeId) as { result: string } | undefined
      if (seen !== undefined) return decodeResult(seen.result)
      const row = this.#sql.selectSession.get(id) as SessionRow | undefined
      const live = row !== undefined && alive(row, now)
      if (change.create !== undefined) {
        if (live) return { ok: false, reason: 'exists' }
      } else if (!live) {
        return { ok: false, reason: 'gone' }
      }
      if (change.fence !== undefined && !(live && row.lock_token === change.fence && (row.lock_expires ?? 0) > Date.now())) {
        return { ok: false, reason: 'fenced' }
      }
      const absolute = change.create?.absoluteExpiry ?? row!.absolute_expiry
      const ttl = Math.min(change.ttl, absolute - now)
      if (ttl <= 0) return { ok: false, reason: 'gone' }
      // Every counter is checked before the first write; a throw rolls the transaction back.
      const counters = addCounters(change.incr, (key) => live ? (this.#sql.selectField.get(id, key) as { value: string } | undefined)?.value : undefined)
      if (change.create !== undefined) {
        if (row !== undefined) this.#delete(id) // a dead session under this id: its rows go first
        this.#sql.insertSession.run(id, change.create.createdAt, change.create.absoluteExpiry, now)
      }
      for (const [key, json] of change.set) this.#sql.upsertField.run(id, key, json)
      for (const key of change.del) this.#sql.deleteField.run(id, key)
      for (const [key, value] of counters) this.#sql.upsertField.run(id, key, String(value))
      const committed = this.#sql.commit.get(Math.min(now + ttl, absolute), id) as { version: number }
      if (change.writeId !== undefined) {
        this.#sql.insertWrite.run(id, change.writeId, committed.version, JSON.stringify([committed.version, [...counters]]))
        this.#sql.pruneWrites.run(id, committed.version - RECENT_WRITES)
      }
      return { ok: true, version: committed.version, counters }
    }).immediate())
  }

  async destroy (id: string): Promise<void> {
    const wasLocked = this.#run(() => this.#db.transaction(() => this.#delete(id)).immediate())
    // Waiters for this session's lock learn now that there is nothing left to lock.
    if (wasLocked) this.#signal.notify()
  }

  async touch (id: string, ttl: number, now: number): Promise<boolean> {
    return this.#run(() => this.#sql.touch.run(now + ttl, id, now, now).changes === 1)
  }

  async lock (id: string, options: LockOptions): Promise<SessionLock | undefined> {
    this.#open()
    return await this.#locks.lock(id, options)
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#sweeper)
    this.#locks.close()
    this.#unsubscribe()
    this.#signal.close()
    this.#db.close()
  }

  /** A token, or the ms left on another holder's lease, or 'missing'. */
  #tryLock (id: string, lease: number): LockAttempt {
    return this.#db.transaction(() => {
      const now = Date.now()
      const row = this.#sql.selectSession.get(id) as SessionRow | undefined
      if (row === undefined || !alive(row, now)) return 'missing' as const
      if (row.lock_token !== null && (row.lock_expires ?? 0) > now) return { retryIn: (row.lock_expires ?? now) - now }
      const taken = this.#sql.takeLock.get(now + lease, id) as { lock_token: number }
      return { token: taken.lock_token }
    }).immediate()
  }

  /** Delete a session's rows (inside a transaction). Returns whether it held a lock. */
  #delete (id: string): boolean {
    this.#sql.deleteFields.run(id)
    this.#sql.deleteWrites.run(id)
    const gone = this.#sql.deleteSession.get(id) as { lock_token: number | null } | undefined
    return gone !== undefined && gone.lock_token !== null
  }

  /** Delete expired sessions in small batches, each its own short transaction. */
  #sweep (): void {
    if (this.#closed) return
    try {
      const batch = this.#db.transaction(() => {
        const ids = this.#sql.selectExpired.pluck().all(Date.now(), SWEEP_BATCH) as string[]
        for (const id of ids) this.#delete(id)
        return ids.length
      }).immediate()
      // More left: continue after other work had its turn rather than hold the write lock.
      if (batch === SWEEP_BATCH) setImmediate(() => this.#sweep())
    } catch {
      // Busy or closing: the next interval tries again; loads never return expired rows anyway.
    }
  }

  #open (): void {
    if (this.#closed) throw tetherError('TETHER_ERR_STORE_UNAVAILABLE', 'session store (SqliteStore) unavailable: the store is closed')
  }

  /** Run a synchronous database step, reporting driver failures as `TETHER_ERR_STORE_UNAVAILABLE`. */
  #run<T> (step: () => T): T {
    this.#open()
    try {
      return step()
    } catch (err) {
      // A TetherError (a counter that is not one) passes through as it is.
      throw storeUnavailable(BACKEND, err)
    }
  }
}

/** A remembered write's result, as insertWrite stored it: [version, [[key, counter], …]]. */
function decodeResult (json: string): ApplyResult {
  const [version, counters] = JSON.parse(json) as [number, Array<[string, number]>]
  return { ok: true, version, counters: new Map(counters) }
}

function alive (row: SessionRow, now: number): boolean {
  return row.expires_at > now && row.absolute_expiry > now
}

function nonNegative (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw tetherError('TETHER_ERR_INVALID_OPTION', `SqliteStore option '${option}' must be a non-negative number of milliseconds; got ${String(value)}`)
  }
  return Math.floor(value)
}
