/**
 * The store kit: what every store in this package shares, so that a new store is mostly its
 * own I/O (docs/stores.md, "Writing a store").
 *
 * - fields: a change applied to an in-memory field map; `parseCounter` / `addCounters`, the one
 *   rule for what an increment accepts.
 * - locks: lock mode minus the backend's three steps (take, extend, drop), with waiting that
 *   never polls and a lease kept alive while held.
 * - keyed-mutex: a FIFO mutex per key, in process.
 * - peer: an optional client library, loaded on first use with a typed error when missing.
 *
 * @example
 * ```ts
 * import { applyToFields, requirePeer, StoreLocks } from '../kit/index.js'
 * ```
 */
export { addCounters, applyToFields, parseCounter, writeFields } from './fields.js'
export type { FieldDelta } from './fields.js'
export { KeyedMutex } from './keyed-mutex.js'
export { StoreLocks } from './locks.js'
export type { LockBackend } from './locks.js'
export type { LockAttempt } from './lock-waiters.js'
export { requirePeer } from './peer.js'
