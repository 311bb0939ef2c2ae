/**
 * `@tether/middleware/redis`: sessions on Redis (standalone, Sentinel, Cluster). Needs the
 * optional peer dependency `@redis/client` (the default driver) or `ioredis`, loaded only when
 * the store creates a client from a URL.
 *
 * @example
 * ```ts
 * import { RedisStore } from '@tether/middleware/redis'
 * const store = new RedisStore({ url: 'redis://127.0.0.1:6379' })
 * ```
 * @packageDocumentation
 */
export { RedisStore } from './store.js'
export type { RedisStoreOptions } from './store.js'
export type { NodeRedisClient } from './node-redis.js'
export type { SentinelOptions } from './ioredis.js'
