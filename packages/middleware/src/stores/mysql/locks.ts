/**
 * MySqlStore's session lock: a server-side named lock (`GET_LOCK`) as the mutex, and a lease
 * with a fencing token in the session's row.
 *
 * - Waiting: a contender blocks inside the server in `GET_LOCK(name, wait)`; the server wakes
 *   one waiter per release, across every process, and nobody polls. In process, only one
 *   request per session contends at a time (a {@link KeyedMutex}), so a release wakes one
 *   waiter per process rather than every waiting request, and a waiting session pins at most
 *   one pooled connection per process.
 * - Holding: the named lock lives as long as the connection that took it, so the connection
 *   stays pinned while the lock is held, and a holder that crashes frees it at once (the
 *   server drops its connection). The row's lease, renewed every third of it, bounds a holder
 *   that stalls; its fencing token refuses the writes of a holder whose lease ran out. With
 *   `renew: false` the lock is released when the lease ends.
 * - A lease left in the row by a holder whose connection died is waited out (one sleep to its
 *   end, not a poll) and then taken over with a larger token.
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { tetherError } from '../../errors.js'
import type { LockOptions, SessionLock } from '../../store.js'
import { KeyedMutex } from '../kit/index.js'
import type { MyPool, MyPoolConnection } from './driver.js'
import type { statements } from './schema.js'

type Statements = ReturnType<typeof statements>

interface ResultHeader { affectedRows: number, insertId: number }

/**
 * @example
 * ```ts
 * const locks = new MySqlLocks(pool, sql, 'tether_sessions')
 * const lock = await locks.lock(id, { lease: 10_000, wait: 5_000 })
 * ```
 */
export class MySqlLocks {
  readonly #pool: MyPool
  readonly #sql: Statements
  readonly #table: string
  readonly #gate = new KeyedMutex()
  readonly #held = new Set<() => Promise<void>>()

  constructor (pool: MyPool, sql: Statements, table: string) {
    this.#pool = pool
    this.#sql = sql
    this.#table = table
  }

  async lock (id: string, options: LockOptions): Promise<SessionLock | undefined> {
    const deadline = Date.now() + options.wait
    const leave = await this.#gate.acquire(id, options.wait)
    let conn: MyPoolConnection | undefined
    const name = lockName(this.#table, id)
    try {
      conn = await this.#pool.getConnection()
      const seconds = Math.max(0, deadline - Date.now()) / 1000
      const [rows] = await conn.query(this.#sql.getLock, [name, seconds]) as [Array<{ got: number | null }>, unknown]
      if (rows[0]?.got !== 1) throw tetherError('TETHER_ERR_LOCK_TIMEOUT', `session lock not granted within ${options.wait} ms`)
      for (;;) {
        const now = Date.now()
        const [taken] = await conn.execute(this.#sql.takeLease, [options.lease, id, now, now]) as [ResultHeader, unknown]
        if (taken.affectedRows === 1) return this.#hold(id, name, taken.insertId, options, conn, leave)
        const [found] = await conn.execute(this.#sql.leaseLeft, [id]) as [Array<{ left_ms: string | null, expires_at: string, absolute_expiry: string }>, unknown]
        const row = found[0]
        if (row === undefined || Number(row.expires_at) <= now || Number(row.absolute_expiry) <= now) {
          await conn.query(this.#sql.releaseLock, [name])
          conn.release()
          leave()
          return undefined
        }
        // A holder whose connection died left its lease: wait it out once, then take over.
        const left = Number(row.left_ms ?? 0)
        if (Date.now() + left > deadline) throw tetherError('TETHER_ERR_LOCK_TIMEOUT', `session lock not granted within ${options.wait} ms`)
        await sleep(Math.max(1, left + 1))
      }
    } catch (err) {
      // Dropping the connection frees any named lock it took.
      conn?.destroy()
      leave()
      throw err
    }
  }

  /** Release every held lock (the store is closing). */
  async close (): Promise<void> {
    await Promise.all([...this.#held].map(async (release) => await release()))
  }

  #hold (id: string, name: string, token: number, options: LockOptions, conn: MyPoolConnection, leave: () => void): SessionLock {
    let timer: NodeJS.Timeout | undefined
    let released: Promise<void> | undefined
    const release = (): Promise<void> => {
      released ??= (async () => {
        clearInterval(timer)
        this.#held.delete(release)
        try {
          await conn.execute(this.#sql.release, [id, token])
          await conn.query(this.#sql.releaseLock, [name])
          conn.release()
        } catch {
          // The connection is in doubt: dropping it frees the named lock on the server.
          conn.destroy()
        } finally {
          leave()
        }
      })()
      return released
    }
    if (options.renew !== false) {
      timer = setInterval(() => {
        conn.execute(this.#sql.renew, [options.lease, id, token]).then(([r]) => {
          // Lost (stalled past the lease and taken over): let go; the fence refuses our write.
          if ((r as ResultHeader).affectedRows !== 1) void release()
        }, () => {})
      }, Math.max(10, Math.floor(options.lease / 3)))
    } else {
      // The lease is a hard cap on how long the lock is held.
      timer = setTimeout(() => { void release() }, options.lease)
    }
    timer.unref()
    this.#held.add(release)
    return { token, release }
  }
}

/** GET_LOCK names are at most 64 characters: a digest of the table and session id. */
function lockName (table: string, id: string): string {
  return `tether:${createHash('sha256').update(`${table}\u0000${id}`).digest('base64url').slice(0, 40)}`
}
