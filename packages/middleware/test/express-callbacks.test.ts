// express-session's callback API on the session methods, through real HTTP on Express 4 and 5:
// each callback runs exactly once (with the error, typed, when the store fails), the Promise
// form is unchanged, regenerate(cb) starts an empty session, req.sessionStore is the store, and
// a store failure inside Passport's login reaches Express's error handler with its code.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Server } from 'node:http'
import type { NextFunction, Request, Response } from 'express'
import { MemoryStore, TetherError } from '../src/index.js'
import { flavours, listen } from './helpers/express-app.js'
import { buildCompatApp } from './helpers/compat-express.js'
import { CookieClient } from './helpers/compat-client.js'
import { expressSession } from '../src/index.js'

/** A MemoryStore whose next `destroy`/`apply`/`load`/`touch` can be made to fail on cue. */
class FailingStore extends MemoryStore {
  failing = new Set<string>()
  #fail (op: string): void {
    if (this.failing.has(op)) throw new Error(`${op} failed on purpose`)
  }

  override async destroy (id: string) { this.#fail('destroy'); await super.destroy(id) }
  override async apply (...args: Parameters<MemoryStore['apply']>) { this.#fail('apply'); return await super.apply(...args) }
  override async load (...args: Parameters<MemoryStore['load']>) { this.#fail('load'); return await super.load(...args) }
  override async touch (...args: Parameters<MemoryStore['touch']>) { this.#fail('touch'); return await super.touch(...args) }
}

type Outcome = { calls: number, err: { code: string | null, status: number | null } | null, returned: string }

/** Call `method(cb)` and report how often cb ran, with what, and what the call returned. */
async function viaCallback (call: (cb: (err?: unknown) => void) => unknown): Promise<Outcome> {
  let calls = 0
  let error: unknown
  let finished!: () => void
  const done = new Promise<void>((resolve) => { finished = resolve })
  const returned = call((err) => { calls++; error = err; finished() })
  await done
  await sleep(20) // a second call would land by now
  const err = error instanceof TetherError ? { code: error.code, status: error.statusCode } : error === undefined ? null : { code: null, status: null }
  return { calls, err, returned: typeof returned }
}

for (const [flavour, factory] of flavours) {
  t.test(flavour, async (t) => {
    const store = new FailingStore()
    t.teardown(() => store.close())
    const app = factory()
    app.set('env', 'test')
    app.use(expressSession({ secret: 'callbacks-test-secret-0123456789-abcdefghij', store }))
    const wrap = (fn: (req: Request) => Promise<unknown>) => (req: Request, res: Response, next: NextFunction) => { fn(req).then((body) => res.json(body), next) }
    app.post('/seed', (req, res) => { req.session.user = 'ada'; req.session.n = 1; res.json({ id: req.sessionID }) })
    app.post('/callbacks', wrap(async (req) => {
      const fail = String(req.query.fail ?? '')
      if (fail !== '') store.failing.add(fail)
      try {
        const before = req.sessionID
        req.session.n = 2
        const save = await viaCallback((cb) => req.session.save(cb))
        req.session.n = 3
        const reload = await viaCallback((cb) => req.session.reload(cb))
        const afterReload = req.session.n ?? null
        const touch = await viaCallback((cb) => req.session.touch(cb))
        const regenerate = await viaCallback((cb) => req.session.regenerate(cb))
        const afterRegenerate = { user: req.session.user ?? null, changed: req.sessionID !== before }
        return { save, reload, afterReload, touch, regenerate, afterRegenerate, store: req.sessionStore === store }
      } finally { store.failing.clear() }
    }))
    app.post('/destroy-cb', wrap(async (req) => ({ destroy: await viaCallback((cb) => req.session.destroy(cb)) })))
    app.post('/promises', wrap(async (req) => {
      const returned = req.session.save()
      const isPromise = returned instanceof Promise
      await returned
      await req.session.regenerate()
      return { isPromise, keptByDefault: req.session.user ?? null }
    }))
    app.use((err: TetherError, _req: Request, res: Response, _next: NextFunction) => { res.status(err.statusCode ?? 500).json({ code: err.code ?? null }) })
    const { url, server } = await listen(app)
    t.teardown(() => close(server))

    await t.test('each callback runs once, nothing is returned, the semantics are express-session\'s', async (t) => {
      const c = new CookieClient(url)
      await c.post('/seed')
      const r = (await c.post('/callbacks')).json()
      const once = { calls: 1, err: null, returned: 'undefined' }
      t.same(r, {
        save: once,
        reload: once,
        afterReload: 2,
        touch: once,
        regenerate: once,
        afterRegenerate: { user: null, changed: true },
        store: true
      }, 'save(cb), reload(cb) (dropped the unsaved 3), touch(cb), regenerate(cb) (empty), req.sessionStore')
      const destroyed = (await c.post('/destroy-cb')).json()
      t.same(destroyed, { destroy: once })
    })

    await t.test('without a callback: the Promise, and regenerate() keeps the data', async (t) => {
      const c = new CookieClient(url)
      await c.post('/seed')
      t.same((await c.post('/promises')).json(), { isPromise: true, keptByDefault: 'ada' })
    })

    await t.test('a failing store reaches each callback once, with its typed code', async (t) => {
      for (const op of ['apply', 'load', 'touch', 'destroy']) {
        const c = new CookieClient(url)
        await c.post('/seed')
        const r = (await c.post(`/callbacks?fail=${op}`)).json<Record<string, Outcome>>()
        // A write that was sent and got no answer may have been applied: its own code.
        const code = op === 'apply' ? 'TETHER_ERR_STORE_OUTCOME_UNKNOWN' : 'TETHER_ERR_STORE_UNAVAILABLE'
        const failed = { calls: 1, err: { code, status: 503 }, returned: 'undefined' }
        const which = { apply: 'save', load: 'reload', touch: 'touch', destroy: 'regenerate' }[op]!
        t.same(r[which], failed, `${op} fails: ${which}(cb) gets the error once`)
      }
    })

    await t.test('a store failure during Passport\'s login reaches the error handler, typed; nothing hangs', async (t) => {
      const { app } = buildCompatApp(factory, store)
      const { url, server } = await listen(app)
      t.teardown(() => close(server))
      const c = new CookieClient(url)
      await c.post('/flash', { form: { message: 'hi' } })
      store.failing.add('destroy') // regenerate destroys the pre-login session
      const login = await c.post('/login', { form: { username: 'ada', password: 'lovelace' } })
      store.failing.clear()
      t.same({ status: login.status, body: login.json() }, { status: 503, body: { code: 'TETHER_ERR_STORE_UNAVAILABLE', message: login.json().message } })
      const retry = await c.post('/login', { form: { username: 'ada', password: 'lovelace' } })
      t.equal(retry.status, 200, 'the next attempt logs in')
    })
  })
}

async function close (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}
