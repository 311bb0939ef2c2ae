/**
 * A session's fields as an in-memory map (key → JSON text), and how one change applies to it.
 * MemoryStore keeps its sessions this way, ConnectStore rebuilds one per write, and the
 * sticky near-cache and the core follow the store's writes with it: one rule for all of them.
 */
import { tetherError } from '../../errors.js'
import type { SessionChange } from '../../store.js'

/**
 * What one accepted write did to a session's fields: keys set (JSON text), keys deleted, and
 * the counters' new values.
 *
 * @example
 * ```ts
 * const delta: FieldDelta = { set: [['cart', '[1]']], del: ['flash'], counters: new Map([['visits', 3]]) }
 * ```
 */
export interface FieldDelta {
  readonly set: ReadonlyArray<readonly [key: string, json: string]>
  readonly del: readonly string[]
  readonly counters: ReadonlyMap<string, number>
}

/**
 * The integer a stored field holds, for an increment: 0 when the field is missing,
 * `TETHER_ERR_NOT_A_COUNTER` when it holds anything but an integer in the safe range.
 *
 * @example
 * ```ts
 * parseCounter('41', 'visits')     // 41
 * parseCounter(undefined, 'visits') // 0
 * parseCounter('"x"', 'visits')    // throws TETHER_ERR_NOT_A_COUNTER
 * ```
 */
export function parseCounter (json: string | undefined, key: string): number {
  if (json === undefined) return 0
  const n = Number(json)
  if (!/^-?\d+$/.test(json) || !Number.isSafeInteger(n)) throw tetherError('TETHER_ERR_NOT_A_COUNTER', `increment('${key}'): the stored value is not an integer`)
  return n
}

/**
 * Add up a change's increments against the stored values `current(key)` returns. Every
 * counter is checked before the caller writes anything, so a change applies whole or not at
 * all; a result outside the safe integer range is refused like a stored non-integer.
 *
 * @example
 * ```ts
 * const counters = addCounters([['visits', 1]], (key) => fields.get(key)) // Map { 'visits' => 42 }
 * ```
 */
export function addCounters (incr: SessionChange['incr'], current: (key: string) => string | undefined): Map<string, number> {
  const counters = new Map<string, number>()
  for (const [key, by] of incr) {
    const next = (counters.get(key) ?? parseCounter(current(key), key)) + by
    if (!Number.isSafeInteger(next)) throw tetherError('TETHER_ERR_NOT_A_COUNTER', `increment('${key}'): the result is not a safe integer`)
    counters.set(key, next)
  }
  return counters
}

/**
 * Write an accepted delta into a field map: sets, then deletes, then the counters' values.
 *
 * @example
 * ```ts
 * writeFields(entry.fields, { set: change.set, del: change.del, counters })
 * ```
 */
export function writeFields (fields: Map<string, string>, delta: FieldDelta): void {
  for (const [key, json] of delta.set) fields.set(key, json)
  for (const key of delta.del) fields.delete(key)
  for (const [key, value] of delta.counters) fields.set(key, String(value))
}

/**
 * Apply a change's set, del and incr to a field map, whole or not at all (a counter that is
 * not an integer throws before anything is written). Returns the counters' new values.
 *
 * @example
 * ```ts
 * const counters = applyToFields(entry.fields, change)
 * return { ok: true, version: ++entry.version, counters }
 * ```
 */
export function applyToFields (fields: Map<string, string>, change: Pick<SessionChange, 'set' | 'del' | 'incr'>): Map<string, number> {
  const counters = addCounters(change.incr, (key) => fields.get(key))
  writeFields(fields, { set: change.set, del: change.del, counters })
  return counters
}
