/**
 * The store contract. Every backend (memory, Redis, SQLite, SQL, memcached, connect-* stores)
 * implements this one interface and passes one conformance suite.
 *
 * Stores are deliberately dumb about values: the core hands them JSON texts per top-level key
 * and gets the same texts back. A store never parses session values, so it cannot be the place
 * where prototype pollution or a lossy re-encoding happens.
 */

/**
 * One session as a store returns it.
 *
 * @example
 * ```ts
 * const s = await store.load(id, { now: Date.now(), idleTimeout: 86_400_000, refreshBelow: 77_760_000 })
 * if (s) console.log(s.fields.get('cart')) // '{"items":[]}'
 * ```
 */
export interface StoredSession {
  /** Top-level session key → its value as JSON text. */
  readonly fields: Map<string, string>
  /** When the session was created (epoch ms). */
  readonly createdAt: number
  /** The absolute deadline (epoch ms): the session dies then whatever its activity. */
  readonly absoluteExpiry: number
  /** When the idle TTL runs out (epoch ms), after any refresh this load made. */
  readonly expiresAt: number
  /** Bumped by every successful apply(); lets callers detect writes they did not make. */
  readonly version: number
  /** True when this load extended the idle TTL (the lazy refresh ran). */
  readonly refreshed: boolean
}

/**
 * A stored session as in-process holders keep it (MemoryStore, the sticky near-cache): the
 * same fields as {@link StoredSession}, mutable, without the per-load `refreshed` flag.
 *
 * @example
 * ```ts
 * const entry: SessionRecord = { fields: new Map(), createdAt: now, absoluteExpiry: now + day, expiresAt: now + hour, version: 0 }
 * ```
 */
export type SessionRecord = { -readonly [K in Exclude<keyof StoredSession, 'refreshed'>]: StoredSession[K] }

/**
 * How a load refreshes the idle TTL.
 *
 * @example
 * ```ts
 * // Refresh only once less than 90% of a 24 h window remains: most reads write nothing.
 * const opts: LoadOptions = { now: Date.now(), idleTimeout: 86_400_000, refreshBelow: 77_760_000 }
 * ```
 */
export interface LoadOptions {
  /** The caller's clock (epoch ms); stores use it rather than their own, so tests can steer time. */
  readonly now: number
  /** The idle timeout (ms). A refresh sets the TTL to `min(idleTimeout, absoluteExpiry - now)`. */
  readonly idleTimeout: number
  /** Refresh only when less than this many ms of idle TTL remain. 0 never refreshes on load. */
  readonly refreshBelow: number
}

/**
 * Everything one request changed, applied atomically in one backend round trip.
 *
 * - Without `create`, the session must already exist: a change to a destroyed, expired or
 *   regenerated-away session is refused with `gone` (no resurrection).
 * - With `create`, the session must not exist yet; the store refuses with `exists` otherwise.
 * - `incr` adds to integer fields atomically (missing fields count as 0), so concurrent
 *   increments commute.
 * - With `fence`, the write is refused with `fenced` unless the session's lock is still held
 *   under that token.
 * - With `writeId`, a store that declares {@link SessionStore.exactlyOnce} applies the change at
 *   most once: a second apply with the same id (a retry after a timeout, or the first attempt
 *   arriving late) changes nothing and resolves with the first one's result.
 *
 * @example
 * ```ts
 * await store.apply(id, { set: [['cart', '{"items":[1]}']], del: ['flash'], incr: [['visits', 1]], ttl: 86_400_000, now: Date.now() })
 * ```
 */
export interface SessionChange {
  readonly create?: { readonly createdAt: number, readonly absoluteExpiry: number }
  readonly set: ReadonlyArray<readonly [key: string, json: string]>
  readonly del: readonly string[]
  readonly incr: ReadonlyArray<readonly [key: string, by: number]>
  /** The new idle TTL in ms, already capped by the absolute deadline. */
  readonly ttl: number
  /** The caller's clock (epoch ms). */
  readonly now: number
  readonly fence?: number
  /**
   * This change's identity (unique per change; a retry of the same change reuses it). Stores
   * with {@link SessionStore.exactlyOnce} remember recent ids per session, so a repeat of an
   * applied change is answered, not applied again.
   */
  readonly writeId?: string
  /**
   * When to stop waiting for this apply's answer (epoch ms). The core sets it to one budget
   * ({@link SessionStore.writeTimeout}) from a write's first try and keeps it for the retry,
   * so the retry only gets what the first try left and an unanswered write fails within one
   * budget. A store with a per-command timeout waits for the sooner of the two.
   */
  readonly deadline?: number
  /**
   * The session's owner, when this change sets the key named by the `owner` option (its value
   * as a string), or `null` when it deletes it. Absent: the owner stays as it is. Stores with
   * the `destroyAll` capability keep their owner index with it, in the same atomic write.
   */
  readonly owner?: string | null
}

/**
 * The outcome of {@link SessionStore.apply}.
 *
 * @example
 * ```ts
 * const r = await store.apply(id, change)
 * if (r.ok) console.log(r.version, r.counters.get('visits'))
 * else if (r.reason === 'gone') clearCookie()
 * ```
 */
export type ApplyResult =
  | { readonly ok: true, readonly version: number, readonly counters: ReadonlyMap<string, number> }
  | { readonly ok: false, readonly reason: 'gone' | 'exists' | 'fenced' }

/**
 * Options for {@link SessionStore.lock}.
 *
 * @example
 * ```ts
 * const lock = await store.lock!(id, { lease: 10_000, wait: 5_000 })
 * ```
 */
export interface LockOptions {
  /** Lease TTL (ms): a holder that crashes blocks others for at most this long. */
  readonly lease: number
  /** Longest time to wait for the lock (ms) before failing with `TETHER_ERR_LOCK_TIMEOUT`. */
  readonly wait: number
  /**
   * Keep extending the lease while the lock is held (default true), so a slow but live holder
   * keeps it. With false the lease is a hard cap on how long the lock is held.
   */
  readonly renew?: boolean
}

/**
 * A held per-session lock. The store renews the lease while it is held, so a long request keeps
 * it; a crashed process stops renewing and the lease runs out.
 *
 * @example
 * ```ts
 * const lock = await store.lock!(id, { lease: 10_000, wait: 5_000 })
 * if (lock) {
 *   try { await store.apply(id, { ...change, fence: lock.token }) } finally { await lock.release() }
 * }
 * ```
 */
export interface SessionLock {
  /** Fencing token: strictly increasing per session. Pass it as `SessionChange.fence`. */
  readonly token: number
  /** Release the lock (idempotent). Resolves once the store has dropped it. */
  release (): Promise<void>
}

/**
 * A store's channel of invalidations, which the near-cache needs (see near-cache.ts): the
 * store calls the listener with a session id whenever anything changes that session (a write,
 * a destroy, a TTL change, an expiry; made by any process), or with `null` when it cannot say
 * what changed (a flush, or the channel was lost or came back): then every copy is dropped.
 *
 * @example
 * ```ts
 * const channel = store.invalidations!((id) => { if (id === null) copies.clear(); else copies.delete(id) }, { maxLag: 1000 })
 * if (channel.live(Date.now())) serveFromCopy()
 * ```
 */
export interface InvalidationChannel {
  /**
   * True while every change acknowledged to any client more than `maxLag` ms ago is known to
   * have reached the listener. Copies may be served and installed only then.
   */
  live (now: number): boolean
  /** Stop listening and release the channel's connection. */
  close (): Promise<void>
}

/**
 * Options of {@link SessionStore.invalidations}.
 *
 * @example
 * ```ts
 * const options: InvalidationOptions = { maxLag: 1000 }
 * ```
 */
export interface InvalidationOptions {
  /** How stale the channel may be before `live()` says false (ms). */
  readonly maxLag: number
}

/**
 * What a store can do beyond the required methods. A session option that needs a capability
 * the store lacks is refused at start-up with `TETHER_ERR_STORE_CAPABILITY`.
 *
 * @example
 * ```ts
 * class MyStore implements SessionStore {
 *   readonly capabilities: StoreCapabilities = { destroyAll: true }
 * }
 * ```
 */
export interface StoreCapabilities {
  /**
   * Log out everywhere: the store indexes sessions by owner as they are written
   * ({@link SessionChange.owner}) and implements {@link SessionStore.destroyAll}.
   */
  readonly destroyAll?: boolean
}

/**
 * The store contract.
 *
 * @example
 * ```ts
 * import { fastifySession, RedisStore } from '@tether/middleware'
 * app.register(fastifySession, { secret, store: new RedisStore({ url: 'redis://127.0.0.1:6379' }) })
 * ```
 */
export interface SessionStore {
  /**
   * True when `apply()` applies a given `SessionChange.writeId` at most once per session (it
   * remembers the ids of its recent writes with their results, in the same atomic step as the
   * write). Only then does the core retry a write whose outcome is unknown. A store that cannot
   * promise it (ConnectStore: no atomic read-modify-write) leaves it unset.
   */
  readonly exactlyOnce?: boolean
  /**
   * The longest one write may wait for the store's answer (ms), when the store bounds it (a
   * per-command timeout). The core gives a write's first try and its retry this one budget
   * together, through {@link SessionChange.deadline}.
   */
  readonly writeTimeout?: number
  /** Load a session, refreshing its idle TTL lazily in the same round trip. `undefined` if unknown or expired. */
  load (id: string, options: LoadOptions): Promise<StoredSession | undefined>
  /**
   * Apply one request's change atomically, in one round trip. A failure whose outcome is unknown
   * (the change was sent, the answer never came) rejects with `TETHER_ERR_STORE_OUTCOME_UNKNOWN`;
   * `TETHER_ERR_STORE_UNAVAILABLE` means the change was certainly not applied.
   */
  apply (id: string, change: SessionChange): Promise<ApplyResult>
  /** Delete a session. Deleting an unknown id is not an error. */
  destroy (id: string): Promise<void>
  /** Set the idle TTL to `ttl` ms from now. Resolves false when the session does not exist. */
  touch (id: string, ttl: number, now: number): Promise<boolean>
  /**
   * Take the per-session lock (lock mode), waiting without polling. Resolves `undefined` when the
   * session does not exist (there is nothing to lock); rejects with `TETHER_ERR_LOCK_TIMEOUT`
   * past `options.wait`. Stores without it cannot serve lock mode.
   */
  lock? (id: string, options: LockOptions): Promise<SessionLock | undefined>
  /**
   * Open an invalidation channel for the near-cache. Stores without one cannot serve the
   * near-cache: enabling it is `TETHER_ERR_NEAR_CACHE_UNSUPPORTED` at start-up.
   */
  invalidations? (listener: (id: string | null) => void, options: InvalidationOptions): InvalidationChannel
  /** What the store supports beyond the required methods; absent means nothing. */
  readonly capabilities?: StoreCapabilities
  /**
   * Destroy every session whose owner is `owner` (see {@link SessionChange.owner}); resolves
   * with how many there were. Like `destroy`, a request in flight on one of them cannot write
   * it back. Present when `capabilities.destroyAll` is true.
   */
  destroyAll? (owner: string): Promise<number>
  /** Release connections and timers the store owns. */
  close? (): Promise<void>
}
