/**
 * MemoryStore: the default for a single process. Bounded (LRU eviction past `maxEntries`)
 * and expiring (lazily on access, plus a periodic sweep), so it cannot grow without limit.
 * Not shared between processes: use RedisStore or SqliteStore for a cluster.
 */
import { tetherError } from '../../errors.js'
import { applyToFields, KeyedMutex } from '../kit/index.js'
import type { ApplyResult, InvalidationChannel, LoadOptions, LockOptions, SessionChange, SessionLock, SessionRecord, SessionStore, StoreCapabilities, StoredSession } from '../../store.js'

/**
 * A session, its owner (the `owner` option's index) and the results of its recent writes by
 * write id (insertion order: oldest first).
 */
type Entry = SessionRecord & { owner?: string, writes?: Map<string, ApplyResult & { ok: true }> }

/** How many recent write ids a session remembers: far more than can be in flight for one session. */
const RECENT_WRITES = 32

interface Held { token: number, timer: NodeJS.Timeout | undefined, release: () => void }

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Most sessions kept; the least recently used is evicted past it. Default 10 000. */
  maxEntries?: number
  /** How often expired entries are swept (ms). Default 60 s. */
  sweepInterval?: number
}

/**
 * An in-process session store.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { fastifySession, MemoryStore } from '@tether/middleware'
 * const app = Fastify()
 * app.register(fastifySession, { secret: process.env.SESSION_SECRET!, store: new MemoryStore({ maxEntries: 50_000 }) })
 * ```
 */
export class MemoryStore implements SessionStore {
  /** A change's write id is applied at most once per session (see {@link SessionStore.exactlyOnce}). */
  readonly exactlyOnce = true
  readonly capabilities: StoreCapabilities = { destroyAll: true }
  readonly #entries = new Map<string, Entry>()
  /** Owner → ids of the sessions written with that owner (log out everywhere). */
  readonly #owners = new Map<string, Set<string>>()
  readonly #max: number
  readonly #sweeper: NodeJS.Timeout
  readonly #mutex = new KeyedMutex()
  readonly #held = new Map<string, Held>()
  #fence = 0
  readonly #listeners = new Set<(id: string) => void>()

  constructor (options: MemoryStoreOptions = {}) {
    const max = options.maxEntries ?? 10_000
    if (!Number.isSafeInteger(max) || max < 1) throw tetherError('TETHER_ERR_INVALID_OPTION', `MemoryStore option 'maxEntries' must be a positive integer; got ${String(max)}`)
    this.#max = max
    this.#sweeper = setInterval(() => this.#sweep(Date.now()), options.sweepInterval ?? 60_000)
    this.#sweeper.unref()
  }

  /** Sessions currently held (expired ones not yet swept included). */
  get size (): number { return this.#entries.size }

  async load (id: string, options: LoadOptions): Promise<StoredSession | undefined> {
    const entry = this.#live(id, options.now)
    if (entry === undefined) return undefined
    let refreshed = false
    if (options.refreshBelow > 0 && entry.expiresAt - options.now < options.refreshBelow) {
      const expiresAt = Math.min(options.now + options.idleTimeout, entry.absoluteExpiry)
      if (expiresAt > entry.expiresAt) {
        entry.expiresAt = expiresAt
        refreshed = true
      }
    }
    return { fields: new Map(entry.fields), createdAt: entry.createdAt, absoluteExpiry: entry.absoluteExpiry, expiresAt: entry.expiresAt, version: entry.version, refreshed }
  }

  async apply (id: string, change: SessionChange): Promise<ApplyResult> {
    let entry = this.#live(id, change.now)
    // A repeat of a write this session has applied: its result, nothing applied again.
    const seen = change.writeId === undefined ? undefined : entry?.writes?.get(change.writeId)
    if (seen !== undefined) return seen
    if (change.create !== undefined) {
      if (entry !== undefined) return { ok: false, reason: 'exists' }
      entry = { fields: new Map(), createdAt: change.create.createdAt, absoluteExpiry: change.create.absoluteExpiry, expiresAt: 0, version: 0 }
    } else if (entry === undefined) {
      return { ok: false, reason: 'gone' }
    }
    if (change.fence !== undefined && this.#held.get(id)?.token !== change.fence) return { ok: false, reason: 'fenced' }
    // Whole or not at all: a counter that is not an integer throws before anything is written.
    const counters = applyToFields(entry.fields, change)
    entry.version++
    entry.expiresAt = Math.min(change.now + change.ttl, entry.absoluteExpiry)
    if (change.owner !== undefined) this.#own(id, entry, change.owner)
    this.#entries.delete(id)
    this.#entries.set(id, entry)
    this.#changed(id)
    if (this.#entries.size > this.#max) this.#evict()
    const result = { ok: true as const, version: entry.version, counters }
    if (change.writeId !== undefined) remember(entry, change.writeId, result)
    return result
  }

  async destroy (id: string): Promise<void> {
    this.#delete(id)
  }

  async destroyAll (owner: string): Promise<number> {
    const ids = this.#owners.get(owner)
    if (ids === undefined) return 0
    let count = 0
    for (const id of [...ids]) {
      if (this.#live(id, Date.now()) !== undefined) count++
      this.#delete(id)
    }
    return count
  }

  async touch (id: string, ttl: number, now: number): Promise<boolean> {
    const entry = this.#live(id, now)
    if (entry === undefined) return false
    entry.expiresAt = Math.min(now + ttl, entry.absoluteExpiry)
    this.#changed(id)
    return true
  }

  /**
   * The near-cache's invalidation channel. Every change goes through this object, in this
   * process, so the listener hears it synchronously: the channel is always live.
   */
  invalidations (listener: (id: string | null) => void): InvalidationChannel {
    const each = (id: string): void => { listener(id) }
    this.#listeners.add(each)
    return {
      live: () => true,
      close: async () => { this.#listeners.delete(each) }
    }
  }

  async lock (id: string, options: LockOptions): Promise<SessionLock | undefined> {
    if (this.#live(id, Date.now()) === undefined) return undefined
    const release = await this.#mutex.acquire(id, options.wait)
    const token = ++this.#fence
    const held: Held = { token, timer: undefined, release }
    // In one process a live holder cannot stall past its lease without stalling everyone, so
    // renewal is implicit; without renewal the lease is a hard cap, enforced by this timer.
    if (options.renew === false) {
      held.timer = setTimeout(() => this.#drop(id, held), options.lease)
      held.timer.unref()
    }
    this.#held.set(id, held)
    return {
      token,
      release: async () => { this.#drop(id, held) }
    }
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    this.#entries.clear()
    this.#owners.clear()
  }

  /**
   * Every removal goes through here, so the owner index never outlives its session and the
   * near-cache's listeners hear every removal (destroy, expiry, eviction, log out everywhere).
   */
  #delete (id: string): void {
    const entry = this.#entries.get(id)
    this.#entries.delete(id)
    if (entry?.owner !== undefined) this.#own(id, entry, null)
    this.#changed(id)
  }

  #own (id: string, entry: Entry, owner: string | null): void {
    if (entry.owner !== undefined) {
      const ids = this.#owners.get(entry.owner)
      ids?.delete(id)
      if (ids?.size === 0) this.#owners.delete(entry.owner)
      delete entry.owner
    }
    if (owner === null) return
    entry.owner = owner
    let ids = this.#owners.get(owner)
    if (ids === undefined) this.#owners.set(owner, ids = new Set())
    ids.add(id)
  }

  #changed (id: string): void {
    for (const listener of this.#listeners) listener(id)
  }

  #drop (id: string, held: Held): void {
    clearTimeout(held.timer)
    if (this.#held.get(id) === held) this.#held.delete(id)
    held.release()
  }

  /** The entry if it exists and has not expired; LRU position refreshed. */
  #live (id: string, now: number): Entry | undefined {
    const entry = this.#entries.get(id)
    if (entry === undefined) return undefined
    if (now >= entry.expiresAt || now >= entry.absoluteExpiry) {
      this.#delete(id)
      return undefined
    }
    this.#entries.delete(id)
    this.#entries.set(id, entry)
    return entry
  }

  #evict (): void {
    // Map iteration order is insertion order, and every access re-inserts: the first key is the
    // least recently used.
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next()
      if (oldest.done === true) return
      this.#delete(oldest.value)
    }
  }

  #sweep (now: number): void {
    for (const [id, entry] of this.#entries) {
      if (now >= entry.expiresAt || now >= entry.absoluteExpiry) this.#delete(id)
    }
  }
}

/** Remember a write's result under its id, forgetting the oldest past {@link RECENT_WRITES}. */
function remember (entry: Entry, writeId: string, result: ApplyResult & { ok: true }): void {
  const writes = entry.writes ??= new Map()
  writes.set(writeId, result)
  if (writes.size > RECENT_WRITES) writes.delete(writes.keys().next().value!)
}
