/**
 * The framework-agnostic session core. Adapters call `open()` when a request arrives and
 * `finish()` before its response headers go out; everything between (loading, locking, the
 * session methods, cookies) lives here, so Fastify and Express behave identically. The write
 * path (what a request changed, one apply, its outcome) is write.ts.
 */
import { CookieJar } from '../cookie.js'
import { storeUnavailable, tetherError, TetherError } from '../errors.js'
import { resolveOptions } from '../options.js'
import type { ResolvedOptions, SessionLogger, SessionOptions } from '../options.js'
import { SessionState } from '../session/state.js'
import type { SessionOps } from '../session/state.js'
import { NearCache } from '../near-cache.js'
import type { SessionLock, SessionStore, StoreCapabilities, StoredSession } from '../store.js'
import { MemoryStore } from '../stores/memory/index.js'
import { VersionCookie } from './version-cookie.js'
import { idleTtl, writeChange } from './write.js'
import type { WriteContext } from './write.js'

/** What an adapter knows about the incoming request. */
export interface OpenRequest {
  /** The raw Cookie header. */
  readonly cookie: string | undefined
  /** The request arrived over HTTPS (as the framework's proxy-trust settings see it). */
  readonly secure: boolean
  /** Take the session lock for this request (lock mode). */
  readonly lock: boolean
  readonly log: SessionLogger
}

/**
 * Operations on all sessions rather than the request's own, exposed the same way by both
 * adapters: `app.sessions` on Fastify, `middleware.sessions` on Express.
 *
 * @example
 * ```ts
 * await app.sessions.destroyAllFor(user.id) // Fastify, after a password change
 * await session.sessions.destroyAllFor(user.id) // Express: session = expressSession({ …, owner: 'userId' })
 * ```
 */
export interface SessionAdmin {
  /**
   * Log a user out everywhere: every session whose `owner` key (session option) holds `owner`
   * ends, on every node. Resolves with how many ended. Needs a store with the `destroyAll`
   * capability (`TETHER_ERR_STORE_CAPABILITY` otherwise).
   */
  destroyAllFor (owner: string): Promise<number>
}

/**
 * Owns the options, the cookie jar and the store; creates and saves per-request sessions.
 *
 * @example
 * ```ts
 * const manager = new SessionManager({ secret, store })
 * const state = await manager.open({ cookie: req.headers.cookie, secure: false, lock: false, log })
 * state.proxy.visits = 1
 * const setCookie = await manager.finish(state)   // write, then send headers
 * ```
 */
export class SessionManager implements SessionOps, WriteContext {
  readonly options: ResolvedOptions
  readonly store: SessionStore
  readonly jar: CookieJar
  /** True when this manager created the store (and so closes it). */
  readonly ownsStore: boolean
  /** The near-cache, when enabled. */
  readonly nearCache: NearCache | undefined
  /** The near-cache's version cookie (read-your-writes per client), with the near-cache. */
  readonly versions: VersionCookie | undefined
  /** The store's name, for error messages. */
  readonly backend: string

  constructor (options: SessionOptions) {
    this.options = resolveOptions(options)
    this.ownsStore = options.store === undefined
    this.store = options.store ?? new MemoryStore()
    this.backend = this.store.constructor.name
    if (this.options.mode === 'lock' && typeof this.store.lock !== 'function') {
      throw tetherError('TETHER_ERR_LOCK_UNSUPPORTED', `session option 'mode' is 'lock' but ${this.store.constructor.name} has no lock()`)
    }
    if (this.options.owner !== undefined) this.#need('destroyAll', "session option 'owner'")
    this.jar = new CookieJar(this.options.secrets, this.options.cookie)
    // `stickyCache` is the option's former name; it still turns the near-cache on.
    const near = options.nearCache ?? options.stickyCache
    this.nearCache = near === undefined || near === false ? undefined : new NearCache(this.store, near)
    this.versions = this.nearCache === undefined ? undefined : new VersionCookie(this.options.cookie)
  }

  /**
   * Read the request's cookie and load its session: one store round trip, none without a
   * cookie, none when the near-cache holds a copy it may serve to this client (whatever the
   * routing: see near-cache.ts for what keeps a copy current).
   */
  async open (request: OpenRequest): Promise<SessionState> {
    const read = this.jar.read(request.cookie)
    const state = new SessionState(this, request.secure, request.log, read.present)
    if (read.id === undefined) return state
    const cache = this.nearCache
    if (cache !== undefined) state.seenVersion = this.versions!.read(request.cookie, read.id)
    if (request.lock) {
      state.lockHandle = await this.#lock(read.id)
      if (state.lockHandle === undefined) return state
    } else if (cache !== undefined) {
      const copy = cache.get(read.id, state.seenVersion, Date.now(), this.options.refreshBelow)
      if (copy !== undefined) {
        state.cacheResult = 'hit'
        state.adopt(read.id, copy)
        state.sendCookie = read.resign
        return state
      }
    }
    const stored = await this.#load(read.id)
    if (cache !== undefined) state.cacheResult = 'miss'
    if (stored === undefined) {
      await this.release(state)
      return state
    }
    state.adopt(read.id, stored)
    // Re-sign a cookie made with an older secret; roll a persistent cookie whose TTL moved.
    state.sendCookie = read.resign || (stored.refreshed && this.options.cookie.maxAge !== undefined)
    return state
  }

  /**
   * True when finishing `state` would neither write nor send a header, as things stand: the
   * adapters skip their save hooks for it (until `state.whenDirty` says otherwise).
   */
  idle (state: SessionState): boolean {
    return !state.dirty && !state.sendCookie && !state.lifetimeRefreshDue && state.lockHandle === undefined && !this.#newerSeen(state) &&
      !(state.isNew && (state.cookieOnClient || this.options.saveUninitialized))
  }

  /**
   * Save the request's changes and decide its Set-Cookie header. Call once, before the
   * response headers are sent; the write has completed when this resolves.
   *
   * @returns the Set-Cookie value(s) to send, or undefined for none
   */
  async finish (state: SessionState): Promise<string | string[] | undefined> {
    if (state.finished) return undefined
    state.finished = true
    try {
      const version = state.version
      await writeChange(this, state, false)
      if (state.lifetimeRefreshDue) await this.#rollLifetime(state, version)
    } finally {
      await this.release(state)
    }
    if (!state.isNew && state.id !== undefined) {
      const remaining = state.absoluteExpiry - Date.now()
      const lifetime = state.cookieLifetime()
      const maxAge = lifetime === undefined ? undefined : Math.min(lifetime, remaining)
      const session = state.sendCookie ? this.jar.serialize(this.jar.sign(state.id), state.secure, maxAge) : undefined
      if (!this.#newerSeen(state)) return session
      // The client has now seen this version (its write, or a newer store state): from here on
      // no node serves it an older copy.
      const version = this.versions!.serialize(state.id, state.version, state.secure, maxAge)
      return session === undefined ? version : [session, version]
    }
    return state.cookieOnClient ? this.jar.clear(state.secure) : undefined
  }

  /** Release the request's lock, if any (idempotent; adapters also call it on abort). */
  async release (state: SessionState): Promise<void> {
    const handle = state.lockHandle
    if (handle === undefined) return
    state.lockHandle = undefined
    try {
      await handle.release()
    } catch (err) {
      // The lease runs out by itself; a failed release only delays the next holder.
      state.log.warn({ err, code: (err as TetherError).code }, 'tether: releasing the session lock failed; it expires with its lease')
    }
  }

  async save (state: SessionState): Promise<void> {
    await writeChange(this, state, true)
  }

  async reload (state: SessionState): Promise<void> {
    if (state.isNew || state.id === undefined) return
    const stored = await this.#load(state.id)
    if (stored === undefined) state.reset()
    else state.adopt(state.id, stored)
  }

  async destroy (state: SessionState): Promise<void> {
    if (!state.isNew && state.id !== undefined) {
      this.nearCache?.delete(state.id)
      try { await this.store.destroy(state.id) } catch (err) { throw storeUnavailable(this.backend, err) }
    }
    await this.release(state)
    state.reset()
    state.sendCookie = false
  }

  async regenerate (state: SessionState, keepData: boolean): Promise<void> {
    if (!state.isNew && state.id !== undefined) {
      this.nearCache?.delete(state.id)
      // The old id dies first: a request still in flight under it can no longer write (its
      // apply finds the session gone), which is what makes regenerate safe against fixation.
      try { await this.store.destroy(state.id) } catch (err) { throw storeUnavailable(this.backend, err) }
    }
    await this.release(state)
    state.restart(keepData)
  }

  async touch (state: SessionState): Promise<void> {
    if (state.isNew || state.id === undefined) return
    const now = Date.now()
    const ttl = idleTtl(state, this.options, now)
    let alive: boolean
    try {
      alive = await this.store.touch(state.id, ttl, now)
    } catch (err) { throw storeUnavailable(this.backend, err) }
    if (!alive) {
      this.nearCache?.delete(state.id)
      state.reset()
      return
    }
    if (state.cookieLifetime() !== undefined) state.sendCookie = true
  }

  /**
   * Roll a session's own lifetime (store TTL and cookie) when it came due at load: a write in
   * this request (`state.version` moved past `before`) already set the TTL; otherwise touch.
   */
  async #rollLifetime (state: SessionState, before: number): Promise<void> {
    state.lifetimeRefreshDue = false
    if (state.isNew || state.id === undefined) return
    if (state.version === before) await this.touch(state)
    else state.sendCookie = true
  }

  async lock (state: SessionState): Promise<void> {
    if (state.lockHandle !== undefined || state.isNew || state.id === undefined) return
    if (typeof this.store.lock !== 'function') {
      throw tetherError('TETHER_ERR_LOCK_UNSUPPORTED', `session.lock(): ${this.backend} has no lock()`)
    }
    state.lockHandle = await this.#lock(state.id)
    await this.reload(state)
    if (state.isNew) await this.release(state)
  }

  /**
   * Log a user out everywhere: destroy every session whose `owner` key holds `owner`, on every
   * node (the store's owner index finds them). A request in flight on one of them cannot write
   * it back. Resolves with how many sessions ended.
   *
   * @example
   * ```ts
   * const manager = new SessionManager({ secret, store, owner: 'userId' })
   * await manager.destroyAllFor('u42') // after a password change
   * ```
   */
  async destroyAllFor (owner: string): Promise<number> {
    this.#need('destroyAll', 'destroyAllFor()')
    if (typeof owner !== 'string' || owner === '') throw tetherError('TETHER_ERR_INVALID_OPTION', `destroyAllFor() needs a non-empty owner; got ${JSON.stringify(owner)}`)
    let count: number
    try {
      count = await this.store.destroyAll!(owner)
    } catch (err) { throw storeUnavailable(this.backend, err) }
    // A sticky near-cache copy elsewhere lives on until its maxAge, as after destroy() on
    // another node; any write through it is refused (the session is gone in the store).
    return count
  }

  /** Close the store if this manager created it. */
  async close (): Promise<void> {
    await this.nearCache?.close()
    if (this.ownsStore) await this.store.close?.()
  }

  /** The client has not yet been told the version this request ends at. */
  #newerSeen (state: SessionState): boolean {
    return this.versions !== undefined && !state.isNew && state.id !== undefined && state.version > state.seenVersion
  }

  /** Load from the store, keeping a copy in the near-cache unless it was invalidated meanwhile. */
  async #load (id: string): Promise<StoredSession | undefined> {
    const now = Date.now()
    const cache = this.nearCache
    const ticket = cache?.begin(id)
    let stored: StoredSession | undefined
    try {
      stored = await this.store.load(id, { now, idleTimeout: this.options.idleTimeout, refreshBelow: this.options.refreshBelow })
      // Stores enforce both deadlines with their TTLs; checking again here keeps a store with a
      // coarse expiry clock from serving a session past its time.
      if (stored !== undefined && (now >= stored.absoluteExpiry || now >= stored.expiresAt)) stored = undefined
      if (cache !== undefined) {
        if (stored === undefined) cache.delete(id)
        // A load that refreshed the TTL just changed the session: its own invalidation is
        // on the way, so the copy would not outlive it.
        else if (!stored.refreshed) cache.install(ticket!, stored, Date.now())
      }
    } catch (err) {
      throw storeUnavailable(this.backend, err)
    } finally {
      if (ticket !== undefined) cache!.end(ticket)
    }
    return stored
  }

  /** Refuse, with a typed code, a feature the store does not declare. */
  #need (capability: keyof StoreCapabilities, what: string): void {
    if (this.store.capabilities?.[capability] === true && typeof this.store.destroyAll === 'function') return
    throw tetherError('TETHER_ERR_STORE_CAPABILITY', `${what} needs a store with the '${capability}' capability; ${this.backend} does not declare it`)
  }

  async #lock (id: string): Promise<SessionLock | undefined> {
    try {
      return await this.store.lock!(id, { lease: this.options.lockLease, wait: this.options.lockWait })
    } catch (err) {
      throw storeUnavailable(this.backend, err)
    }
  }
}
