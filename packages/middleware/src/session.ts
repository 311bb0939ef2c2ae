/**
 * One request's session: its data, what the request changed, and the `req.session` object
 * that user code sees.
 *
 * Change tracking is per top-level key. Assignments and deletes are recorded by the proxy
 * traps; nested mutations (`req.session.cart.items.push(x)`) are found at save time by
 * re-encoding only the keys whose object values were handed out and comparing them with the
 * JSON text loaded from the store. No deep proxies, no copies of unread values.
 */
import { inspect } from 'node:util'
import { decodeValue } from './codec.js'
import { tetherError } from './errors.js'
import type { SessionLogger } from './options.js'
import type { Route } from './sticky-cache.js'
import type { SessionLock, StoredSession } from './store.js'

/**
 * Your session's shape. Extend it by declaration merging and `req.session` is typed for
 * both the Fastify plugin and the Express middleware.
 *
 * @example
 * ```ts
 * declare module '@tether/middleware' {
 *   interface SessionData { userId: string, visits: number, cart: { items: string[] } }
 * }
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface SessionData {}

/** {@link SessionData} without index signatures: the keys it names. */
type NamedKeys<T> = { [K in keyof T as string extends K ? never : number extends K ? never : symbol extends K ? never : K]: T[K] }

/**
 * Keys `increment` accepts: the named {@link SessionData} keys whose type is `number`, or any
 * string when SessionData has an index signature that admits numbers.
 */
export type CounterKey =
  | ({ [K in keyof NamedKeys<SessionData>]-?: NonNullable<NamedKeys<SessionData>[K]> extends number ? K : never }[keyof NamedKeys<SessionData>] & string)
  | (SessionData extends { [key: string]: infer V } ? (number extends V ? string : never) : never)

/**
 * The methods and metadata every session has, next to its data.
 *
 * @example
 * ```ts
 * app.post('/login', async (req) => {
 *   await req.session.regenerate()          // new id against session fixation; data kept
 *   req.session.userId = user.id
 * })
 * app.post('/logout', async (req) => { await req.session.destroy() })
 * app.post('/visit', async (req) => ({ visits: req.session.increment('visits') })) // exact under concurrency
 * ```
 */
export interface SessionApi {
  /** The session id (192 random bits, base64url). Stable for the request unless regenerated. */
  readonly id: string
  /** True until the session has been written to the store. */
  readonly isNew: boolean
  /** Read a key (same as property access; handy for keys that clash with method names). */
  get<K extends keyof SessionData & string> (key: K): SessionData[K] | undefined
  /** Write a key (same as property assignment). */
  set<K extends keyof SessionData & string> (key: K, value: SessionData[K]): void
  /**
   * Add `by` (default 1, a safe integer) to an integer key, atomically in the store: N
   * concurrent increments add exactly N, on any node, without a lock. Returns the local value.
   */
  increment (key: CounterKey, by?: number): number
  /** Give the session a new id and destroy the old one. Keeps the data unless `keepData: false`. */
  regenerate (options?: { keepData?: boolean }): Promise<void>
  /** Delete the session from the store now. Later writes in this request start a new session. */
  destroy (): Promise<void>
  /** Write the pending changes now instead of when the response is sent. */
  save (): Promise<void>
  /** Drop unsaved changes and read the session again from the store. */
  reload (): Promise<void>
  /** Reset the idle timeout now. */
  touch (): Promise<void>
  /**
   * Take this session's lock until the response is sent (lock mode for this request), then
   * reload so the request sees every earlier holder's writes.
   */
  lock (): Promise<void>
  /** The session data as a plain object. */
  toJSON (): Record<string, unknown>
}

/**
 * `req.session`: your {@link SessionData} keys as plain properties, plus {@link SessionApi}.
 *
 * @example
 * ```ts
 * req.session.visits = (req.session.visits ?? 0) + 1
 * delete req.session.flash
 * ```
 */
export type Session = SessionApi & Partial<SessionData>

/** A pending change of one top-level key. `set` takes its value from the data at save time. */
export type Pending = { readonly kind: 'set' } | { readonly kind: 'del' } | { kind: 'incr', by: number }

const SET: Pending = Object.freeze({ kind: 'set' })
const DEL: Pending = Object.freeze({ kind: 'del' })

/** The operations behind the session methods, implemented by the core. */
export interface SessionOps {
  save (state: SessionState): Promise<void>
  reload (state: SessionState): Promise<void>
  destroy (state: SessionState): Promise<void>
  regenerate (state: SessionState, keepData: boolean): Promise<void>
  touch (state: SessionState): Promise<void>
  lock (state: SessionState): Promise<void>
  id (state: SessionState): string
}

/**
 * Mutable per-request state behind `req.session`. Internal: adapters hold it, user code sees
 * only the proxy.
 */
export class SessionState {
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
  /** How a trusted balancer routed this request (only with the sticky cache enabled). */
  route: Route | undefined
  /** Set once something happened that finishing may have to save or answer. */
  dirty = false
  #onDirty: (() => void) | undefined
  readonly proxy: Session

  constructor (ops: SessionOps, secure: boolean, log: SessionLogger, cookieOnClient: boolean) {
    this.ops = ops
    this.secure = secure
    this.log = log
    this.cookieOnClient = cookieOnClient
    this.proxy = new Proxy(this, handler) as unknown as Session
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
    for (const [key, json] of stored.fields) data[key] = json
    this.data = data
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

  snapshot (): Record<string, unknown> {
    this.decodeAll()
    for (const key of Object.keys(this.data)) {
      const v = this.data[key]
      if (typeof v === 'object' && v !== null) this.handOut(key)
    }
    return Object.assign({}, this.data)
  }
}

// Method names and metadata a data key may not shadow. `then` is here so that awaiting or
// returning `req.session` from an async function does not treat it as a thenable.
const RESERVED = new Set(['id', 'isNew', 'cookie', 'get', 'set', 'increment', 'regenerate', 'destroy', 'save', 'reload', 'touch', 'lock', 'toJSON', 'then'])

function checkKey (key: string): void {
  if (RESERVED.has(key)) throw tetherError('TETHER_ERR_RESERVED_KEY', `'${key}' is a session method or property and cannot be used as a data key; use another name`)
  if (key.charCodeAt(0) === 0) throw tetherError('TETHER_ERR_RESERVED_KEY', 'session keys may not start with a NUL character (reserved for store metadata)')
}

// The methods live here once; the proxy hands out these shared functions and they find the
// request's state through `this`, so a request allocates no closures for its session.
const kState = Symbol('tether.session.state')
type WithState = { [kState]: SessionState }

const api: Record<string, unknown> = {
  get (this: WithState, key: string) { return this[kState].read(key) },
  set (this: WithState, key: string, value: unknown) { this[kState].write(key, value) },
  increment (this: WithState, key: string, by = 1) { return this[kState].increment(key, by) },
  async regenerate (this: WithState, options?: { keepData?: boolean }) {
    const state = this[kState]
    state.markDirty()
    await state.ops.regenerate(state, options?.keepData ?? true)
  },
  async destroy (this: WithState) { const s = this[kState]; s.markDirty(); await s.ops.destroy(s) },
  async save (this: WithState) { const s = this[kState]; s.markDirty(); await s.ops.save(s) },
  async reload (this: WithState) { const s = this[kState]; s.markDirty(); await s.ops.reload(s) },
  async touch (this: WithState) { const s = this[kState]; s.markDirty(); await s.ops.touch(s) },
  async lock (this: WithState) { const s = this[kState]; s.markDirty(); await s.ops.lock(s) },
  toJSON (this: WithState) { return this[kState].snapshot() }
}

const handler: ProxyHandler<SessionState> = {
  get (state, prop) {
    if (typeof prop === 'symbol') {
      if (prop === kState) return state
      if (prop === inspect.custom) return () => ({ id: state.id, isNew: state.isNew, data: state.snapshot() })
      if (prop === Symbol.toStringTag) return 'Session'
      return undefined
    }
    if (RESERVED.has(prop)) {
      if (prop === 'id') return state.ops.id(state)
      if (prop === 'isNew') return state.isNew
      return api[prop]
    }
    const value = state.read(prop)
    if (typeof value === 'object' && value !== null) state.handOut(prop)
    return value
  },
  set (state, prop, value) {
    if (typeof prop === 'symbol') throw tetherError('TETHER_ERR_RESERVED_KEY', 'session keys must be strings, not symbols')
    state.write(prop, value)
    return true
  },
  deleteProperty (state, prop) {
    if (typeof prop === 'symbol') return true
    state.remove(prop)
    return true
  },
  has (state, prop) {
    if (typeof prop === 'symbol') return prop === kState
    return RESERVED.has(prop) ? prop !== 'then' && prop !== 'cookie' : prop in state.data
  },
  ownKeys (state) {
    return Object.keys(state.data)
  },
  getOwnPropertyDescriptor (state, prop) {
    if (typeof prop === 'symbol' || !(prop in state.data)) return undefined
    const value = state.read(prop)
    if (typeof value === 'object' && value !== null) state.handOut(prop)
    return { value, writable: true, enumerable: true, configurable: true }
  },
  defineProperty (state, prop, descriptor) {
    if (typeof prop === 'symbol' || !('value' in descriptor)) throw tetherError('TETHER_ERR_RESERVED_KEY', 'session keys must be plain string-keyed values')
    state.write(prop, descriptor.value)
    return true
  },
  setPrototypeOf () {
    return false
  },
  getPrototypeOf () {
    return null
  }
}
