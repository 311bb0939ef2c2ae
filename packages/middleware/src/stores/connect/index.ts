/**
 * `@tether/middleware/connect`: any express-session store (connect-redis, connect-pg-simple,
 * …) as a Tether store, with whole-object semantics.
 *
 * @example
 * ```ts
 * import { ConnectStore } from '@tether/middleware/connect'
 * const store = new ConnectStore(new ConnectRedis({ client }))
 * ```
 * @packageDocumentation
 */
export { ConnectStore } from './store.js'
export type { ConnectStoreOptions, ConnectCompatibleStore, ConnectRecord } from './store.js'
