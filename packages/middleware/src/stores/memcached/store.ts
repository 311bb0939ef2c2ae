/**
 * MemcachedStore: one memcached item per session, changed only by compare-and-swap.
 *
 * - Every write is one `gets` and one `cas` (an `add` for a new session): read the item,
 *   apply the change to it in memory (only the keys the request changed), and store it back
 *   only if nobody wrote it in between; on a conflict read again and retry, a bounded number
 *   of times. Increments are therefore exact across processes, and merge mode keeps every
 *   request's keys. In one process the writes to one session go one at a time, so CAS
 *   conflicts only arise between processes (a few contenders, not hundreds).
 * - No resurrection: `cas` never creates an item, so a write in flight when the session is
 *   deleted finds it gone. A destroy leaves a tombstone until the session's absolute deadline
 *   rather than deleting the item, so that a late or repeated *create* of that id (an `add`,
 *   which would succeed on a deleted key) is refused too.
 * - Expiry: the exact idle and absolute deadlines live in the item and are checked on every
 *   read; memcached's own TTL (whole seconds, see record.ts) only reclaims the memory.
 * - Lock mode: the lease and its fencing token live in the item, so the fence is checked by
 *   the same `cas` that writes. memcached cannot tell a waiter that a lock was released, so a
 *   waiter in another process retries with a bounded exponential back-off (5 ms doubling up
 *   to `lockBackoffMax`, never past the holder's lease); waiters in the releasing process are
 *   woken at once.
 * - Exactly once: the item keeps its recent write ids; a `cas` sent and not answered is
 *   outcome-unknown, and a retry under the same id finds it (or applies it) once.
 * - Log out everywhere: a generation token per owner (owners.ts); a session written under an
 *   older token is dead for reads and writes.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type Memcached from 'memcached'
import { outcomeUnknown, storeUnavailable, tetherError } from '../../errors.js'
import type { ApplyResult, LoadOptions, LockOptions, SessionChange, SessionLock, SessionStore, StoreCapabilities, StoredSession } from '../../store.js'
import { newId } from '../../id.js'
import { applyToFields, StoreLocks } from '../kit/index.js'
import type { LockAttempt } from '../kit/index.js'
import { MemcachedDriver, isMemcachedClient, mayHaveRun } from './driver.js'
import { decode, encode, exptime, RECENT_WRITES, TOMBSTONE } from './record.js'
import type { Found, MemcachedRecord } from './record.js'
import { decodeOwner, encodeOwner, enrolled, ownerKey } from './owners.js'

/**
 * Options of {@link MemcachedStore}: give `url`, `servers` or `client`.
 *
 * @example
 * ```ts
 * const options: MemcachedStoreOptions = { url: 'memcached://10.0.0.5:11211,10.0.0.6:11211', prefix: 'shop:sess:' }
 * ```
 */
export interface MemcachedStoreOptions {
  /** `memcached://host:port[,host:port…]`. Keys are spread over the servers by consistent hashing. */
  url?: string
  /** The same as a list: `['10.0.0.5:11211', '10.0.0.6:11211']`. */
  servers?: string | string[]
  /** A `memcached` client you own (the store does not close it). */
  client?: Memcached
  /** Key prefix. Default `tether:sess:`. No whitespace or control characters (memcached keys). */
  prefix?: string
  /** Per-command timeout (ms). Default 2000. */
  commandTimeout?: number
  /** Largest session item in bytes; match the server's `-I` (default 1 MiB). */
  maxValue?: number
  /** How many times a write re-reads and retries after a CAS conflict. Default 32. */
  casRetries?: number
  /** Longest pause (ms) between two tries of a lock held in another process. Default 100. */
  lockBackoffMax?: number
}

/** The result of one step of a compare-and-swap: store `value` (or nothing) and answer `result`. */
type Step<T> = { readonly result: T } | { readonly result: T, readonly value: string, readonly exptime: number }

const BACKEND = 'MemcachedStore'
/** Sessions whose owner item this process remembers, so a load fetches both in one trip. */
const OWNER_HINTS = 10_000
const GONE: ApplyResult = { ok: false, reason: 'gone' }

/**
 * A session store on memcached (one server or several).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { fastifySession } from '@tether/middleware'
 * import { MemcachedStore } from '@tether/middleware/memcached'
 * const app = Fastify()
 * app.register(fastifySession, { secret: process.env.SESSION_SECRET!, store: new MemcachedStore({ url: 'memcached://127.0.0.1:11211' }) })
 * ```
 */
export class MemcachedStore implements SessionStore {
  /**
   * A change's write id is applied at most once per session (see
   * {@link SessionStore.exactlyOnce}): the item keeps its recent write ids, written by the same
   * `cas` as the change.
   */
  readonly exactlyOnce = true
  /**
   * Log out everywhere, by a generation token per owner (see owners.ts): `destroyAll` replaces
   * the token and every session that recorded the old one is dead.
   */
  readonly capabilities: StoreCapabilities = { destroyAll: true }
  readonly #driver: MemcachedDriver
  /** Session id → its owner item's key, learnt from loads (bounded, oldest dropped first). */
  readonly #ownerHints = new Map<string, string>()
  readonly #prefix: string
  readonly #casRetries: number
  readonly #backoffMax: number
  readonly #locks: StoreLocks
  /** The tail of each session's in-process write queue. */
  readonly #tails = new Map<string, Promise<unknown>>()
  /** Consecutive tries that found a session's lock held: the back-off's exponent. */
  readonly #contended = new Map<string, number>()
  #closed = false

  constructor (options: MemcachedStoreOptions) {
    if (typeof options !== 'object' || options === null) throw invalid("MemcachedStore needs options: 'url', 'servers' or 'client'")
    const prefix = options.prefix ?? 'tether:sess:'
    // memcached keys end at whitespace and may not hold control characters.
    if (typeof prefix !== 'string' || prefix.length > 200 || [...prefix].some((ch) => /\s/.test(ch) || ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
      throw invalid(`MemcachedStore option 'prefix' must be a string of at most 200 characters without whitespace or control characters; got ${JSON.stringify(prefix)}`)
    }
    this.#prefix = prefix
    const commandTimeout = positive('commandTimeout', options.commandTimeout, 2000)
    this.#casRetries = positive('casRetries', options.casRetries, 32)
    this.#backoffMax = positive('lockBackoffMax', options.lockBackoffMax, 100)
    const maxValue = positive('maxValue', options.maxValue, 1_048_576)
    if (options.client !== undefined) {
      if (!isMemcachedClient(options.client)) throw invalid("MemcachedStore option 'client' must be a client of the 'memcached' package")
      this.#driver = new MemcachedDriver(options.client, commandTimeout)
    } else {
      this.#driver = new MemcachedDriver({ servers: serverList(options), commandTimeout, maxValue })
    }
    this.#locks = new StoreLocks({
      attempt: async (id, lease) => await this.#tryLock(id, lease),
      renew: async (id, token, lease) => await this.#mutate(id, Date.now(), (found) => {
        const now = Date.now()
        const r = found?.kind === 'live' ? found.record : undefined
        if (r === undefined || r.lockToken !== token || r.lockExpires <= now) return { result: false }
        return write({ ...r, lockExpires: now + lease }, now, true)
      }),
      release: async (id, token) => {
        if (this.#closed) return
        const freed = await this.#mutate(id, Date.now(), (found) => {
          const r = found?.kind === 'tombstone' || found === undefined ? undefined : found.record
          if (r === undefined || r.lockToken !== token) return { result: false }
          return write({ ...r, lockToken: null, lockExpires: 0 }, Date.now(), true)
        })
        // Waiters here are woken now; those in other processes find it free on their next try.
        if (freed) this.#locks.released(id)
      }
    })
  }

  /** The memcached key of a session's item. */
  key (id: string): string {
    return `${this.#prefix}${id}`
  }

  async load (id: string, options: LoadOptions): Promise<StoredSession | undefined> {
    this.#open()
    const { now } = options
    const key = this.key(id)
    // An owned session is alive only while its owner's token is the one it recorded. The
    // owner item comes in the same multi-get when this process has read the session before
    // (the hint); on a first read it costs one more get.
    const hint = this.#ownerHints.get(id)
    let value: string | undefined
    let ownerValue: string | undefined
    try {
      const got = await this.#driver.getMulti(hint === undefined ? [key] : [key, hint])
      value = got.get(key)
      if (hint !== undefined) ownerValue = got.get(hint)
    } catch (err) {
      throw storeUnavailable(BACKEND, err)
    }
    if (value === undefined) return undefined
    const found = decode(value, now, key)
    if (found.kind !== 'live') return undefined
    if (found.record.owner !== undefined) {
      const okey = ownerKey(this.#prefix, found.record.owner)
      if (okey !== hint) {
        this.#hint(id, okey)
        try {
          ownerValue = (await this.#driver.getMulti([okey])).get(okey)
        } catch (err) {
          throw storeUnavailable(BACKEND, err)
        }
      }
      if (ownerValue === undefined || decodeOwner(ownerValue, okey).token !== found.record.generation) return undefined
    } else if (hint !== undefined) {
      this.#ownerHints.delete(id)
    }
    const r = found.record
    let expiresAt = r.expiresAt
    let refreshed = false
    if (options.refreshBelow > 0 && r.expiresAt - now < options.refreshBelow && r.expiresAt < r.absoluteExpiry) {
      // Sent now, not waited for (as RedisStore does): the request costs one round trip. A
      // refresh that fails or loses a race only means the next read finds it still due.
      const target = Math.min(now + options.idleTimeout, r.absoluteExpiry)
      this.#mutate(id, now, (f) => f?.kind === 'live' && f.record.expiresAt < target ? write({ ...f.record, expiresAt: target }, now, true) : { result: true }).catch(() => {})
      expiresAt = target
      refreshed = true
    }
    return { fields: r.fields, createdAt: r.createdAt, absoluteExpiry: r.absoluteExpiry, expiresAt, version: r.version, refreshed }
  }

  async apply (id: string, change: SessionChange): Promise<ApplyResult> {
    const { now } = change
    return await this.#mutate(id, now, async (found): Promise<Step<ApplyResult>> => {
      const live = found?.kind === 'live' ? found.record : undefined
      // A repeat of a write this session has applied: its result, nothing stored.
      const seen = change.writeId === undefined ? undefined : live?.writes?.find((w) => w[0] === change.writeId)
      if (seen !== undefined) return { result: { ok: true, version: seen[1], counters: new Map(seen[2]) } }
      let base: MemcachedRecord
      if (change.create !== undefined) {
        if (live !== undefined || found?.kind === 'tombstone') return { result: { ok: false, reason: 'exists' } }
        // A dead item under this id is replaced; its token counter carries on, so fencing
        // tokens never repeat under one key.
        base = { fields: new Map(), createdAt: change.create.createdAt, absoluteExpiry: change.create.absoluteExpiry, expiresAt: 0, version: 0, lockSeq: found?.kind === 'dead' ? found.record.lockSeq : 0, lockToken: null, lockExpires: 0, writes: [] }
      } else if (live === undefined) {
        return { result: GONE }
      } else {
        base = live
      }
      if (change.fence !== undefined && !(live !== undefined && live.lockToken === change.fence && live.lockExpires > Date.now())) {
        return { result: { ok: false, reason: 'fenced' } }
      }
      const ttl = Math.min(change.ttl, base.absoluteExpiry - now)
      if (ttl <= 0) return { result: GONE }
      // Whole or not at all: a counter that is not an integer throws before anything is stored.
      const counters = applyToFields(base.fields, change)
      const next: MemcachedRecord = { ...base, version: base.version + 1, expiresAt: Math.min(now + ttl, base.absoluteExpiry) }
      if (change.owner === null) {
        delete next.owner
        delete next.generation
      } else if (change.owner !== undefined) {
        // Enrolled before the session is written: a destroyAll between the two ends it.
        next.owner = change.owner
        next.generation = await this.#enroll(change.owner, id, next.absoluteExpiry, now)
      }
      if (change.writeId !== undefined) next.writes = [...(base.writes ?? []), [change.writeId, next.version, [...counters]] as [string, number, Array<[string, number]>]].slice(-RECENT_WRITES)
      return write(next, now, { ok: true, version: next.version, counters })
    }, true)
  }

  async destroy (id: string): Promise<void> {
    const now = Date.now()
    const hadLock = await this.#mutate(id, now, (found) => {
      if (found === undefined || found.kind === 'tombstone') return { result: false }
      // The tombstone lasts as long as the session could have lived: past its absolute
      // deadline no writer can hold the id as a live session.
      return { result: found.record.lockToken !== null, value: TOMBSTONE, exptime: exptime(found.record.absoluteExpiry, now) }
    })
    // Waiters for its lock in this process learn now that there is nothing left to lock.
    if (hadLock) this.#locks.released(id)
  }

  /**
   * Log out everywhere: replace the owner's generation token (one `cas`), which ends every
   * session that recorded the old one. Resolves with how many of the sessions the owner item
   * lists were live under the old token (all of them, unless the owner had more than
   * OWNER_IDS sessions at once: then a floor).
   */
  async destroyAll (owner: string): Promise<number> {
    this.#open()
    const key = ownerKey(this.#prefix, owner)
    const now = Date.now()
    for (let attempt = 0; attempt <= this.#casRetries; attempt++) {
      let item
      let counted = 0
      try {
        item = await this.#driver.gets(key)
        if (item === undefined) return 0
        const current = decodeOwner(item.value, key)
        const sessions = current.ids.length === 0 ? new Map<string, string>() : await this.#driver.getMulti(current.ids.map((id) => this.key(id)))
        for (const [skey, value] of sessions) {
          const found = decode(value, now, skey)
          if (found.kind === 'live' && found.record.owner === owner && found.record.generation === current.token) counted++
        }
        const next = encodeOwner({ token: newId(), deadline: current.deadline, ids: [] })
        if (await this.#driver.cas(key, next, item.cas, exptime(current.deadline, now))) return counted
      } catch (err) {
        throw storeUnavailable(BACKEND, err)
      }
      await sleep(Math.random() * Math.min(20, 2 ** attempt))
    }
    throw tetherError('TETHER_ERR_STORE_CONFLICT', `session store (${BACKEND}): ${this.#casRetries} retries of a compare-and-swap on ${key} all met another writer; nothing was written`)
  }

  async touch (id: string, ttl: number, now: number): Promise<boolean> {
    return await this.#mutate(id, now, (found) => {
      if (found?.kind !== 'live') return { result: false }
      return write({ ...found.record, expiresAt: Math.min(now + ttl, found.record.absoluteExpiry) }, now, true)
    })
  }

  async lock (id: string, options: LockOptions): Promise<SessionLock | undefined> {
    this.#open()
    return await this.#locks.lock(id, options)
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#locks.close()
    // Writes already queued finish (or time out) before the connections go.
    await Promise.allSettled([...this.#tails.values()])
    this.#driver.close()
  }

  async #tryLock (id: string, lease: number): Promise<LockAttempt> {
    const found = await this.#mutate(id, Date.now(), (f): Step<LockAttempt> => {
      const now = Date.now()
      if (f?.kind !== 'live') return { result: 'missing' }
      const r = f.record
      if (r.lockToken !== null && r.lockExpires > now) return { result: { retryIn: r.lockExpires - now } }
      const token = r.lockSeq + 1
      return write({ ...r, lockSeq: token, lockToken: token, lockExpires: now + lease }, now, { token })
    })
    if (found === 'missing' || 'token' in found) {
      this.#contended.delete(id)
      return found
    }
    // Held elsewhere and nobody can announce its release: try again after 5, 10, 20 … ms (up
    // to lockBackoffMax, with jitter so processes do not retry in step), never past the lease.
    const n = Math.min((this.#contended.get(id) ?? 0) + 1, 20)
    this.#contended.set(id, n)
    const pause = Math.min(this.#backoffMax, 5 * 2 ** (n - 1)) * (0.5 + Math.random() / 2)
    return { retryIn: Math.max(1, Math.min(found.retryIn, Math.round(pause))) }
  }

  /**
   * The store's one write path: read the item, let `step` decide what to store, store it only
   * if unchanged (`cas`, or `add` when there was no item), retry on a conflict. Writes to one
   * session from this process run one at a time. With `exactlyOnce` (apply), a store command
   * that was sent and got no answer is `TETHER_ERR_STORE_OUTCOME_UNKNOWN`: memcached may have
   * stored it (a failed `gets` stored nothing and stays "unavailable").
   */
  async #mutate<T> (id: string, now: number, step: (found: Found | undefined) => Step<T> | Promise<Step<T>>, exactlyOnce = false): Promise<T> {
    this.#open()
    const key = this.key(id)
    const run = async (): Promise<T> => {
      for (let attempt = 0; attempt <= this.#casRetries; attempt++) {
        let stored: boolean
        let out: Step<T>
        let item
        try {
          item = await this.#driver.gets(key)
          out = await step(item === undefined ? undefined : await this.#valid(decode(item.value, now, key)))
        } catch (err) {
          // A TetherError (a counter that is not one, a corrupt item) passes through as it is.
          throw storeUnavailable(BACKEND, err)
        }
        if (!('value' in out)) return out.result
        try {
          stored = item === undefined
            ? await this.#driver.add(key, out.value, out.exptime)
            : await this.#driver.cas(key, out.value, item.cas, out.exptime)
        } catch (err) {
          throw exactlyOnce && mayHaveRun(err) ? outcomeUnknown(BACKEND, err) : storeUnavailable(BACKEND, err)
        }
        if (stored) return out.result
        // Another process wrote in between (or the item went): read again after a short
        // random pause, so contenders do not collide in step again.
        await sleep(Math.random() * Math.min(20, 2 ** attempt))
      }
      throw tetherError('TETHER_ERR_STORE_CONFLICT', `session store (${BACKEND}): ${this.#casRetries} retries of a compare-and-swap on ${key} all met another writer; nothing was written`)
    }
    const previous = this.#tails.get(id) ?? Promise.resolve()
    const result = previous.then(run, run)
    const tail = result.then(() => {}, () => {})
    this.#tails.set(id, tail)
    void tail.then(() => { if (this.#tails.get(id) === tail) this.#tails.delete(id) })
    return await result
  }

  /**
   * An owned session whose owner's token has changed was logged out everywhere: it is treated
   * as destroyed (refused to every writer, creates included), like a tombstone.
   */
  async #valid (found: Found): Promise<Found> {
    if (found.kind === 'tombstone' || found.record.owner === undefined) return found
    const key = ownerKey(this.#prefix, found.record.owner)
    const value = (await this.#driver.getMulti([key])).get(key)
    return value !== undefined && decodeOwner(value, key).token === found.record.generation ? found : { kind: 'tombstone' }
  }

  /**
   * Enrol session `id` under `owner` (creating the owner item with a fresh token when there is
   * none) and answer the owner's current token, which the session then records.
   */
  async #enroll (owner: string, id: string, deadline: number, now: number): Promise<string> {
    const key = ownerKey(this.#prefix, owner)
    this.#hint(id, key)
    for (let attempt = 0; attempt <= this.#casRetries; attempt++) {
      const item = await this.#driver.gets(key)
      if (item === undefined) {
        const token = newId()
        if (await this.#driver.add(key, encodeOwner({ token, deadline, ids: [id] }), exptime(deadline, now))) return token
      } else {
        const current = decodeOwner(item.value, key)
        const next = enrolled(current, id, deadline)
        if (next === undefined) return current.token
        if (await this.#driver.cas(key, encodeOwner(next), item.cas, exptime(next.deadline, now))) return current.token
      }
      await sleep(Math.random() * Math.min(20, 2 ** attempt))
    }
    throw tetherError('TETHER_ERR_STORE_CONFLICT', `session store (${BACKEND}): ${this.#casRetries} retries of a compare-and-swap on ${key} all met another writer; nothing was written`)
  }

  #hint (id: string, key: string): void {
    this.#ownerHints.delete(id)
    this.#ownerHints.set(id, key)
    if (this.#ownerHints.size > OWNER_HINTS) this.#ownerHints.delete(this.#ownerHints.keys().next().value!)
  }

  #open (): void {
    if (this.#closed) throw tetherError('TETHER_ERR_STORE_UNAVAILABLE', `session store (${BACKEND}) unavailable: the store is closed`)
  }
}

/** A step that stores `record` (its memcached TTL derived from its idle deadline). */
function write<T> (record: MemcachedRecord, now: number, result: T): Step<T> {
  return { result, value: encode(record), exptime: exptime(record.expiresAt, now) }
}

/** `host:port` of every server, from `url` or `servers`. */
function serverList (options: MemcachedStoreOptions): string[] {
  let list: string[]
  if (typeof options.url === 'string') {
    const m = /^memcached:\/\/([^/?#]+)\/?$/.exec(options.url)
    if (m === null) throw invalid(`MemcachedStore option 'url' must look like memcached://host:port[,host:port]; got ${JSON.stringify(options.url)}`)
    list = m[1]!.split(',')
  } else if (options.servers !== undefined) {
    list = typeof options.servers === 'string' ? [options.servers] : [...options.servers]
  } else {
    throw invalid("MemcachedStore needs 'url' (memcached://host:port), 'servers' or 'client'")
  }
  for (const s of list) {
    if (!/^[^\s:,]+:\d{1,5}$/.test(s)) throw invalid(`MemcachedStore: a server must be host:port; got ${JSON.stringify(s)}`)
  }
  if (list.length === 0) throw invalid('MemcachedStore needs at least one server')
  return list
}

function positive (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(`MemcachedStore option '${option}' must be a positive integer; got ${String(value)}`)
  }
  return value
}

function invalid (message: string): Error {
  return tetherError('TETHER_ERR_INVALID_OPTION', message)
}
