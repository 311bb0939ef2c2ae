/**
 * The near-cache: a bounded, per-process copy of sessions, kept correct by the store's
 * invalidations rather than by routing.
 *
 * What invalidates a copy, and how fast:
 * - every change the store sees (a write, an increment, a destroy, a regenerate, a TTL refresh,
 *   an expiry; by any node or any other client of the store) reaches the store's
 *   {@link InvalidationChannel}, which drops the copy: within the channel's `maxLag`
 *   (Redis: server-assisted client-side caching, see stores/redis/invalidations.ts);
 * - while the channel is not live (connecting, reconnecting, silent past `maxLag`) no copy is
 *   served or installed, and every loss or return of the channel drops all copies;
 * - a load that started before an invalidation of its session never installs its result (the
 *   invalidation may have overtaken the reply), so a copy never holds what the channel already
 *   declared old;
 * - a client presents the highest version it has seen of its session (a companion cookie,
 *   core/version-cookie.ts); a copy older than that is never served to it, which gives each
 *   client read-your-writes and monotonic reads even before the invalidation arrives.
 *
 * The balancer's `x-tether-route` header plays no part: the cache is safe behind any routing.
 */
import { LRUCache } from 'lru-cache'
import { tetherError } from './errors.js'
import type { InvalidationChannel, SessionRecord, SessionStore, StoredSession } from './store.js'
import { writeFields } from './stores/kit/index.js'
import type { FieldDelta } from './stores/kit/index.js'

/** Options of the near-cache (`SessionOptions.nearCache`). */
export interface NearCacheOptions {
  /** Most sessions kept per process (least recently used evicted). Default 10 000. */
  maxEntries?: number
  /** Most bytes of session data kept per process (keys and JSON texts, UTF-16). Default 64 MiB. */
  maxBytes?: number
  /** Longest time one copy is used before the store is read again (ms). Default 60 s. */
  maxAge?: number
  /**
   * The longest a node may go without proof that its invalidation channel is current (ms):
   * past it, copies are not served until the channel answers again. This bounds how long a
   * change made by one client can stay visible to another. Default 1000.
   */
  maxLag?: number
  /**
   * @deprecated Ignored. The cache no longer trusts the balancer's route header, so it needs
   * no list of balancers; accepted so that existing `stickyCache` options keep starting.
   */
  trustedProxies?: readonly string[]
}

type Entry = SessionRecord & { readonly cachedAt: number }

/** A load in flight: what it must find unchanged to install its result. */
export interface LoadTicket {
  readonly id: string
  readonly epoch: number
  readonly gen: number
}

interface Inflight { count: number, gen: number }

const OVERHEAD = 200

/**
 * @example
 * ```ts
 * const cache = new NearCache(store, { maxEntries: 50_000 })   // throws TETHER_ERR_NEAR_CACHE_UNSUPPORTED for a store without invalidations
 * const ticket = cache.begin(id)
 * const s = await store.load(id, opts)
 * if (s) cache.install(ticket, s, Date.now())
 * cache.end(ticket)
 * ```
 */
export class NearCache {
  readonly #entries: LRUCache<string, Entry>
  readonly #channel: InvalidationChannel
  readonly #inflight = new Map<string, Inflight>()
  readonly #maxAge: number
  /** Bumped whenever everything is dropped (channel lost or back, FLUSHALL): older loads may not install. */
  #epoch = 0

  constructor (store: SessionStore, options: NearCacheOptions | true = {}) {
    const o = options === true ? {} : options
    if (typeof o !== 'object' || o === null) throw tetherError('TETHER_ERR_INVALID_OPTION', "session option 'nearCache' must be true or an object")
    const maxEntries = o.maxEntries ?? 10_000
    const maxBytes = o.maxBytes ?? 64 * 1024 * 1024
    this.#maxAge = o.maxAge ?? 60_000
    const maxLag = o.maxLag ?? 1000
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw tetherError('TETHER_ERR_INVALID_OPTION', "session option 'nearCache.maxEntries' must be a positive integer")
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024) throw tetherError('TETHER_ERR_INVALID_OPTION', "session option 'nearCache.maxBytes' must be an integer of at least 1024")
    if (!Number.isFinite(this.#maxAge) || this.#maxAge <= 0) throw tetherError('TETHER_ERR_INVALID_OPTION', "session option 'nearCache.maxAge' must be a positive number of milliseconds")
    if (!Number.isFinite(maxLag) || maxLag < 10) throw tetherError('TETHER_ERR_INVALID_OPTION', "session option 'nearCache.maxLag' must be at least 10 ms")
    if (typeof store.invalidations !== 'function') {
      throw tetherError('TETHER_ERR_NEAR_CACHE_UNSUPPORTED', `session option 'nearCache': ${store.constructor.name} cannot tell this process when another one changes a session, so a copy could be served stale. Use RedisStore (node-redis) or MemoryStore, or turn the near-cache off`)
    }
    this.#entries = new LRUCache<string, Entry>({ max: maxEntries, maxSize: maxBytes, sizeCalculation: size })
    this.#channel = store.invalidations((id) => { if (id === null) this.#dropAll(); else this.#drop(id) }, { maxLag })
  }

  /** Sessions currently cached. */
  get size (): number { return this.#entries.size }

  /** Bytes of session data currently cached (as `maxBytes` counts them). */
  get bytes (): number { return this.#entries.calculatedSize }

  /** True while copies may be served: the store's invalidation channel is live and current. */
  live (now: number): boolean { return this.#channel.live(now) }

  /**
   * A copy that may be served to a client that has seen `minVersion` of the session: the
   * channel is current, the copy is at least that version, not older than `maxAge`, not past
   * either deadline, and not due for the lazy TTL refresh (the store load does that).
   */
  get (id: string, minVersion: number, now: number, refreshBelow: number): StoredSession | undefined {
    const e = this.#entries.get(id)
    if (e === undefined) return undefined
    if (now - e.cachedAt > this.#maxAge || now >= e.absoluteExpiry || now >= e.expiresAt) {
      this.#entries.delete(id)
      return undefined
    }
    if (e.version < minVersion || !this.#channel.live(now)) return undefined
    if (refreshBelow > 0 && e.expiresAt - now < refreshBelow && e.expiresAt < e.absoluteExpiry) return undefined
    return { fields: new Map(e.fields), createdAt: e.createdAt, absoluteExpiry: e.absoluteExpiry, expiresAt: e.expiresAt, version: e.version, refreshed: false }
  }

  /** Call before a store load whose result may be cached; pair with {@link end}. */
  begin (id: string): LoadTicket {
    let f = this.#inflight.get(id)
    if (f === undefined) {
      f = { count: 0, gen: 0 }
      this.#inflight.set(id, f)
    }
    f.count++
    return { id, epoch: this.#epoch, gen: f.gen }
  }

  /**
   * Keep what a load returned, unless the session (or everything) was invalidated since the
   * load began: the invalidation may have been processed before this reply's continuation ran.
   */
  install (ticket: LoadTicket, s: StoredSession, now: number): void {
    if (ticket.epoch !== this.#epoch || this.#inflight.get(ticket.id)?.gen !== ticket.gen || !this.#channel.live(now)) return
    const current = this.#entries.peek(ticket.id)
    if (current !== undefined && current.version > s.version) return
    this.#entries.set(ticket.id, { fields: new Map(s.fields), createdAt: s.createdAt, absoluteExpiry: s.absoluteExpiry, expiresAt: s.expiresAt, version: s.version, cachedAt: now })
  }

  /** The load of `ticket` finished (whatever its outcome). */
  end (ticket: LoadTicket): void {
    const f = this.#inflight.get(ticket.id)
    if (f !== undefined && --f.count === 0) this.#inflight.delete(ticket.id)
  }

  /**
   * Follow a write the store accepted: it applied `delta` on top of version `version - 1`, so
   * a copy at exactly that version becomes the store's state. Anything else drops the copy.
   */
  applied (id: string, version: number, delta: FieldDelta, expiresAt: number): void {
    const e = this.#entries.peek(id)
    if (e === undefined) return
    if (e.version !== version - 1) {
      this.#entries.delete(id)
      return
    }
    const fields = new Map(e.fields)
    writeFields(fields, delta)
    this.#entries.set(id, { ...e, fields, version, expiresAt })
  }

  /** Drop a copy (this process destroyed or regenerated the session, or found it gone). */
  delete (id: string): void {
    this.#drop(id)
  }

  /** Close the store's invalidation channel. */
  async close (): Promise<void> {
    this.#dropAll()
    await this.#channel.close()
  }

  #drop (id: string): void {
    this.#entries.delete(id)
    const f = this.#inflight.get(id)
    if (f !== undefined) f.gen++
  }

  #dropAll (): void {
    this.#epoch++
    this.#entries.clear()
  }
}

function size (e: Entry, key: string): number {
  let n = OVERHEAD + key.length * 2
  for (const [k, v] of e.fields) n += (k.length + v.length) * 2 + 32
  return n
}
