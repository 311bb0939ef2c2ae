/**
 * How MemcachedStore keeps one session in one memcached item, and how long memcached keeps
 * the item. Pure functions: no I/O here.
 *
 * The item is a JSON object holding the metadata, the lock lease and the fields as a list of
 * [key, JSON text] pairs (a list, not an object, so `__proto__` stays a plain key). A
 * destroyed session leaves a tombstone item instead, until its absolute deadline: see
 * store.ts for why.
 */
import { tetherError } from '../../errors.js'
import type { SessionRecord } from '../../store.js'

/** A session with its lock state, as one memcached item holds it. */
export interface MemcachedRecord extends SessionRecord {
  /** The last fencing token handed out (tokens only grow). */
  lockSeq: number
  /** The token of the current holder, or null. */
  lockToken: number | null
  /** When the holder's lease runs out (epoch ms). */
  lockExpires: number
  /**
   * The results of the session's recent writes by write id, oldest first (at most
   * {@link RECENT_WRITES}): a repeat of one is answered from here, not applied again. Kept in
   * the item, so the same `cas` that writes a change records its id.
   */
  writes?: Array<[writeId: string, version: number, counters: Array<[string, number]>]>
  /** The session's owner (the `owner` option), for log out everywhere: see owners.ts. */
  owner?: string
  /** The owner's generation token when the owner was written; another token means dead. */
  generation?: string
}

/** How many recent write ids a session remembers: far more than can be in flight for one session. */
export const RECENT_WRITES = 32

/** What a `gets` found under a session's key. */
export type Found =
  | { readonly kind: 'live', readonly record: MemcachedRecord }
  /** Held but past its idle or absolute deadline: a create may reuse the item. */
  | { readonly kind: 'dead', readonly record: MemcachedRecord }
  /** Destroyed: refused to every writer, creates included, until it expires. */
  | { readonly kind: 'tombstone' }

/** The value of a destroyed session's item. Not JSON, so it can never parse as a record. */
export const TOMBSTONE = 'tether:destroyed'

/** The format version; a later layout can read the old one by it. */
const FORMAT = 1

/**
 * The JSON text of a record.
 *
 * @example
 * ```ts
 * await driver.cas(key, encode(record), cas, exptime(record.expiresAt, now))
 * ```
 */
export function encode (r: MemcachedRecord): string {
  return JSON.stringify({ t: FORMAT, c: r.createdAt, a: r.absoluteExpiry, e: r.expiresAt, v: r.version, s: r.lockSeq, l: r.lockToken, x: r.lockExpires, f: [...r.fields], ...(r.writes === undefined || r.writes.length === 0 ? {} : { w: r.writes }), ...(r.owner === undefined ? {} : { o: r.owner, g: r.generation }) })
}

/**
 * Read an item's value back: a record (live or dead at `now`) or a tombstone. Throws
 * `TETHER_ERR_STORE_CORRUPT` for anything MemcachedStore did not write.
 *
 * @example
 * ```ts
 * const found = decode(item.value, Date.now(), key)
 * if (found.kind === 'live') use(found.record)
 * ```
 */
export function decode (value: string, now: number, key: string): Found {
  if (value === TOMBSTONE) return { kind: 'tombstone' }
  let o: { t?: unknown, c?: unknown, a?: unknown, e?: unknown, v?: unknown, s?: unknown, l?: unknown, x?: unknown, f?: unknown, w?: unknown, o?: unknown, g?: unknown }
  try {
    o = JSON.parse(value) as typeof o
  } catch (err) {
    throw tetherError('TETHER_ERR_STORE_CORRUPT', `memcached item ${key} is not JSON; it was not written by MemcachedStore`, { cause: err })
  }
  if (o === null || typeof o !== 'object' || o.t !== FORMAT || !isNum(o.c) || !isNum(o.a) || !isNum(o.e) || !isNum(o.v) || !isNum(o.s) || !isNum(o.x) || !(o.l === null || isNum(o.l)) || !Array.isArray(o.f)) {
    throw tetherError('TETHER_ERR_STORE_CORRUPT', `memcached item ${key} is not a session record written by MemcachedStore (format ${FORMAT})`)
  }
  const fields = new Map<string, string>()
  for (const pair of o.f as unknown[]) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw tetherError('TETHER_ERR_STORE_CORRUPT', `memcached item ${key} has a malformed field`)
    }
    fields.set(pair[0], pair[1])
  }
  const record: MemcachedRecord = { fields, createdAt: o.c, absoluteExpiry: o.a, expiresAt: o.e, version: o.v, lockSeq: o.s, lockToken: o.l as number | null, lockExpires: o.x }
  if (o.w !== undefined) {
    if (!Array.isArray(o.w) || !o.w.every(isWrite)) throw tetherError('TETHER_ERR_STORE_CORRUPT', `memcached item ${key} has a malformed write-id record`)
    record.writes = o.w
  }
  if (o.o !== undefined) {
    if (typeof o.o !== 'string' || typeof o.g !== 'string') throw tetherError('TETHER_ERR_STORE_CORRUPT', `memcached item ${key} has a malformed owner`)
    record.owner = o.o
    record.generation = o.g
  }
  return { kind: now < record.expiresAt && now < record.absoluteExpiry ? 'live' : 'dead', record }
}

/** memcached reads an exptime above 30 days (in seconds) as an absolute Unix time. */
const THIRTY_DAYS = 2_592_000

/**
 * The memcached exptime for an item that must outlive `deadline` (epoch ms). memcached counts
 * whole seconds on a clock that ticks once a second, so a relative TTL of n seconds can end up
 * to a second early: one second of slack keeps the item until the deadline. The store checks
 * the exact deadline itself on every read, so the slack never lets a session live longer.
 * Past 30 days memcached wants an absolute Unix time instead of a relative one.
 *
 * @example
 * ```ts
 * exptime(now + 1_500, now)          // 3 (seconds, relative)
 * exptime(now + 40 * 86_400_000, now) // an absolute Unix time, 40 days (and a second) away
 * ```
 */
export function exptime (deadline: number, now: number): number {
  const seconds = Math.max(1, Math.ceil((deadline - now) / 1000) + 1)
  return seconds <= THIRTY_DAYS ? seconds : Math.ceil(deadline / 1000) + 1
}

function isWrite (w: unknown): w is [string, number, Array<[string, number]>] {
  return Array.isArray(w) && typeof w[0] === 'string' && isNum(w[1]) && Array.isArray(w[2]) &&
    (w[2] as unknown[]).every((c) => Array.isArray(c) && typeof c[0] === 'string' && isNum(c[1]))
}

function isNum (v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}
