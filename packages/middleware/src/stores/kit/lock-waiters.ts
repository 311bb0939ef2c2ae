/**
 * The waiting half of a cross-process session lock (StoreLocks is the whole), shared by the
 * stores that have one.
 *
 * Only the first of a process's requests for a session contends in the store; the others queue
 * in process, FIFO (a {@link KeyedMutex}). The contender tries, and when the lock is held it
 * sleeps until a release is announced (Redis pub/sub, an inotify'd file) or until the holder's
 * lease runs out, never past the caller's wait. It never polls the store.
 */
import { tetherError } from '../../errors.js'
import { KeyedMutex } from './keyed-mutex.js'

/** What one try at the store's lock found. */
export type LockAttempt =
  | { readonly token: number }
  /** Held by another: it may be free after this many ms (its lease), or on a release. */
  | { readonly retryIn: number }
  /** The session does not exist: nothing to lock. */
  | 'missing'

interface Interest { epoch: number, wake: (() => void) | undefined }

/**
 * @example
 * ```ts
 * const waiters = new LockWaiters()
 * subscriber.on('message', (id) => waiters.released(id))
 * const lock = await waiters.acquire(id, 5000, () => tryInStore(id), (token, leave) => held(token, leave))
 * ```
 */
export class LockWaiters {
  readonly #gate = new KeyedMutex()
  readonly #interests = new Map<string, Interest>()

  /**
   * A release was announced: for session `id`, or for any session when the signal does not
   * say which. Wakes this process's contender for it.
   */
  released (id?: string): void {
    if (id === undefined) {
      for (const interest of this.#interests.values()) this.#bump(interest)
      return
    }
    const interest = this.#interests.get(id)
    if (interest !== undefined) this.#bump(interest)
  }

  /**
   * Wait for the lock of `id`, trying with `attempt`; `grant` turns a token into the held lock
   * and owns `leave` (which lets this process's next waiter contend) from then on.
   */
  async acquire<T> (id: string, wait: number, attempt: () => Promise<LockAttempt> | LockAttempt, grant: (token: number, leave: () => void) => T): Promise<T | undefined> {
    const deadline = Date.now() + wait
    const leave = await this.#gate.acquire(id, wait)
    const interest: Interest = { epoch: 0, wake: undefined }
    this.#interests.set(id, interest)
    try {
      for (;;) {
        const epoch = interest.epoch
        const found = await attempt()
        if (found === 'missing') {
          this.#interests.delete(id)
          leave()
          return undefined
        }
        if ('token' in found) {
          this.#interests.delete(id)
          return grant(found.token, leave)
        }
        const remaining = deadline - Date.now()
        if (remaining <= 0) throw tetherError('TETHER_ERR_LOCK_TIMEOUT', `session lock not granted within ${wait} ms`)
        // A release announced while the attempt was on its way bumped the epoch: try again now
        // rather than sleep through it.
        if (interest.epoch !== epoch) continue
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(found.retryIn > 0 ? found.retryIn + 5 : remaining, remaining))
          function done (): void { clearTimeout(timer); interest.wake = undefined; resolve() }
          interest.wake = done
        })
      }
    } catch (err) {
      this.#interests.delete(id)
      leave()
      throw err
    }
  }

  #bump (interest: Interest): void {
    interest.epoch++
    interest.wake?.()
  }
}
