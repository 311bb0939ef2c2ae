/**
 * The counter-app: a Fastify app whose session counts visits. Every visit increments the
 * counter with `increment()`, so concurrent reloads stay exact on any node, and records which
 * nodes served the session.
 */
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { fastifySession } from '@tether/middleware'
import type { SessionStore } from '@tether/middleware'
import { answerStoreOutcome } from './outcomes.js'
import { renderPage } from './page.js'
import type { VisitFacts } from './page.js'

declare module '@tether/middleware' {
  interface SessionData {
    /** Visits in this session. */
    count: number
    /** Nodes that served this session, in order of first visit. */
    nodes: string[]
  }
}

/** The largest body `POST /api/upload` takes (bytes); a larger one is 413. */
const UPLOAD_LIMIT = 4 * 1024 * 1024

/**
 * What {@link buildApp} needs.
 *
 * @example
 * ```ts
 * const options: CounterAppOptions = { store: new MemoryStore(), storeName: 'memory:', nodeName: 'node1', secret: process.env.SESSION_SECRET!, trustProxy: ['127.0.0.1'] }
 * ```
 */
export interface CounterAppOptions {
  readonly store: SessionStore
  /** Shown on the page as the store in use (no credentials). */
  readonly storeName: string
  readonly nodeName: string
  /** Cookie signing secret (≥ 32 characters); the same on every node of a cluster. */
  readonly secret: string
  readonly trustProxy: readonly string[]
  readonly logLevel?: string
  /** True once the process is stopping: `/health` then answers 503, so balancers take the node out. */
  readonly stopping?: () => boolean
}

/**
 * Build the app (not listening yet). Closing it closes the store.
 *
 * @example
 * ```ts
 * const app = await buildApp({ store: openStore('memory:'), storeName: 'memory:', nodeName: 'node1', secret, trustProxy: ['127.0.0.1'] })
 * await app.listen({ port: 3001, host: '127.0.0.1' })
 * ```
 */
export async function buildApp (options: CounterAppOptions): Promise<FastifyInstance> {
  // Trusting only the balancer's address makes secure: 'auto' follow its X-Forwarded-Proto,
  // while a client reaching a node directly cannot claim HTTPS.
  const app = Fastify({ logger: { level: options.logLevel ?? 'info' }, trustProxy: [...options.trustProxy] })
  await app.register(fastifySession, {
    secret: options.secret,
    store: options.store,
    cookie: { secure: 'auto', sameSite: 'lax' },
    // The near-cache: reads of a cached session cost no store round trip on any node, and the
    // store (Redis CLIENT TRACKING) drops a copy whenever anything changes it. Only stores with
    // an invalidation channel can run it; SQLite (the `npm start` default) reads the store.
    ...(options.trustProxy.length > 0 && typeof options.store.invalidations === 'function' ? { nearCache: true } : {})
  })
  app.addHook('onClose', async () => { await options.store.close?.() })
  // Session gone, store down, outcome unknown: each its own page or JSON and status.
  app.setErrorHandler(answerStoreOutcome)

  const visit = async (req: FastifyRequest): Promise<VisitFacts> => {
    req.session.increment('count')
    const nodes = req.session.nodes ?? []
    // Written only on a node's first visit: merge mode sends just this key, and only then.
    if (!nodes.includes(options.nodeName)) req.session.nodes = [...nodes, options.nodeName]
    // Saving now, not when the reply is sent, makes the shown count the store's exact result
    // even when other reloads of this session run at the same time.
    await req.session.save()
    return facts(req)
  }

  const facts = (req: FastifyRequest): VisitFacts => {
    const address = app.server.address()
    const route = req.headers['x-tether-route']
    return {
      count: req.session.count ?? 0,
      node: { name: options.nodeName, port: typeof address === 'object' && address !== null ? address.port : 0, pid: process.pid },
      session: req.session.isNew ? '' : req.session.id.slice(0, 8),
      nodes: req.session.nodes ?? [],
      moved: req.headers['x-tether-moved'] === '1',
      route: typeof route === 'string' ? route : null,
      store: options.storeName
    }
  }

  app.get('/', async (req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(renderPage(await visit(req))))
  app.get('/api/visit', async (_req, reply) => { reply.header('cache-control', 'no-store'); return await visit(_req) })
  app.post('/api/visit', async (req) => await visit(req))
  app.get('/api/state', async (req, reply) => { reply.header('cache-control', 'no-store'); return facts(req) })
  // An upload (any bytes, up to UPLOAD_LIMIT) counts as one visit, written once the whole body
  // has arrived: the chaos suite sends slow uploads to a node that is draining.
  await app.register(async (scope) => {
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: UPLOAD_LIMIT }, (_req, body, done) => { done(null, body) })
    scope.post('/api/upload', { bodyLimit: UPLOAD_LIMIT }, async (req) => {
      const bytes = Buffer.isBuffer(req.body) ? req.body.length : 0
      return { ...(await visit(req)), bytes }
    })
  })
  app.post('/reset', async (req, reply) => {
    await req.session.destroy()
    return reply.redirect('/', 303)
  })
  app.get('/health', async (_req, reply) => {
    if (options.stopping?.() === true) return await reply.code(503).send({ status: 'stopping', node: options.nodeName, pid: process.pid })
    return { status: 'ok', node: options.nodeName, pid: process.pid }
  })
  return app
}

/**
 * A random secret for a node started without SESSION_SECRET: fine for one process, useless
 * for a cluster (each node would reject the others' cookies).
 *
 * @example
 * ```ts
 * const secret = process.env.SESSION_SECRET ?? randomSecret()
 * ```
 */
export function randomSecret (): string {
  return randomBytes(32).toString('base64url')
}
