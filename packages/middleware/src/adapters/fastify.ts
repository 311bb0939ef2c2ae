/**
 * The Fastify plugin: a thin mapping of Fastify's request lifecycle onto the session core.
 * onRequest loads, onSend saves (so the write completes before the response leaves),
 * onResponse/onRequestAbort release a lock the request may still hold.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SessionManager } from '../core/manager.js'
import { CACHE_HEADER, cacheReport } from '../core/cache-report.js'
import type { SessionAdmin } from '../core/manager.js'
import type { SessionOptions } from '../options.js'
import type { Session } from '../session/types.js'
import type { SessionState } from '../session/state.js'

/** Per-route session settings, under a route's `config.session`. */
export interface RouteSessionConfig {
  /** Run this route's session section under the per-session lock (lock mode). */
  lock?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Operations on all sessions: `destroyAllFor(user)` (log out everywhere). */
    sessions: SessionAdmin
  }
  interface FastifyRequest {
    /** The request's session: your SessionData keys plus save/regenerate/destroy/… */
    session: Session
  }
  interface FastifyContextConfig {
    /** Tether session settings for this route. */
    session?: RouteSessionConfig
  }
}

const kState = Symbol('tether.session.state')
type WithState = FastifyRequest & { [kState]?: SessionState }

/** Options of the Fastify plugin: the shared {@link SessionOptions}. */
export type FastifySessionOptions = SessionOptions

async function plugin (fastify: FastifyInstance, options: FastifySessionOptions): Promise<void> {
  const manager = new SessionManager(options)
  const lockByDefault = manager.options.mode === 'lock'

  const sessions: SessionAdmin = { destroyAllFor: async (owner) => await manager.destroyAllFor(owner) }
  fastify.decorate('sessions', sessions)
  fastify.decorateRequest('session', null as unknown as Session)
  fastify.decorateRequest(kState, undefined)

  fastify.addHook('onRequest', async (request: WithState, reply: FastifyReply) => {
    const lock = request.routeOptions.config?.session?.lock ?? lockByDefault
    const headers = request.headers
    const state = await manager.open({
      cookie: headers.cookie,
      secure: request.protocol === 'https',
      lock,
      log: request.log
    })
    request[kState] = state
    request.session = state.proxy
    const cache = cacheReport(state, headers['x-tether-route'])
    if (cache !== undefined) reply.header(CACHE_HEADER, cache)
  })

  fastify.addHook('onSend', async (request: WithState, reply: FastifyReply, payload: unknown) => {
    const state = request[kState]
    if (state === undefined || state.finished || manager.idle(state)) return payload
    const setCookie = await manager.finish(state)
    if (setCookie !== undefined) reply.header('set-cookie', setCookie)
    return payload
  })

  const release = async (request: WithState): Promise<void> => {
    const state = request[kState]
    if (state !== undefined) await manager.release(state)
  }
  fastify.addHook('onResponse', release)
  fastify.addHook('onRequestAbort', release)
  fastify.addHook('onClose', async () => { await manager.close() })
}

/**
 * The Fastify plugin. Register it once; every request gets `request.session`.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { fastifySession, RedisStore } from '@tether/middleware'
 *
 * declare module '@tether/middleware' { interface SessionData { visits: number } }
 *
 * const app = Fastify({ logger: true })
 * await app.register(fastifySession, {
 *   secret: process.env.SESSION_SECRET!,                 // ≥ 32 characters
 *   store: new RedisStore({ url: 'redis://127.0.0.1:6379' })
 * })
 * app.get('/', async (req) => ({ visits: req.session.increment('visits') }))
 * app.post('/checkout', { config: { session: { lock: true } } }, async (req) => { … })
 * ```
 */
export const fastifySession = fp(plugin, { fastify: '5.x', name: '@tether/middleware' })
