/**
 * The framework-agnostic session core. Adapters call `open()` when a request arrives and
 * `finish()` before its response headers go out; everything between (loading, change
 * tracking, saving, locking, cookies) lives here, so Fastify and Express behave identically.
 */
import { encodeValue } from './codec.js'
import { CookieJar } from './cookie.js'
import { storeUnavailable, tetherError, TetherError } from './errors.js'
import { newId } from './id.js'
import { resolveOptions } from './options.js'
import type { ResolvedOptions, SessionLogger, SessionOptions } from './options.js'
import { SessionState } from './session.js'
import type { SessionOps } from './session.js'
import { StickyCache } from './sticky-cache.js'
import type { SessionChange, SessionStore, StoredSession } from './store.js'
import { MemoryStore } from './stores/memory/store.js'

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
export class SessionManager implements SessionOps {
  readonly options: ResolvedOptions
  readonly store: SessionStore
  readonly jar: CookieJar
  /** True when this manager created the store (and so closes it). */
  readonly ownsStore: boolean
  /** The sticky near-cache, when enabled. */
  readonly stickyCache: StickyCache | undefined

  constructor (options: SessionOptions) {
    this.options = resolveOptions(options)
    this.ownsStore = options.store === undefined
    this.store = options.store ?? new MemoryStore()
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
    return !state.dirty && !state.sendCookie && state.lockHandle === undefined &&
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
      await this.#flush(state, false)
    } finally {
      await this.release(state)
    }
    if (!state.isNew && state.id !== undefined) {
      if (!state.sendCookie) return undefined
      const remaining = state.absoluteExpiry - Date.now()
      const maxAge = this.options.cookie.maxAge === undefined ? undefined : Math.min(this.options.cookie.maxAge, remaining)
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

  id (state: SessionState): string {
    if (state.id === undefined) state.id = newId()
    return state.id
  }

  async save (state: SessionState): Promise<void> {
    await this.#flush(state, true)
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
      try { await this.store.destroy(state.id) } catch (err) { throw storeUnavailable(this.#backend, err) }
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
      try { await this.store.destroy(state.id) } catch (err) { throw storeUnavailable(this.#backend, err) }
    }
    await this.release(state)
    if (keepData) {
      state.decodeAll()
      const data = state.data
      state.reset()
      state.data = data
      for (const key of Object.keys(data)) state.pending.set(key, { kind: 'set' })
    } else {
      state.reset()
    }
    state.id = newId()
  }

  async touch (state: SessionState): Promise<void> {
    if (state.isNew || state.id === undefined) return
    const now = Date.now()
    const ttl = this.#ttl(state, now)
    let alive: boolean
    try {
      alive = await this.store.touch(state.id, ttl, now)
    } catch (err) { throw storeUnavailable(this.#backend, err) }
    if (!alive) {
      this.stickyCache?.delete(state.id)
      state.reset()
      return
    }
    this.stickyCache?.touched(state.id, now + ttl)
    if (this.options.cookie.maxAge !== undefined) state.sendCookie = true
  }

  async lock (state: SessionState): Promise<void> {
    if (state.lockHandle !== undefined || state.isNew || state.id === undefined) return
    if (typeof this.store.lock !== 'function') {
      throw tetherError('TETHER_ERR_LOCK_UNSUPPORTED', `session.lock(): ${this.#backend} has no lock()`)
    }
    state.lockHandle = await this.#lock(state.id)
    await this.reload(state)
    if (state.isNew) await this.release(state)
  }

  /** Close the store if this manager created it. */
  async close (): Promise<void> {
    if (this.ownsStore) await this.store.close?.()
  }

  get #backend (): string {
    return this.store.constructor.name
  }

  #ttl (state: SessionState, now: number): number {
    return Math.min(this.options.idleTimeout, state.absoluteExpiry - now)
  }

  /** Load from the store; with `remember`, keep a copy in the sticky cache. */
  async #load (id: string, remember: boolean): Promise<StoredSession | undefined> {
    const now = Date.now()
    let stored: StoredSession | undefined
    try {
      stored = await this.store.load(id, { now, idleTimeout: this.options.idleTimeout, refreshBelow: this.options.refreshBelow })
    } catch (err) { throw storeUnavailable(this.#backend, err) }
    // Stores enforce both deadlines with their TTLs; checking again here keeps a store with a
    // coarse expiry clock from serving a session past its time.
    if (stored !== undefined && (now >= stored.absoluteExpiry || now >= stored.expiresAt)) stored = undefined
    if (stored === undefined) this.stickyCache?.delete(id)
    else if (remember) this.stickyCache?.put(id, stored, now)
    return stored
  }

  async #lock (id: string) {
    try {
      return await this.store.lock!(id, { lease: this.options.lockLease, wait: this.options.lockWait })
    } catch (err) {
      if (err instanceof TetherError) throw err
      throw storeUnavailable(this.#backend, err)
    }
  }

  /** Collect what the request changed: pending writes, plus in-place mutations of handed-out objects. */
  #change (state: SessionState): { set: Array<[string, string]>, del: string[], incr: Array<[string, number]> } {
    const set: Array<[string, string]> = []
    const del: string[] = []
    const incr: Array<[string, number]> = []
    for (const [key, op] of state.pending) {
      if (op.kind === 'del') {
        if (!state.isNew && state.stored.has(key)) del.push(key)
      } else if (op.kind === 'incr') {
        incr.push([key, op.by])
      } else {
        const json = encodeValue(key, state.data[key])
        if (json === undefined) { if (!state.isNew && state.stored.has(key)) del.push(key) } else if (json !== state.stored.get(key) || state.isNew) set.push([key, json])
      }
    }
    for (const key of state.handedOut) {
      if (state.pending.has(key) || !(key in state.data)) continue
      const json = encodeValue(key, state.data[key])
      if (json !== undefined && json !== state.stored.get(key)) set.push([key, json])
    }
    return { set, del, incr }
  }

  async #flush (state: SessionState, explicit: boolean): Promise<void> {
    const { set, del, incr } = this.#change(state)
    if (set.length === 0 && del.length === 0 && incr.length === 0) {
      if (!state.isNew || !this.options.saveUninitialized) return
    }
    const now = Date.now()
    for (let attempt = 0; ; attempt++) {
      const creating = state.isNew
      if (creating) {
        state.createdAt = now
        state.absoluteExpiry = now + this.options.absoluteTimeout
      }
      const ttl = this.#ttl(state, now)
      if (ttl <= 0) return this.#gone(state, explicit)
      const change: SessionChange = {
        ...(creating ? { create: { createdAt: state.createdAt, absoluteExpiry: state.absoluteExpiry } } : {}),
        set,
        del,
        incr,
        ttl,
        now,
        ...(state.lockHandle !== undefined ? { fence: state.lockHandle.token } : {})
      }
      const id = this.id(state)
      let result
      try {
        result = await this.store.apply(id, change)
      } catch (err) {
        if (err instanceof TetherError) throw err
        throw storeUnavailable(this.#backend, err)
      }
      if (result.ok) {
        this.#remember(state, id, creating, change, result.version, result.counters)
        for (const [key, json] of set) state.stored.set(key, json)
        for (const key of del) state.stored.delete(key)
        for (const [key, value] of result.counters) {
          state.stored.set(key, String(value))
          state.data[key] = value
        }
        state.pending.clear()
        state.version = result.version
        if (creating) {
          state.isNew = false
          state.sendCookie = true
        }
        return
      }
      if (result.reason === 'fenced') {
        throw tetherError('TETHER_ERR_LOCK_LOST', `session lock lease expired before the write of session ${id.slice(0, 6)}…; the write was refused. Raise lock.lease or shorten the request`)
      }
      if (result.reason === 'exists' && attempt === 0) {
        // 192 random bits make this practically impossible; a fresh id settles it if it happens.
        state.id = newId()
        continue
      }
      return this.#gone(state, explicit)
    }
  }

  /** Keep the sticky cache in step with a write the store accepted. */
  #remember (state: SessionState, id: string, creating: boolean, change: SessionChange, version: number, counters: ReadonlyMap<string, number>): void {
    const cache = this.stickyCache
    if (cache === undefined) return
    const expiresAt = Math.min(change.now + change.ttl, state.absoluteExpiry)
    if (!creating) {
      cache.applied(id, version, { set: change.set, del: change.del, counters }, expiresAt)
      return
    }
    // A session created here is known to nobody else yet; cache it if the balancer will route
    // it back here (any trusted route: its sticky cookie is being set on this very response).
    if (state.route === undefined || state.route === 'untrusted') return
    const fields = new Map<string, string>(change.set)
    for (const [key, value] of counters) fields.set(key, String(value))
    cache.put(id, { fields, createdAt: state.createdAt, absoluteExpiry: state.absoluteExpiry, expiresAt, version, refreshed: false }, change.now)
  }

  /** The session was destroyed, expired or regenerated away while this request ran. */
  #gone (state: SessionState, explicit: boolean): void {
    const id = state.id ?? ''
    if (id !== '') this.stickyCache?.delete(id)
    state.reset()
    state.sendCookie = false
    state.log.info({ session: id.slice(0, 6) }, 'tether: session ended while the request ran; its changes were not saved')
    if (explicit) throw tetherError('TETHER_ERR_SESSION_GONE', 'session.save(): the session was destroyed, expired or regenerated by another request; nothing was written')
  }
}
