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
import { StickyCache } from '../sticky-cache.js'
import type { SessionLock, SessionStore, StoredSession } from '../store.js'
import { MemoryStore } from '../stores/memory/index.js'
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
  /** The peer's address (the socket's, not a forwarded one): who sent the balancer headers. */
  readonly peer?: string | undefined
  /** The balancer's `x-tether-route` header. */
  readonly routeHeader?: string | undefined
  /** The balancer's `x-tether-moved` header. */
  readonly movedHeader?: string | undefined
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
  /** The sticky near-cache, when enabled. */
  readonly stickyCache: StickyCache | undefined
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
    this.jar = new CookieJar(this.options.secrets, this.options.cookie)
    this.stickyCache = options.stickyCache === undefined ? undefined : new StickyCache(options.stickyCache)
  }

  /**
   * Read the request's cookie and load its session: one store round trip, none without a
   * cookie, none for a sticky request whose session this process holds a copy of.
   */
  async open (request: OpenRequest): Promise<SessionState> {
    const read = this.jar.read(request.cookie)
    const state = new SessionState(this, request.secure, request.log, read.present)
    const cache = this.stickyCache
    if (cache !== undefined) state.route = cache.route(request.peer, request.routeHeader, request.movedHeader)
    if (read.id === undefined) return state
    const sticky = state.route === 'sticky'
    // Moved, newly routed or not from the balancer: whatever this process remembers of the
    // session may be stale, so forget it before anything reads it.
    if (cache !== undefined && !sticky) cache.delete(read.id)
    if (request.lock) {
      state.lockHandle = await this.#lock(read.id)
      if (state.lockHandle === undefined) return state
    } else if (sticky) {
      const copy = cache!.get(read.id, Date.now(), this.options.refreshBelow)
      if (copy !== undefined) {
        state.adopt(read.id, copy)
        state.sendCookie = read.resign
        return state
      }
    }
    const stored = await this.#load(read.id, sticky)
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
    return !state.dirty && !state.sendCookie && !state.lifetimeRefreshDue && state.lockHandle === undefined &&
      !(state.isNew && (state.cookieOnClient || this.options.saveUninitialized))
  }

  /**
   * Save the request's changes and decide its Set-Cookie header. Call once, before the
   * response headers are sent; the write has completed when this resolves.
   *
   * @returns the Set-Cookie value to send, or undefined for none
   */
  async finish (state: SessionState): Promise<string | undefined> {
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
      if (!state.sendCookie) return undefined
      const remaining = state.absoluteExpiry - Date.now()
      const lifetime = state.cookieLifetime()
      const maxAge = lifetime === undefined ? undefined : Math.min(lifetime, remaining)
      return this.jar.serialize(this.jar.sign(state.id), state.secure, maxAge)
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
    const stored = await this.#load(state.id, state.route === 'sticky')
    if (stored === undefined) state.reset()
    else state.adopt(state.id, stored)
  }

  async destroy (state: SessionState): Promise<void> {
    if (!state.isNew && state.id !== undefined) {
      this.stickyCache?.delete(state.id)
      try { await this.store.destroy(state.id) } catch (err) { throw storeUnavailable(this.backend, err) }
    }
    await this.release(state)
    state.reset()
    state.sendCookie = false
  }

  async regenerate (state: SessionState, keepData: boolean): Promise<void> {
    if (!state.isNew && state.id !== undefined) {
      this.stickyCache?.delete(state.id)
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
      this.stickyCache?.delete(state.id)
      state.reset()
      return
    }
    this.stickyCache?.touched(state.id, now + ttl)
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

  /** Close the store if this manager created it. */
  async close (): Promise<void> {
    if (this.ownsStore) await this.store.close?.()
  }

  /** Load from the store; with `remember`, keep a copy in the sticky cache. */
  async #load (id: string, remember: boolean): Promise<StoredSession | undefined> {
    const now = Date.now()
    let stored: StoredSession | undefined
    try {
      stored = await this.store.load(id, { now, idleTimeout: this.options.idleTimeout, refreshBelow: this.options.refreshBelow })
    } catch (err) { throw storeUnavailable(this.backend, err) }
    // Stores enforce both deadlines with their TTLs; checking again here keeps a store with a
    // coarse expiry clock from serving a session past its time.
    if (stored !== undefined && (now >= stored.absoluteExpiry || now >= stored.expiresAt)) stored = undefined
    if (stored === undefined) this.stickyCache?.delete(id)
    else if (remember) this.stickyCache?.put(id, stored, now)
    return stored
  }

  async #lock (id: string): Promise<SessionLock | undefined> {
    try {
      return await this.store.lock!(id, { lease: this.options.lockLease, wait: this.options.lockWait })
    } catch (err) {
      throw storeUnavailable(this.backend, err)
    }
  }
}
