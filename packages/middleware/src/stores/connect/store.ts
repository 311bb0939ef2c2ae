/**
 * ConnectStore: any express-session-compatible store (connect-redis, connect-pg-simple,
 * connect-mongo, express-session's MemoryStore, …) as a Tether SessionStore.
 *
 * Those stores only know whole objects: `get(sid)` and `set(sid, session)`, no conditional or
 * partial write. So every write here is a read-modify-write of the whole session (two round
 * trips), and of two writes to one session that overlap, the last one wins. There is no lock
 * and no fencing, and no exactly-once: without a conditional write, a write id cannot be checked
 * and recorded in one atomic step, so the core never retries a write here. See docs/stores.md for what that costs and which conformance cases it skips.
 */
import { outcomeUnknown, storeUnavailable, tetherError, TetherError } from '../../errors.js'
import type { ApplyResult, LoadOptions, SessionChange, SessionStore, StoredSession } from '../../store.js'
import { applyToFields } from '../kit/index.js'

type Callback = (err?: unknown, value?: unknown) => void

/**
 * What ConnectStore needs of an express-session store: the methods express-session itself
 * calls, with Node-style callbacks (connect-redis 9's promise-returning methods qualify too).
 *
 * @example
 * ```ts
 * import { RedisStore as ConnectRedis } from 'connect-redis'
 * const legacy: ConnectCompatibleStore = new ConnectRedis({ client })
 * ```
 */
export interface ConnectCompatibleStore {
  get (sid: string, callback: Callback): unknown
  set (sid: string, session: ConnectRecord, callback: Callback): unknown
  destroy (sid: string, callback: Callback): unknown
  /** Optional in express-session; without it a TTL refresh rewrites the whole record. */
  touch? (sid: string, session: ConnectRecord, callback: Callback): unknown
}

/**
 * The object ConnectStore hands to the wrapped store. `cookie.expires` is where connect-*
 * stores read the TTL from, as they do for express-session's sessions; the rest is Tether's.
 *
 * @example
 * ```ts
 * const record: ConnectRecord = {
 *   cookie: { originalMaxAge: 86_400_000, expires: '2030-01-01T00:00:00.000Z' },
 *   tether: { v: 1, createdAt: 0, absoluteExpiry: 0, version: 1, fields: [['visits', '3']] }
 * }
 * ```
 */
export interface ConnectRecord {
  cookie: { originalMaxAge: number, expires: string }
  tether: {
    v: 1
    createdAt: number
    absoluteExpiry: number
    version: number
    /** [key, JSON text] pairs: a list, so `__proto__` is an ordinary key in every serializer. */
    fields: Array<[string, string]>
  }
}

/**
 * Options of {@link ConnectStore}.
 *
 * @example
 * ```ts
 * const store = new ConnectStore(new ConnectPgSimple({ pool }), { timeout: 5000 })
 * ```
 */
export interface ConnectStoreOptions {
  /**
   * Longest wait for one call of the wrapped store (ms) before the request fails with
   * `TETHER_ERR_STORE_UNAVAILABLE`. Many stores queue commands while their backend is down
   * instead of failing them. Default 2000.
   */
  timeout?: number
}

interface Loaded {
  readonly record: ConnectRecord
  readonly deadline: number
}

/**
 * Adapts an express-session store to the {@link SessionStore} contract, with whole-object
 * semantics: each write reads the session, applies the request's changes to it and writes it
 * back whole. Two overlapping writes to one session: the last one wins (a write racing a
 * destroy can even bring the session back). Increments are not atomic, and lock mode is not
 * available. Use RedisStore when those matter; use this to keep a backend you already run.
 *
 * Idle expiry is the wrapped store's own TTL (taken from `cookie.expires`, at that store's
 * granularity: connect-redis rounds up to whole seconds); the absolute deadline is checked here.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import { RedisStore as ConnectRedis } from 'connect-redis'
 * import { expressSession, ConnectStore } from '@tether/middleware'
 *
 * const client = createClient({ url: process.env.REDIS_URL, disableOfflineQueue: true })
 * await client.connect()
 * app.use(expressSession({ secret, store: new ConnectStore(new ConnectRedis({ client, prefix: 'sess:' })) }))
 * ```
 */
export class ConnectStore implements SessionStore {
  readonly #store: ConnectCompatibleStore
  readonly #timeout: number
  readonly #name: string

  constructor (store: ConnectCompatibleStore, options: ConnectStoreOptions = {}) {
    for (const method of ['get', 'set', 'destroy'] as const) {
      if (typeof store?.[method] !== 'function') {
        throw tetherError('TETHER_ERR_INVALID_OPTION', `ConnectStore needs an express-session store with get(), set() and destroy(); ${method}() is missing`)
      }
    }
    const timeout = options.timeout ?? 2000
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
      throw tetherError('TETHER_ERR_INVALID_OPTION', `ConnectStore option 'timeout' must be a positive number of milliseconds; got ${String(timeout)}`)
    }
    this.#store = store
    this.#timeout = timeout
    this.#name = `ConnectStore(${store.constructor?.name ?? 'store'})`
  }

  async load (id: string, options: LoadOptions): Promise<StoredSession | undefined> {
    const loaded = await this.#get(id, options.now)
    if (loaded === undefined) return undefined
    const { record } = loaded
    let deadline = loaded.deadline
    let refreshed = false
    if (options.refreshBelow > 0 && deadline - options.now < options.refreshBelow) {
      const next = Math.min(options.now + options.idleTimeout, record.tether.absoluteExpiry)
      if (next > deadline) {
        // touch() moves the store's TTL without rewriting the record, so a read never writes
        // session data back over a concurrent writer. Stores that persist the object passed to
        // touch() (express-session's MemoryStore) also keep the new deadline.
        await this.#extend(id, record, next, options.now)
        deadline = next
        refreshed = true
      }
    }
    return {
      fields: new Map(record.tether.fields),
      createdAt: record.tether.createdAt,
      absoluteExpiry: record.tether.absoluteExpiry,
      // The wrapped store still holds the session, so it is alive now even when the deadline
      // recorded at the last write has passed: a touch() moved the store's TTL, not the record.
      expiresAt: Math.max(deadline, options.now + 1),
      version: record.tether.version,
      refreshed
    }
  }

  async apply (id: string, change: SessionChange): Promise<ApplyResult> {
    const loaded = await this.#get(id, change.now)
    let base: ConnectRecord['tether']
    if (change.create !== undefined) {
      if (loaded !== undefined) return { ok: false, reason: 'exists' }
      base = { v: 1, createdAt: change.create.createdAt, absoluteExpiry: change.create.absoluteExpiry, version: 0, fields: [] }
    } else if (loaded === undefined) {
      return { ok: false, reason: 'gone' }
    } else {
      base = loaded.record.tether
    }
    // This store grants no locks, so no fencing token can be current.
    if (change.fence !== undefined) return { ok: false, reason: 'fenced' }
    const fields = new Map(base.fields)
    const counters = applyToFields(fields, change)
    const version = base.version + 1
    const deadline = Math.min(change.now + change.ttl, base.absoluteExpiry)
    const record: ConnectRecord = {
      cookie: cookieFor(deadline, change.now),
      tether: { v: 1, createdAt: base.createdAt, absoluteExpiry: base.absoluteExpiry, version, fields: [...fields] }
    }
    await this.#call('set', id, record)
    return { ok: true, version, counters }
  }

  async destroy (id: string): Promise<void> {
    await this.#call('destroy', id)
  }

  async touch (id: string, ttl: number, now: number): Promise<boolean> {
    const loaded = await this.#get(id, now)
    if (loaded === undefined) return false
    await this.#extend(id, loaded.record, Math.min(now + ttl, loaded.record.tether.absoluteExpiry), now)
    return true
  }

  async #extend (id: string, record: ConnectRecord, deadline: number, now: number): Promise<void> {
    const moved: ConnectRecord = { cookie: cookieFor(deadline, now), tether: record.tether }
    await this.#call(typeof this.#store.touch === 'function' ? 'touch' : 'set', id, moved)
  }

  /** The session's record if it exists and its absolute deadline has not passed. */
  async #get (id: string, now: number): Promise<Loaded | undefined> {
    const raw = await this.#call('get', id)
    if (raw === undefined || raw === null) return undefined
    const loaded = parseRecord(raw)
    if (loaded === undefined) {
      throw tetherError('TETHER_ERR_STORE_CORRUPT', `${this.#name} returned a session that ConnectStore did not write (no valid 'tether' record)`)
    }
    return now >= loaded.record.tether.absoluteExpiry ? undefined : loaded
  }

  /**
   * Call one store method with a callback, bounded by the timeout. express-session only ever
   * passes callbacks, so the callback is authoritative; a returned promise (connect-redis 9)
   * is watched only for a rejection the callback never reports.
   */
  #call (method: 'get' | 'destroy', id: string): Promise<unknown>
  #call (method: 'set' | 'touch', id: string, record: ConnectRecord): Promise<unknown>
  #call (method: 'get' | 'set' | 'destroy' | 'touch', id: string, record?: ConnectRecord): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let settled = false
      const silent = new Error(`${method}() did not answer within ${this.#timeout} ms`)
      const timer = setTimeout(() => done(silent), this.#timeout)
      const done: Callback = (err, value) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (err === undefined || err === null) resolve(value)
        // A set() that never answered may still land: its outcome is unknown. An error the
        // store reports is its answer, taken at its word.
        else if (err === silent && method === 'set') reject(outcomeUnknown(this.#name, err))
        else reject(err instanceof TetherError ? err : storeUnavailable(this.#name, err))
      }
      try {
        const store = this.#store
        const returned = method === 'get' || method === 'destroy'
          ? store[method](id, done)
          : store[method]!(id, record!, done)
        if (isThenable(returned)) returned.then(undefined, (err: unknown) => done(err ?? new Error(`${method}() rejected`)))
      } catch (err) {
        done(err)
      }
    })
  }
}

function cookieFor (deadline: number, now: number): ConnectRecord['cookie'] {
  return { originalMaxAge: Math.max(0, deadline - now), expires: new Date(deadline).toISOString() }
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

/** Validate what the wrapped store returned; undefined when it is not a record of ours. */
function parseRecord (raw: unknown): Loaded | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined
  const { cookie, tether } = raw as Partial<ConnectRecord>
  if (typeof tether !== 'object' || tether === null || tether.v !== 1) return undefined
  if (!isTime(tether.createdAt) || !isTime(tether.absoluteExpiry) || !Number.isSafeInteger(tether.version) || !Array.isArray(tether.fields)) return undefined
  for (const pair of tether.fields) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') return undefined
  }
  // Some stores hand back `expires` as a Date (they revive it), most as the ISO text we wrote.
  const expires = cookie?.expires as unknown
  const deadline = expires instanceof Date ? expires.getTime() : typeof expires === 'string' ? Date.parse(expires) : Number.NaN
  if (!Number.isFinite(deadline)) return undefined
  return { record: raw as ConnectRecord, deadline }
}

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}
