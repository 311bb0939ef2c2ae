/**
 * Session ids: 192 bits from `crypto.randomBytes`, base64url (32 characters).
 *
 * Random bytes are drawn from a pool refilled in 4 KiB batches: one `randomBytes` call per
 * ~170 sessions instead of one each, which matters on the hot path of cookieless requests.
 */
import { randomBytes } from 'node:crypto'

const ID_BYTES = 24
const POOL_SIZE = ID_BYTES * 170
let pool = randomBytes(POOL_SIZE)
let offset = 0

/** Length of every id this package issues. */
const ID_LENGTH = 32

const ID_PATTERN = /^[A-Za-z0-9_-]{32}$/

/**
 * Generate a fresh session id.
 *
 * @example
 * ```ts
 * newId() // 'mB6t0bq1Q2mJ0tqv3-7Gxw8mK2N4pZrS'
 * ```
 */
export function newId (): string {
  if (offset + ID_BYTES > pool.length) {
    pool = randomBytes(POOL_SIZE)
    offset = 0
  }
  const id = pool.toString('base64url', offset, offset + ID_BYTES)
  offset += ID_BYTES
  return id
}

/**
 * True when `value` has the exact shape of an id this package issues. Anything else (wrong
 * length, other alphabet) is never looked up in the store.
 *
 * @example
 * ```ts
 * isWellFormedId(newId()) // true
 * isWellFormedId('../../etc/passwd') // false
 * ```
 */
export function isWellFormedId (value: string): boolean {
  return value.length === ID_LENGTH && ID_PATTERN.test(value)
}
