/**
 * A FIFO mutex per key with bounded waits, in process.
 *
 * MemoryStore uses it as its session lock; LockWaiters puts it in front of a shared store's
 * lock (Redis, SQLite) so that only one request per session and process contends for it at a
 * time: a release then wakes one waiter per process rather than every waiting request (no
 * thundering herd).
 */
import { tetherError } from '../../errors.js'

interface Waiter {
  grant: (release: () => void) => void
  timer: NodeJS.Timeout | undefined
}

interface Slot { waiters: Waiter[] }

/**
 * @example
 * ```ts
 * const mutex = new KeyedMutex()
 * const release = await mutex.acquire('session-id', 5_000) // rejects with TETHER_ERR_LOCK_TIMEOUT after 5 s
 * try { await work() } finally { release() }
 * ```
 */
export class KeyedMutex {
  readonly #slots = new Map<string, Slot>()

  /** Resolve with a release function once `key` is ours; reject after `timeoutMs`. */
  acquire (key: string, timeoutMs: number): Promise<() => void> {
    const slot = this.#slots.get(key)
    if (slot === undefined) {
      this.#slots.set(key, { waiters: [] })
      return Promise.resolve(this.#releaser(key))
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: resolve,
        timer: setTimeout(() => {
          const i = slot.waiters.indexOf(waiter)
          if (i !== -1) slot.waiters.splice(i, 1)
          reject(tetherError('TETHER_ERR_LOCK_TIMEOUT', `session lock not granted within ${timeoutMs} ms`))
        }, Math.max(0, timeoutMs))
      }
      slot.waiters.push(waiter)
    })
  }

  #releaser (key: string): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const slot = this.#slots.get(key)
      if (slot === undefined) return
      const next = slot.waiters.shift()
      if (next === undefined) {
        this.#slots.delete(key)
        return
      }
      clearTimeout(next.timer)
      next.grant(this.#releaser(key))
    }
  }
}
