/**
 * The Express middleware (Express 4 and 5): a thin mapping of a Node request/response onto the
 * session core, as the Fastify plugin is for Fastify. The session loads before `next()`; the
 * save runs at the response's first output and completes before the headers leave (see
 * hold-output.ts); a failed load or save reaches Express's error handling through `next(err)`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { SessionManager } from '../core/manager.js'
import { CACHE_HEADER, cacheReport } from '../core/cache-report.js'
import type { SessionAdmin } from '../core/manager.js'
import { TetherError } from '../errors.js'
import type { SessionLogger, SessionOptions } from '../options.js'
import type { Session } from '../session/types.js'
import type { SessionStore } from '../store.js'
import type { SessionState } from '../session/state.js'
import { holdOutput } from './hold-output.js'
import type { OutputTask } from './hold-output.js'

declare global {
  // Express declares its Request in this global namespace; merging here types `req.session`
  // for Express 4 and 5 alike without importing Express's types.
  namespace Express {
    interface Request {
      /** The request's session: your SessionData keys plus save/regenerate/destroy/… */
      session: Session
      /** The session id, as express-session names it (same as `req.session.id`). */
      readonly sessionID: string
      /** The session store (express-session's name): to look up or destroy other sessions. */
      readonly sessionStore: SessionStore
    }
  }
}

/**
 * Options of the Express middleware: the shared {@link SessionOptions}, plus where to log.
 *
 * @example
 * ```ts
 * const options: ExpressSessionOptions = { secret: process.env.SESSION_SECRET!, store, logger: pino() }
 * ```
 */
export interface ExpressSessionOptions extends SessionOptions {
  /** Where the middleware logs (pino, console-like). Default: warnings and errors to the console. */
  logger?: SessionLogger
}

/**
 * The middleware `expressSession()` returns: use it with `app.use()`.
 *
 * @example
 * ```ts
 * const session = expressSession({ secret })
 * app.use(session)
 * process.on('SIGTERM', () => { void session.close() })
 * ```
 */
export interface ExpressSessionMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void
  /** Close the store if the middleware created it (the default MemoryStore); yours stay open. */
  close (): Promise<void>
  /** Operations on all sessions: `destroyAllFor(user)` (log out everywhere). */
  readonly sessions: SessionAdmin
}

type SessionRequest = IncomingMessage & { session: Session | undefined, sessionStore?: SessionStore, secure?: boolean }

// Headers describing a body that a failed save dropped; the error response brings its own.
const BODY_HEADERS = ['content-length', 'content-type', 'content-encoding', 'content-language', 'content-range', 'content-disposition', 'etag', 'last-modified', 'location', 'transfer-encoding']

// One shared descriptor: the getter reads the session through `this`, so no closure per
// request, and it follows regenerate() the way express-session's req.sessionID does.
const SESSION_ID: PropertyDescriptor = Object.freeze({
  configurable: true,
  enumerable: true,
  get (this: SessionRequest): string | undefined { return this.session?.id }
})

/** Saves the session when the response starts, and answers with the error if that fails. */
class SaveBeforeOutput implements OutputTask {
  readonly #manager: SessionManager
  readonly #state: SessionState
  readonly #next: (err?: unknown) => void

  constructor (manager: SessionManager, state: SessionState, next: (err?: unknown) => void) {
    this.#manager = manager
    this.#state = state
    this.#next = next
  }

  async beforeOutput (res: ServerResponse): Promise<void> {
    const setCookie = await this.#manager.finish(this.#state)
    if (setCookie === undefined || res.headersSent) return
    const existing = res.getHeader('set-cookie')
    if (existing === undefined) res.setHeader('set-cookie', setCookie)
    else res.setHeader('set-cookie', (Array.isArray(existing) ? existing : [String(existing)]).concat(setCookie))
  }

  failed (res: ServerResponse, err: unknown): void {
    if (!res.headersSent) {
      for (const name of BODY_HEADERS) res.removeHeader(name)
      // The status an error handler that does not set one (res.json(...)) should still send.
      res.statusCode = err instanceof TetherError ? err.statusCode : 500
    }
    // The handler's next() has run; calling it again with the error continues to the error
    // handlers after the route, as express-session does for a failed save.
    this.#next(err)
  }

  closed (_res: ServerResponse, busy: boolean): void {
    // An aborted request never reaches the save, which is what releases a lock otherwise; a save
    // still running releases it itself when its write lands.
    if (!busy) void this.#manager.release(this.#state)
  }
}

const consoleLogger: SessionLogger = {
  debug () {},
  info () {},
  warn (obj, msg) { console.warn(msg ?? 'tether', obj) },
  error (obj, msg) { console.error(msg ?? 'tether', obj) }
}

/**
 * The Express middleware (Express 4 and 5). Mount it before your routes; every request gets
 * `req.session` and `req.sessionID`. Same options, cookie format and semantics as the Fastify
 * plugin, so Express and Fastify nodes can share one store.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { expressSession, RedisStore } from '@tether/middleware'
 *
 * declare module '@tether/middleware' { interface SessionData { visits: number } }
 *
 * const app = express()
 * app.use(expressSession({
 *   secret: process.env.SESSION_SECRET!,                 // ≥ 32 characters; an array rotates
 *   store: new RedisStore({ url: 'redis://127.0.0.1:6379' })
 * }))
 * app.get('/', (req, res) => { res.json({ visits: req.session.increment('visits') }) })
 * app.post('/checkout', async (req, res) => {
 *   await req.session.lock()                             // this request alone, on every node
 *   res.json(await checkout(req.session))
 * })
 * ```
 */
export function expressSession (options: ExpressSessionOptions): ExpressSessionMiddleware {
  const manager = new SessionManager(options)
  const lock = manager.options.mode === 'lock'
  const log = options.logger ?? consoleLogger

  const middleware = (incoming: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    const req = incoming as SessionRequest
    // Mounted twice (an app and a sub-app): the first one owns the session. Every property
    // added to an Express request costs a hidden-class transition (Express swaps its
    // prototype), so the middleware adds only the three users see: session, sessionID and
    // sessionStore.
    if (req.session !== undefined) {
      next()
      return
    }
    // Express's req.secure follows its 'trust proxy' setting; outside Express, the socket says.
    const secure = req.secure ?? (req.socket as { encrypted?: boolean }).encrypted === true
    const headers = req.headers
    const opening = manager.open({ cookie: headers.cookie, secure, lock, log })
    opening.then((state) => {
      try {
        req.session = state.proxy
        Object.defineProperty(req, 'sessionID', SESSION_ID)
        req.sessionStore = manager.store
        const cache = cacheReport(state, headers['x-tether-route'])
        if (cache !== undefined && !res.headersSent) res.setHeader(CACHE_HEADER, cache)
        // A request that only reads plain values never needs its output held: the hooks go in
        // at the session's first write (or anything else that may need a save), if it comes
        // before the response starts.
        const hold = (): void => { if (!res.headersSent) holdOutput(res, new SaveBeforeOutput(manager, state, next)) }
        if (manager.idle(state)) state.whenDirty(hold)
        else hold()
      } catch (err) {
        // A throw here would become an unhandled rejection; Express should see it instead.
        void manager.release(state)
        next(err)
        return
      }
      next()
    }, next)
  }
  const sessions: SessionAdmin = { destroyAllFor: async (owner) => await manager.destroyAllFor(owner) }
  return Object.assign(middleware, { close: () => manager.close(), sessions })
}
