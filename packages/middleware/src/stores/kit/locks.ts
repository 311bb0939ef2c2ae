/**
 * A store's per-session lock (lock mode), minus the store's own I/O. A store supplies three
 * steps against its backend (try to take the lock, extend its lease, drop it) and announces
 * releases it hears of; StoreLocks does the rest:
 *
 * - waiting ({@link LockWaiters}): one contender per session and process, sleeping until a
 *   release is announced or the holder's lease runs out, never polling the store;
 * - holding: while the lock is held its lease is extended every third of the lease, so a slow
 *   but live holder keeps it; once an extension finds it lost, or past the lease when renewal
 *   is off, this process's next waiter may contend (the local gate never outlives the store's
 *   lock it stands for). The store's fencing token refuses the late holder's write;
 * - release: once, idempotent, whatever the caller does.
 */
import type { LockOptions, SessionLock } from '../../store.js'
import { LockWaiters } from './lock-waiters.js'
import type { LockAttempt } from './lock-waiters.js'

/**
 * The three lock steps a store implements against its backend.
 *
 * @example
 * ```ts
 * const backend: LockBackend = {
 *   attempt: async (id, lease) => tryTake(id, lease),           // { token } | { retryIn } | 'missing'
 *   renew: async (id, token, lease) => extend(id, token, lease),  // false once lost
 *   release: async (id, token) => { await drop(id, token) }
 * }
 * ```
 */
export interface LockBackend {
  /** One try: a fencing token, the ms left on another holder's lease, or 'missing' (no session). */
  attempt (id: string, lease: number): Promise<LockAttempt> | LockAttempt
  /**
   * Extend the lease of the lock held under `token` to `lease` ms from now. False once it was
   * lost (expired and taken over, or the session is gone). A throw is ignored: the next
   * extension retries while the lease lasts.
   */
  renew (id: string, token: number, lease: number): Promise<boolean> | boolean
  /** Drop the lock held under `token`; a no-op when it is no longer ours. */
  release (id: string, token: number): Promise<void> | void
}

/**
 * @example
 * ```ts
 * const locks = new StoreLocks(backend)
 * subscriber.on('message', (id) => locks.released(id))
 * const lock = await locks.lock(id, { lease: 10_000, wait: 5_000 })
 * ```
 */
export class StoreLocks {
  readonly #backend: LockBackend
  readonly #waiters = new LockWaiters()
  /** Renewal and hard-cap timers of the locks held now. */
  readonly #timers = new Set<NodeJS.Timeout>()

  constructor (backend: LockBackend) {
    this.#backend = backend
  }

  /**
   * A release was announced, for session `id` or, when the signal cannot say which, for any
   * session: wakes this process's contender.
   */
  released (id?: string): void {
    this.#waiters.released(id)
  }

  /** Take the lock of `id`; `undefined` when the session does not exist. */
  async lock (id: string, options: LockOptions): Promise<SessionLock | undefined> {
    return await this.#waiters.acquire(id, options.wait, () => this.#backend.attempt(id, options.lease), (token, leave) => this.#hold(id, token, options, leave))
  }

  /** Stop every renewal (the store is closing; its leases run out by themselves). */
  close (): void {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
  }

  #hold (id: string, token: number, options: LockOptions, leave: () => void): SessionLock {
    const backend = this.#backend
    let timer: NodeJS.Timeout | undefined
    const forget = (): void => {
      if (timer === undefined) return
      clearTimeout(timer)
      this.#timers.delete(timer)
      timer = undefined
    }
    if (options.renew !== false) {
      timer = setInterval(() => {
        let renewed: Promise<boolean> | boolean
        try {
          renewed = backend.renew(id, token, options.lease)
        } catch {
          return
        }
        void Promise.resolve(renewed).then((ok) => {
          // Lost (the process stalled past its lease): stop renewing; the fence refuses our write.
          if (!ok) { forget(); leave() }
        }, () => {})
      }, Math.max(10, Math.floor(options.lease / 3)))
    } else {
      // The lease is a hard cap: past it, this process's next waiter may contend.
      timer = setTimeout(() => { forget(); leave() }, options.lease)
    }
    timer.unref()
    this.#timers.add(timer)
    let released: Promise<void> | undefined
    return {
      token,
      release: () => {
        released ??= (async () => {
          forget()
          try {
            await backend.release(id, token)
          } finally {
            leave()
          }
        })()
        return released
      }
    }
  }
}
