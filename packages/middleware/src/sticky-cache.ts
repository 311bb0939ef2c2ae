/**
 * The sticky near-cache: a bounded, per-process copy of the sessions this node serves while the
 * Tether balancer keeps routing them here.
 *
 * Why it is safe: a cached copy is only used when a configured trusted proxy (the balancer)
 * says the request was routed by its sticky cookie (`x-tether-route: sticky`). While that holds,
 * every request of the session comes to this process, so every write to the session went
 * through this process and updated the copy. When a session moves (failover, maint, a lost
 * balancer cookie) the balancer says `moved` or `new`, and the copy is dropped before the store
 * is read. Writes always go to the store, which stays the source of truth; each write's new
 * version must follow the cached one, or the copy is dropped. `maxAge` bounds the staleness a
 * misconfigured route could cause.
 */
import { BlockList, isIP } from 'node:net'
import { tetherError } from './errors.js'
import type { SessionRecord, StoredSession } from './store.js'
import { writeFields } from './stores/kit/index.js'
import type { FieldDelta } from './stores/kit/index.js'

/** Options of the sticky near-cache (`SessionOptions.stickyCache`). */
export interface StickyCacheOptions {
  /**
   * Addresses (or CIDR ranges) of the balancer(s) whose `x-tether-route` header is believed.
   * Requests from anywhere else never use the cache, whatever headers they send.
   */
  trustedProxies: readonly string[]
  /** Most sessions kept per process (LRU). Default 10 000. */
  maxEntries?: number
  /** Longest time a copy is used without reading the store (ms). Default 60 s. */
  maxAge?: number
}

type Entry = SessionRecord & { cachedAt: number }

/**
 * How the balancer routed a request, as far as this process may believe it: `sticky` (by its
 * sticky cookie, to the node that holds the session), `new` (a first pick), `moved` (failover
 * or maint: the session's node is gone), `untrusted` (not from a configured balancer).
 *
 * @example
 * ```ts
 * const hint: RouteHint = cache.route(req.socket.remoteAddress, req.headers['x-tether-route'], req.headers['x-tether-moved'])
 * ```
 */
export type RouteHint = 'sticky' | 'new' | 'moved' | 'untrusted'

/**
 * @deprecated Renamed {@link RouteHint}, so that it is not mistaken for the balancer's `Route`
 * (the values of the `x-tether-route` header). This alias goes in the next release.
 *
 * @example
 * ```ts
 * import type { RouteHint } from '@tether/middleware' // instead of Route
 * ```
 */
export type Route = RouteHint

/**
 * @example
 * ```ts
 * const cache = new StickyCache({ trustedProxies: ['127.0.0.1', '10.0.0.0/8'] })
 * cache.route('127.0.0.1', 'sticky', undefined) // 'sticky'
 * cache.route('203.0.113.9', 'sticky', undefined) // 'untrusted'
 * ```
 */
export class StickyCache {
  readonly #entries = new Map<string, Entry>()
  readonly #trusted = new BlockList()
  /** Peer address → trusted, memoised: BlockList.check costs about a microsecond per call. */
  readonly #peers = new Map<string, boolean>()
  readonly #max: number
  readonly #maxAge: number

  constructor (options: StickyCacheOptions) {
    if (typeof options !== 'object' || options === null || !Array.isArray(options.trustedProxies) || options.trustedProxies.length === 0) {
      throw tetherError('TETHER_ERR_INVALID_OPTION', "session option 'stickyCache.trustedProxies' must list the balancer's addresses (for example ['127.0.0.1'])")
    }
    for (const entry of options.trustedProxies) {
      const [address, bits] = String(entry).split('/')
      const family = isIP(address ?? '')
      if (family === 0 || (bits !== undefined && !/^\d+$/.test(bits))) {
        throw tetherError('TETHER_ERR_INVALID_OPTION', `session option 'stickyCache.trustedProxies' has ${JSON.stringify(entry)}, which is not an IP address or CIDR range`)
      }
      const type = family === 6 ? 'ipv6' : 'ipv4'
      if (bits === undefined) this.#trusted.addAddress(address!, type)
      else this.#trusted.addSubnet(address!, Number(bits), type)
    }
    this.#max = options.maxEntries ?? 10_000
    this.#maxAge = options.maxAge ?? 60_000
    if (!Number.isSafeInteger(this.#max) || this.#max < 1) throw tetherError('TETHER_ERR_INVALID_OPTION', "session option 'stickyCache.maxEntries' must be a positive integer")
    if (!Number.isFinite(this.#maxAge) || this.#maxAge <= 0) throw tetherError('TETHER_ERR_INVALID_OPTION', "session option 'stickyCache.maxAge' must be a positive number of milliseconds")
  }

  /** Sessions currently cached. */
  get size (): number { return this.#entries.size }

  /** Classify a request from its peer address and the balancer's headers. */
  route (peer: string | undefined, routeHeader: string | undefined, movedHeader: string | undefined): RouteHint {
    if (peer === undefined || !this.#isTrusted(peer)) return 'untrusted'
    if (movedHeader === '1' || routeHeader === 'moved') return 'moved'
    return routeHeader === 'sticky' ? 'sticky' : 'new'
  }

  /** A usable copy: fresh enough, not past either deadline, not due for a TTL refresh. */
  get (id: string, now: number, refreshBelow: number): StoredSession | undefined {
    const e = this.#entries.get(id)
    if (e === undefined) return undefined
    if (now - e.cachedAt > this.#maxAge || now >= e.absoluteExpiry || now >= e.expiresAt) {
      this.#entries.delete(id)
      return undefined
    }
    // Due for the lazy TTL refresh: let the store load do it (and refresh the copy).
    if (refreshBelow > 0 && e.expiresAt - now < refreshBelow && e.expiresAt < e.absoluteExpiry) return undefined
    this.#entries.delete(id)
    this.#entries.set(id, e)
    return { fields: new Map(e.fields), createdAt: e.createdAt, absoluteExpiry: e.absoluteExpiry, expiresAt: e.expiresAt, version: e.version, refreshed: false }
  }

  /** Remember what the store just returned. */
  put (id: string, s: StoredSession, now: number): void {
    this.#entries.delete(id)
    this.#entries.set(id, { fields: new Map(s.fields), createdAt: s.createdAt, absoluteExpiry: s.absoluteExpiry, expiresAt: s.expiresAt, version: s.version, cachedAt: now })
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
  }

  /**
   * Apply a write the store accepted. The store applied `delta` on top of version `version - 1`;
   * if that is the version of the copy, applying the same delta yields the store's state.
   * Anything else means a write this process did not see, and the copy is dropped.
   */
  applied (id: string, version: number, delta: FieldDelta, expiresAt: number): void {
    const e = this.#entries.get(id)
    if (e === undefined) return
    if (e.version !== version - 1) {
      this.#entries.delete(id)
      return
    }
    writeFields(e.fields, delta)
    e.version = version
    e.expiresAt = expiresAt
  }

  /** Extend a copy's idle expiry after a touch. */
  touched (id: string, expiresAt: number): void {
    const e = this.#entries.get(id)
    if (e !== undefined) e.expiresAt = expiresAt
  }

  delete (id: string): void {
    this.#entries.delete(id)
  }

  #isTrusted (peer: string): boolean {
    let trusted = this.#peers.get(peer)
    if (trusted === undefined) {
      trusted = this.#check(peer)
      // Bounded: a server reached directly by many clients must not grow this without limit.
      if (this.#peers.size >= 1024) this.#peers.clear()
      this.#peers.set(peer, trusted)
    }
    return trusted
  }

  #check (peer: string): boolean {
    // IPv4 clients of a dual-stack server appear as ::ffff:a.b.c.d.
    if (peer.startsWith('::ffff:') && isIP(peer.slice(7)) === 4) return this.#trusted.check(peer.slice(7), 'ipv4')
    const family = isIP(peer)
    return family !== 0 && this.#trusted.check(peer, family === 6 ? 'ipv6' : 'ipv4')
  }
}
