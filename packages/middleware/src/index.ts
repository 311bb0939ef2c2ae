/**
 * @tether/middleware: cluster-safe sessions for Fastify and Express.
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
export { SessionManager } from './core.js'
export type { OpenRequest } from './core.js'
export { TetherError, errorCodes, tetherError, storeUnavailable } from './errors.js'
export type { ErrorCode } from './errors.js'
export { MemoryStore } from './stores/memory/store.js'
export type { MemoryStoreOptions } from './stores/memory/store.js'
export { RedisStore } from './stores/redis/store.js'
export type { RedisStoreOptions } from './stores/redis/store.js'
export { SqliteStore } from './stores/sqlite/store.js'
export type { SqliteStoreOptions } from './stores/sqlite/store.js'
export type { SessionData, Session, SessionApi, CounterKey } from './session.js'
export type { SessionOptions, ConcurrencyMode, SessionLogger } from './options.js'
export type { SessionStore, StoredSession, SessionRecord, LoadOptions, SessionChange, ApplyResult, LockOptions, SessionLock } from './store.js'
export { newId, isWellFormedId } from './id.js'
export { expressSession } from './adapters/express.js'
export type { ExpressSessionOptions, ExpressSessionMiddleware } from './adapters/express.js'
export { ConnectStore } from './stores/connect/store.js'
export type { ConnectStoreOptions, ConnectCompatibleStore, ConnectRecord } from './stores/connect/store.js'
export { StickyCache } from './sticky-cache.js'
export type { StickyCacheOptions, Route } from './sticky-cache.js'
export type { NodeRedisClient } from './stores/redis/node-redis.js'
