/**
 * @tether/middleware: cluster-safe sessions for Fastify and Express.
 *
 * The root export re-exports every subpath, for compatibility. The subpaths load only what
 * they name: `@tether/middleware/fastify`, `/express`, `/memory`, `/redis`, `/sqlite`,
 * `/postgres`, `/mysql`, `/memcached`, `/connect`, `/errors`, `/store`. No entry point loads a client library on import; each
 * store loads its own when it first needs it.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { fastifySession, RedisStore } from '@tether/middleware'
 * const app = Fastify()
 * await app.register(fastifySession, { secret: process.env.SESSION_SECRET!, store: new RedisStore({ url: process.env.REDIS_URL! }) })
 * ```
 * @packageDocumentation
 */
export { fastifySession } from './adapters/fastify.js'
export type { FastifySessionOptions, RouteSessionConfig } from './adapters/fastify.js'
export { expressSession } from './adapters/express.js'
export type { ExpressSessionOptions, ExpressSessionMiddleware } from './adapters/express.js'
export { SessionManager } from './core/manager.js'
export type { OpenRequest, SessionAdmin } from './core/manager.js'
export { TetherError, errorCodes, tetherError, storeUnavailable, outcomeUnknown } from './errors.js'
export type { ErrorCode, ErrorDefinition } from './errors.js'
export type { SessionData, Session, SessionApi, SessionCallback, CounterKey } from './session/types.js'
export type { SessionCookie } from './session/cookie.js'
export type { SessionOptions, ConcurrencyMode, SessionLogger } from './options.js'
export type { SessionStore, StoredSession, SessionRecord, LoadOptions, SessionChange, ApplyResult, LockOptions, SessionLock, InvalidationChannel, InvalidationOptions, StoreCapabilities } from './store.js'
export { newId, isWellFormedId } from './id.js'
export { NearCache } from './near-cache.js'
export type { NearCacheOptions } from './near-cache.js'
export { StickyCache } from './sticky-cache.js'
export type { StickyCacheOptions, RouteHint, Route } from './sticky-cache.js'
export * from './stores/memory/index.js'
export * from './stores/redis/index.js'
export * from './stores/sqlite/index.js'
export * from './stores/postgres/index.js'
export * from './stores/mysql/index.js'
export * from './stores/memcached/index.js'
export * from './stores/connect/index.js'
