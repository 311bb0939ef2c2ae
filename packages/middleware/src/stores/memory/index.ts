/**
 * `@tether/middleware/memory`: the in-process store, the default for one process and tests.
 *
 * @example
 * ```ts
 * import { MemoryStore } from '@tether/middleware/memory'
 * const store = new MemoryStore({ maxEntries: 50_000 })
 * ```
 * @packageDocumentation
 */
export { MemoryStore } from './store.js'
export type { MemoryStoreOptions } from './store.js'
