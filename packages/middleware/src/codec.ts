/**
 * Encoding of session values: one JSON text per top-level key.
 *
 * Decoding goes through secure-json-parse with `__proto__` and `constructor.prototype` removed,
 * and top-level keys land in a null-prototype object, so nothing a store returns can reach a
 * prototype.
 */
import sjson from 'secure-json-parse'
import { tetherError } from './errors.js'

const parseOptions = { protoAction: 'remove', constructorAction: 'remove' } as const

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
 * decodeValue('cart', '{"items":[1],"__proto__":{"admin":true}}') // { items: [1] }
 * ```
 */
export function decodeValue (key: string, json: string): unknown {
  try {
    return sjson.parse(json, undefined, parseOptions)
  } catch (err) {
    throw tetherError('TETHER_ERR_STORE_CORRUPT', `session key '${key}' in the store is not valid JSON`, { cause: err })
  }
}
