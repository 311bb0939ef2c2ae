/**
 * Cross-process "a lock was released" signal for SqliteStore, the counterpart of RedisStore's
 * pub/sub channel: releasing bumps the mtime of a sidecar file, and every process watching it
 * (inotify through fs.watch) wakes its waiters. Waiters therefore sleep until a release or the
 * lease deadline; they never poll the database.
 *
 * The signal carries no session id (inotify cannot), so one release wakes the front waiter of
 * every session waiting in every process; each retries once. That costs one short transaction
 * per waiting session per release, which is cheap for the per-host scale SQLite serves.
 */
import fs from 'node:fs'
import type { FSWatcher } from 'node:fs'

/**
 * @example
 * ```ts
 * const signal = new ReleaseSignal('/var/lib/app/sessions.db-tether-unlock')
 * const off = signal.subscribe(() => retryWaiters())
 * signal.notify() // after committing a release
 * ```
 */
export class ReleaseSignal {
  readonly #listeners = new Set<() => void>()
  readonly #fd: number | undefined
  readonly #watcher: FSWatcher | undefined

  /** `path` undefined: one process only (an in-memory database); the signal stays local. */
  constructor (path: string | undefined) {
    if (path === undefined) return
    this.#fd = fs.openSync(path, 'a')
    // Set up synchronously in the constructor: a release committed after this line is seen.
    this.#watcher = fs.watch(path, { persistent: false }, () => this.#fire())
    // A deleted or replaced sidecar stops the events; waiters then wake at the lease deadline.
    this.#watcher.on('error', () => {})
  }

  /** Call `listener` on every release, here or in another process. Returns the unsubscribe. */
  subscribe (listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Announce a release to this process and, through the sidecar file, to the others. */
  notify (): void {
    queueMicrotask(() => this.#fire())
    if (this.#fd === undefined) return
    try {
      const now = new Date()
      fs.futimesSync(this.#fd, now, now)
    } catch {
      // Best effort: other processes still wake when the lease they wait on runs out.
    }
  }

  close (): void {
    this.#watcher?.close()
    if (this.#fd !== undefined) {
      try { fs.closeSync(this.#fd) } catch {}
    }
    this.#listeners.clear()
  }

  #fire (): void {
    for (const listener of [...this.#listeners]) listener()
  }
}
