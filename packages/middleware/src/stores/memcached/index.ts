/**
 * `@tether/middleware/memcached`: sessions on memcached, changed by compare-and-swap. Needs the
 * optional peer dependency `memcached`, loaded when a store is constructed.
 *
 * @example
 * ```ts
 * import { MemcachedStore } from '@tether/middleware/memcached'
 * const store = new MemcachedStore({ url: 'memcached://127.0.0.1:11211' })
 * ```
 * @packageDocumentation
 */
export { MemcachedStore } from './store.js'
export type { MemcachedStoreOptions } from './store.js'
