/**
 * One request's session state: its data, what the request changed, and what the store last
 * held. The core owns it; user code reaches it only through the `req.session` proxy.
 *
 * Change tracking is per top-level key. Assignments and deletes are recorded by the proxy
 * traps; nested mutations (`req.session.cart.items.push(x)`) are found at save time by
 * re-encoding only the keys whose object values were handed out and comparing them with the
 * JSON text loaded from the store. No deep proxies, no copies of unread values.
 */
import { decodeValue } from '../codec.js'
import { tetherError } from '../errors.js'
import { newId } from '../id.js'
import type { SessionLogger } from '../options.js'
import type { SessionLock, StoredSession } from '../store.js'
import { writeFields } from '../stores/kit/index.js'
import type { FieldDelta } from '../stores/kit/index.js'
import type { CookieSettings } from '../cookie.js'
import { decodeLifetime, encodeLifetime, SessionCookie } from './cookie.js'
import type { LifetimeHolder } from './cookie.js'
import { checkKey, sessionProxy } from './proxy.js'
import type { ProxyTarget } from './proxy.js'
import type { Session } from './types.js'

/** A pending change of one top-level key. `set` takes its value from the data at save time. */
export type Pending = { readonly kind: 'set' } | { readonly kind: 'del' } | { kind: 'incr', by: number }

const SET: Pending = Object.freeze({ kind: 'set' })
const DEL: Pending = Object.freeze({ kind: 'del' })

/** The stored field that holds a session's own cookie lifetime (a name data keys may not use). */
export const LIFETIME_FIELD = 'cookie'

/** The operations behind the session methods, implemented by the core. */
export interface SessionOps {
  readonly options: { readonly cookie: CookieSettings }
  save (state: SessionState): Promise<void>
  reload (state: SessionState): Promise<void>
  destroy (state: SessionState): Promise<void>
  regenerate (state: SessionState, keepData: boolean): Promise<void>
  touch (state: SessionState): Promise<void>
  lock (state: SessionState): Promise<void>
}

/**
 * Mutable per-request state behind `req.session`. Internal: adapters hold it, user code sees
 * only the proxy.
 */
export class SessionState implements ProxyTarget, LifetimeHolder {
  readonly ops: SessionOps
  readonly secure: boolean
  readonly log: SessionLogger
  /** undefined until a new session needs one. */
  id: string | undefined
  isNew = true
  data: Record<string, unknown> = Object.create(null) as Record<string, unknown>
  /** JSON text of each key as last read from or written to the store. */
  stored = new Map<string, string>()
  pending = new Map<string, Pending>()
  /** Keys whose object values user code may have mutated in place. */
  handedOut = new Set<string>()
  createdAt = 0
  absoluteExpiry = 0
  version = 0
  lockHandle: SessionLock | undefined
  /** The client holds a cookie of ours (valid or not). */
  cookieOnClient: boolean
  /** Send a fresh Set-Cookie (new session, re-signed with the current secret, rolled expiry). */
  sendCookie = false
  /** Set once the final save has run, so an error reply does not save a second time. */
  finished = false
  /** The highest version of this session the client says it has seen (near-cache only). */
  seenVersion = 0
  /**
   * With the near-cache on, where this request's session came from: `hit` (a copy, no store
   * round trip) or `miss` (read from the store). Undefined without the near-cache or without a
   * session cookie to read. Reported to the balancer in `x-tether-cache` (see core/cache-report.ts).
   */
  cacheResult: 'hit' | 'miss' | undefined
  /** Set once something happened that finishing may have to save or answer. */
  dirty = false
  /**
   * This session's own cookie lifetime (`req.session.cookie.maxAge`), saved with it: ms, null
   * for a browser-session cookie, undefined to follow the `cookie.maxAge` option.
   */
  lifetime: number | null | undefined
  /** A session with its own lifetime was loaded far enough into it that the store TTL and the cookie should roll. */
  lifetimeRefreshDue = false
  #cookie: SessionCookie | undefined
  #onDirty: (() => void) | undefined
  readonly proxy: Session

  constructor (ops: SessionOps, secure: boolean, log: SessionLogger, cookieOnClient: boolean) {
    this.ops = ops
    this.secure = secure
    this.log = log
    this.cookieOnClient = cookieOnClient
    this.proxy = sessionProxy(this)
  }

  /**
   * Run `fn` once, as soon as the session may need saving: now if it already may, otherwise at
   * its first write, in-place mutable read, or method call. Adapters defer their output hooks
   * with it, so a request that only reads plain values pays for none.
   */
  whenDirty (fn: () => void): void {
    if (this.dirty) fn()
    else this.#onDirty = fn
  }

  markDirty (): void {
    if (this.dirty) return
    this.dirty = true
    const fn = this.#onDirty
    this.#onDirty = undefined
    fn?.()
  }

  /** The id, given to the session now if it has none yet (a new session's first need of one). */
  sessionId (): string {
    this.id ??= newId()
    return this.id
  }

  // The session methods: anything may need saving after one of them.
  async regenerate (keepData: boolean): Promise<void> { this.markDirty(); await this.ops.regenerate(this, keepData) }
  async destroy (): Promise<void> { this.markDirty(); await this.ops.destroy(this) }
  async save (): Promise<void> { this.markDirty(); await this.ops.save(this) }
  async reload (): Promise<void> { this.markDirty(); await this.ops.reload(this) }
  async touch (): Promise<void> { this.markDirty(); await this.ops.touch(this) }
  async lock (): Promise<void> { this.markDirty(); await this.ops.lock(this) }

  /** `req.session.cookie`, made on first use. */
  cookie (): SessionCookie {
    this.#cookie ??= new SessionCookie(this, this.ops.options.cookie)
    return this.#cookie
  }

  cookieLifetime (): number | undefined {
    return this.lifetime === undefined ? this.ops.options.cookie.maxAge : this.lifetime ?? undefined
  }

  setLifetime (lifetime: number | null): void {
    this.markDirty()
    this.lifetime = lifetime
    this.sendCookie = true
  }

  /** The stored `cookie` field to write, when this request changed the session's lifetime. */
  lifetimeField (): string | undefined {
    const json = encodeLifetime(this.lifetime)
    return json !== this.stored.get(LIFETIME_FIELD) ? json : undefined
  }

  /** Remember that an object value was handed out: user code may mutate it in place. */
  handOut (key: string): void {
    this.handedOut.add(key)
    this.markDirty()
  }

  /** Take over a session loaded from the store, discarding any local state. */
  adopt (id: string, stored: StoredSession): void {
    this.id = id
    this.isNew = false
    const data = Object.create(null) as Record<string, unknown>
    for (const [key, json] of stored.fields) if (key !== LIFETIME_FIELD) data[key] = json
    this.data = data
    this.lifetime = decodeLifetime(stored.fields.get(LIFETIME_FIELD))
    // A session with its own lifetime rolls it (store TTL and cookie) once a tenth of it has
    // passed, or at once when a store refresh left it longer than the lifetime.
    const left = stored.expiresAt - Date.now()
    this.lifetimeRefreshDue = typeof this.lifetime === 'number' && (left > this.lifetime || this.lifetime - left >= this.lifetime / 10)
    this.stored = stored.fields
    this.decoded = false
    this.pending.clear()
    this.handedOut.clear()
    this.createdAt = stored.createdAt
    this.absoluteExpiry = stored.absoluteExpiry
    this.version = stored.version
  }

  /** Become a brand-new, empty session (after destroy, or when the stored one is gone). */
  reset (): void {
    this.id = undefined
    this.isNew = true
    this.data = Object.create(null) as Record<string, unknown>
    this.stored = new Map()
    this.decoded = true
    this.pending.clear()
    this.handedOut.clear()
    this.createdAt = 0
    this.absoluteExpiry = 0
    this.version = 0
    this.lifetime = undefined
    this.lifetimeRefreshDue = false
    this.seenVersion = 0
  }

  /**
   * Become a new session under a fresh id (regenerate): with `keepData`, the data carries over
   * and all of it is pending, to be written under the new id.
   */
  restart (keepData: boolean): void {
    if (keepData) {
      this.decodeAll()
      const data = this.data
      const lifetime = this.lifetime
      this.reset()
      this.data = data
      this.lifetime = lifetime
      for (const key of Object.keys(data)) this.pending.set(key, SET)
    } else {
      this.reset()
    }
    this.id = newId()
  }

  /**
   * The store accepted this request's write (`delta`, now at `version`): what it holds is now
   * what this request sees, counters at the values the store computed.
   */
  saved (delta: FieldDelta, version: number, created: boolean): void {
    writeFields(this.stored, delta)
    for (const [key, value] of delta.counters) this.data[key] = value
    this.pending.clear()
    this.version = version
    if (created) {
      this.isNew = false
      this.sendCookie = true
    }
  }

  /**
   * Values are decoded from JSON on first access, not at load: a request that never reads its
   * session (or reads one key) does not pay for parsing every key.
   */
  decoded = true

  read (key: string): unknown {
    let value = this.data[key]
    // Until decoded, a key's data slot holds the stored JSON text itself. A decoded string can
    // never equal its own JSON text (that has quotes), so the comparison tells the two apart.
    if (!this.decoded && typeof value === 'string' && this.stored.get(key) === value && !this.pending.has(key)) {
      value = decodeValue(key, value)
      this.data[key] = value
    }
    return value
  }

  /** Decode every key still held as JSON text (before handing the whole data out). */
  decodeAll (): void {
    if (this.decoded) return
    for (const key of Object.keys(this.data)) this.read(key)
    this.decoded = true
  }

  write (key: string, value: unknown): void {
    checkKey(key)
    this.markDirty()
    if (value === undefined) {
      this.remove(key)
      return
    }
    this.data[key] = value
    this.pending.set(key, SET)
  }

  remove (key: string): void {
    checkKey(key)
    this.markDirty()
    delete this.data[key]
    this.pending.set(key, DEL)
  }

  increment (key: string, by: number): number {
    checkKey(key)
    this.markDirty()
    if (!Number.isSafeInteger(by)) throw tetherError('TETHER_ERR_NOT_A_COUNTER', `increment('${key}', ${String(by)}): the step must be a safe integer`)
    const current = this.read(key) ?? 0
    if (typeof current !== 'number' || !Number.isSafeInteger(current)) {
      throw tetherError('TETHER_ERR_NOT_A_COUNTER', `increment('${key}'): the current value is not a safe integer`)
    }
    const next = current + by
    if (!Number.isSafeInteger(next)) throw tetherError('TETHER_ERR_NOT_A_COUNTER', `increment('${key}'): the result leaves the safe integer range`)
    this.data[key] = next
    const pending = this.pending.get(key)
    // A key already overwritten or deleted in this request is sent as a plain value: the
    // request's own write decides it, as it would for an assignment.
    if (pending === undefined) this.pending.set(key, { kind: 'incr', by })
    else if (pending.kind === 'incr') pending.by += by
    else this.pending.set(key, SET)
    return next
  }

  /**
   * The data as a plain object. Keys are defined, not assigned: `Object.assign({}, data)` would
   * run the `__proto__` setter for a key of that name and hand out an object whose prototype
   * came from session data.
   */
  snapshot (): Record<string, unknown> {
    this.decodeAll()
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(this.data)) {
      const value = this.data[key]
      if (typeof value === 'object' && value !== null) this.handOut(key)
      Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true })
    }
    return out
  }
}
