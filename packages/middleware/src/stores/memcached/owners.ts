/**
 * Log out everywhere on memcached: a generation per owner. memcached has no sets and no
 * scripts, so MemcachedStore keeps no index it would have to update with every session.
 * Instead each owner has one item holding a random generation token; a session written with an
 * owner records the owner and the token it saw. `destroyAll` replaces the token: every
 * session that recorded the old one is dead from then on, for reads and writes alike, wherever
 * it is and however late a request in flight arrives. An owner item that memcached evicts or
 * expires takes its token with it, which ends the owner's sessions too: the safe direction
 * (a logout, never a resurrection).
 *
 * The owner item also lists the ids of the owner's recent sessions (at most
 * {@link OWNER_IDS}), so that `destroyAll` can say how many live sessions it ended. Pure
 * functions and the item layout: no I/O here.
 */
import { createHash } from 'node:crypto'
import { tetherError } from '../../errors.js'

/** An owner item: the current generation token, how long it must live, recent session ids. */
export interface OwnerRecord {
  /** The generation token; a session that recorded another one is dead. */
  readonly token: string
  /** The latest absolute deadline of a session enrolled under it (epoch ms): the item's TTL. */
  readonly deadline: number
  /** Ids of the owner's most recent sessions, oldest first, for the count destroyAll returns. */
  readonly ids: readonly string[]
}

/** How many session ids an owner item lists; past it the count destroyAll returns is a floor. */
export const OWNER_IDS = 64

/**
 * The memcached key of an owner's item. The owner is hashed: memcached keys cannot hold
 * whitespace or control characters and are at most 250 bytes, and an owner is any string.
 *
 * @example
 * ```ts
 * ownerKey('tether:sess:', 'user-42') // 'tether:sess:owner:3q2+7w…'
 * ```
 */
export function ownerKey (prefix: string, owner: string): string {
  return `${prefix}owner:${createHash('sha256').update(owner).digest('base64url')}`
}

/**
 * The JSON text of an owner item.
 *
 * @example
 * ```ts
 * await driver.add(key, encodeOwner({ token, deadline, ids: [id] }), exptime(deadline, now))
 * ```
 */
export function encodeOwner (r: OwnerRecord): string {
  return JSON.stringify({ o: 1, g: r.token, d: r.deadline, i: r.ids })
}

/**
 * An owner item's value back. Throws `TETHER_ERR_STORE_CORRUPT` for anything else.
 *
 * @example
 * ```ts
 * const { token } = decodeOwner(value, key)
 * ```
 */
export function decodeOwner (value: string, key: string): OwnerRecord {
  let o: { o?: unknown, g?: unknown, d?: unknown, i?: unknown }
  try {
    o = JSON.parse(value) as typeof o
  } catch (err) {
    throw tetherError('TETHER_ERR_STORE_CORRUPT', `memcached item ${key} is not JSON; it was not written by MemcachedStore`, { cause: err })
  }
  if (o === null || typeof o !== 'object' || o.o !== 1 || typeof o.g !== 'string' || typeof o.d !== 'number' || !Array.isArray(o.i) || !o.i.every((x) => typeof x === 'string')) {
    throw tetherError('TETHER_ERR_STORE_CORRUPT', `memcached item ${key} is not an owner record written by MemcachedStore`)
  }
  return { token: o.g, deadline: o.d, ids: o.i as string[] }
}

/**
 * The owner item after enrolling session `id` (deadline `deadline`) under it, or undefined when
 * it already lists the id and lives long enough (nothing to write).
 *
 * @example
 * ```ts
 * const next = enrolled(current, id, absoluteExpiry)
 * if (next !== undefined) await driver.cas(key, encodeOwner(next), cas, exptime(next.deadline, now))
 * ```
 */
export function enrolled (r: OwnerRecord, id: string, deadline: number): OwnerRecord | undefined {
  if (r.ids.includes(id) && r.deadline >= deadline) return undefined
  const ids = [...r.ids.filter((x) => x !== id), id].slice(-OWNER_IDS)
  return { token: r.token, deadline: Math.max(r.deadline, deadline), ids }
}
