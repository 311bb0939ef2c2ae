/**
 * The Express app the Express tests drive, built the same way for Express 4 and 5, in the test
 * process (listening on port 0) and in child processes (fixtures/express-node.ts).
 */
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type createExpress from 'express'
import express4 from 'express4'
import express5 from 'express'
import { expressSession } from '../../src/index.js'
import type { ExpressSessionOptions } from '../../src/index.js'

declare module '../../src/index.js' {
  interface SessionData {
    n: number
    user: string
    cart: { items: number[] }
    streamed: string
    redirected: string
    big: bigint
    a: number
    b: number
  }
}

export type ExpressFactory = typeof createExpress
export const flavours: ReadonlyArray<readonly [name: 'express4' | 'express5', factory: ExpressFactory]> = [['express4', express4], ['express5', express5]]
export const SECRET = 'express-test-secret-0123456789-abcdefghijklmnop'

type Data = Record<string, unknown>

// Express 4 does not forward a rejected promise to next(err); this does, for both versions.
const h = (fn: (req: Request, res: Response) => Promise<unknown>): RequestHandler => (req, res, next) => { fn(req, res).catch(next) }

/**
 * Build the app. `errorHandler: false` leaves errors to Express's default handler;
 * `trustProxy` sets Express's 'trust proxy'.
 */
export function buildApp (factory: ExpressFactory, options: Partial<ExpressSessionOptions> & { errorHandler?: boolean, trustProxy?: boolean } = {}) {
  const { errorHandler = true, trustProxy = false, ...sessionOptions } = options
  const app = factory()
  app.set('env', 'test') // the default error handler would print every error's stack otherwise
  app.set('trust proxy', trustProxy)
  const session = expressSession({ secret: SECRET, ...sessionOptions })
  app.use(session)
  const data = (req: Request): Data => req.session as unknown as Data

  app.get('/health', (_req, res) => { res.send('ok') })
  app.get('/noop', (_req, res) => { res.send('no session access') })
  app.get('/get', (req, res) => {
    const key = String(req.query.k)
    res.json({ value: data(req)[key] ?? null, id: req.sessionID, isNew: req.session.isNew })
  })
  app.post('/set', (req, res) => {
    data(req)[String(req.query.k)] = JSON.parse(String(req.query.v)) as unknown
    res.json({ id: req.sessionID })
  })
  app.post('/set-with-cookie', (req, res) => {
    res.cookie('theme', 'dark')
    req.session.user = 'with-cookie'
    res.json({ ok: true })
  })
  app.post('/cart/push', (req, res) => {
    req.session.cart ??= { items: [] }
    req.session.cart.items.push(Number(req.query.item))
    res.json(req.session.cart)
  })
  app.post('/login', h(async (req, res) => {
    const before = req.sessionID
    await req.session.regenerate()
    req.session.user = String(req.query.user)
    res.json({ before, after: req.sessionID })
  }))
  app.post('/logout', h(async (req, res) => {
    await req.session.destroy()
    res.json({ ok: true })
  }))
  app.post('/save-reload', h(async (req, res) => {
    req.session.a = 1
    await req.session.save()
    req.session.b = 2
    await req.session.reload()
    res.json({ a: req.session.a ?? null, b: req.session.b ?? null })
  }))
  app.post('/touch', h(async (req, res) => {
    await req.session.touch()
    res.json({ ok: true })
  }))
  app.post('/incr', (req, res) => { res.json({ n: req.session.increment('n') }) })
  // Read-modify-write, safe only under the per-session lock.
  app.post('/rmw', h(async (req, res) => {
    if (req.query.lock === '1') await req.session.lock()
    const n = req.session.n ?? 0
    await sleep(5)
    req.session.n = n + 1
    res.json({ n: req.session.n })
  }))
  // Written in chunks with pauses: the headers (and the cookie) must wait for the save.
  app.get('/stream', h(async (req, res) => {
    req.session.streamed = 'yes'
    res.type('text/plain')
    for (let i = 0; i < 5; i++) {
      if (!res.write(`chunk${i};`)) await new Promise((resolve) => res.once('drain', resolve))
      await sleep(5)
    }
    res.end('end')
  }))
  // A large stream piped into the response: backpressure must hold across the save.
  app.get('/pipe', (req, res) => {
    req.session.streamed = 'piped'
    res.type('application/octet-stream')
    let i = 0
    const total = Number(req.query.chunks ?? 256)
    Readable.from((function * () { while (i < total) yield Buffer.alloc(16_384, i++ % 256) })()).pipe(res)
  })
  app.post('/redirect', (req, res) => {
    req.session.redirected = 'yes'
    res.redirect('/get?k=redirected')
  })
  app.post('/bigint', (req, res) => {
    req.session.big = 10n
    res.status(201).json({ stored: 'hopefully' })
  })
  app.post('/bigint-stream', (req, res) => {
    req.session.big = 10n
    res.write('partial ')
    res.write('output')
    res.end()
  })
  // Never answers: only the client's abort ends it (and must release a held lock).
  app.post('/hang', (req, _res) => { data(req).touched = true })
  // flushHeaders() sends headers through writeHead(): they must still wait for the save.
  app.post('/flush', h(async (req, res) => {
    req.session.streamed = 'flushed'
    res.flushHeaders()
    await sleep(20)
    res.end('done')
  }))
  // A sub-app runs with its own request/response prototypes and mounts the middleware again.
  const sub = factory()
  sub.use(session)
  sub.post('/set', (req, res) => {
    data(req)[String(req.query.k)] = JSON.parse(String(req.query.v)) as unknown
    res.json({ id: req.sessionID })
  })
  app.use('/sub', sub)

  if (errorHandler) {
    app.use((err: Error & { code?: string, statusCode?: number }, _req: Request, res: Response, _next: NextFunction) => {
      res.status(err.statusCode ?? 500).json({ code: err.code ?? null, message: err.message })
    })
  }
  return { app, session }
}

/** Listen on an ephemeral loopback port; resolves with the base URL and the server. */
export async function listen (app: ReturnType<typeof buildApp>['app']): Promise<{ url: string, server: Server }> {
  return await new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server })
    })
    server.once('error', reject)
  })
}
