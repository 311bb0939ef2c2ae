/**
 * Encoding of session values: one JSON text per top-level key.
 *
 * Session data is plain data, and `__proto__`, `constructor` and `prototype` are ordinary keys
 * at every level, the same way on the way in and on the way out: encoding is `JSON.stringify`
 * (an own `__proto__` property is written like any other), decoding is `JSON.parse` (which
 * defines every key as an own data property and never calls a setter, so a stored
 * `"__proto__"` comes back as an own key, not as a prototype). A value therefore reads back
 * exactly as it was written. Top-level keys live in a null-prototype object behind the
 * session proxy, and `toJSON()` copies them with `defineProperty`, never by assignment.
 */
import { tetherError } from './errors.js'

/**
 * Encode one top-level value. `undefined` means "delete the key"; values JSON cannot hold
 * faithfully (circular structures, BigInt, functions, symbols) are refused with a clear error,
 * never silently dropped.
 *
 * @example
 * ```ts
 * encodeValue('cart', { items: [1] }) // '{"items":[1]}'
 * ```
 */
export function encodeValue (key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  const kind = typeof value
  if (kind === 'function' || kind === 'symbol' || kind === 'bigint') {
    throw tetherError('TETHER_ERR_SESSION_UNSERIALIZABLE', `session key '${key}' holds a ${kind}, which cannot be stored as JSON`)
  }
  try {
    return JSON.stringify(value)
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw tetherError('TETHER_ERR_SESSION_UNSERIALIZABLE', `session key '${key}' cannot be serialised: ${reason}`, { cause: err })
  }
}

/**
 * Decode one stored value.
 *
 * @example
 * ```ts
 * const cart = decodeValue('cart', '{"items":[1],"__proto__":{"admin":true}}') as Record<string, unknown>
 * Object.getPrototypeOf(cart) === Object.prototype // true: "__proto__" is an own key of cart
 * Object.hasOwn(cart, '__proto__')                 // true
 * ```
 */
export function decodeValue (key: string, json: string): unknown {
  try {
    return JSON.parse(json) as unknown
  } catch (err) {
    throw tetherError('TETHER_ERR_STORE_CORRUPT', `session key '${key}' in the store is not valid JSON`, { cause: err })
  }
}
