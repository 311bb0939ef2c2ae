// Log out everywhere (issue 14): the `owner` option names the session key that identifies the
// user, stores index sessions by it as they are written, and `destroyAllFor(user)` ends all of
// them. Fastify exposes it as `app.sessions`, Express as `middleware.sessions`: the same
// SessionAdmin. A store without the capability is refused at start-up with a typed code.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { expressSession, MemoryStore, SessionManager } from '../src/index.js'
import type { SessionStore } from '../src/index.js'
import { makeApp, SECRET, sessionCookie } from './helpers/fastify-app.js'

t.test('Fastify: destroyAllFor ends every session of one user and no other', async (t) => {
  const store = new MemoryStore()
  const app = await makeApp(t, { store, owner: 'user' })
  app.post('/login', async (req) => { req.session.user = (req.query as { u: string }).u; return 'ok' })
  app.get('/me', async (req) => ({ user: req.session.user ?? null }))
  const login = async (u: string): Promise<string> => sessionCookie(await app.inject({ method: 'POST', url: `/login?u=${u}` }))!
  const ada = [await login('ada'), await login('ada'), await login('ada')]
  const bob = await login('bob')
  t.equal(await app.sessions.destroyAllFor('ada'), 3, 'three sessions ended')
  for (const cookie of ada) t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: null }, 'logged out')
  t.same((await app.inject({ url: '/me', headers: { cookie: bob } })).json(), { user: 'bob' }, 'another user untouched')
  t.equal(await app.sessions.destroyAllFor('ada'), 0)
})

t.test('Express: the same API on the middleware', async (t) => {
  const session = expressSession({ secret: SECRET, store: new MemoryStore(), owner: 'user' })
  const app = express()
  app.use(session)
  app.post('/login', (req, res) => { req.session!.user = String(req.query.u); res.send('ok') })
  app.get('/me', (req, res) => { res.json({ user: req.session!.user ?? null }) })
  const server = http.createServer(app).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  t.teardown(() => { server.close() })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const login = async (u: string): Promise<string> => (await fetch(`${base}/login?u=${u}`, { method: 'POST' })).headers.get('set-cookie')!.split(';')[0]!
  const cookies = [await login('ada'), await login('ada')]
  const other = await login('bob')
  t.equal(await session.sessions.destroyAllFor('ada'), 2)
  for (const cookie of cookies) t.same(await (await fetch(`${base}/me`, { headers: { cookie } })).json(), { user: null })
  t.same(await (await fetch(`${base}/me`, { headers: { cookie: other } })).json(), { user: 'bob' })
})

t.test('a store without the capability: typed start-up error for the option and the call', async (t) => {
  const inner = new MemoryStore()
  // A store that declares nothing beyond the contract.
  const plain: SessionStore = {
    load: (id, o) => inner.load(id, o),
    apply: (id, c) => inner.apply(id, c),
    destroy: (id) => inner.destroy(id),
    touch: (id, ttl, now) => inner.touch(id, ttl, now)
  }
  t.throws(() => new SessionManager({ secret: SECRET, store: plain, owner: 'user' }), { code: 'TETHER_ERR_STORE_CAPABILITY' })
  t.throws(() => new SessionManager({ secret: SECRET, owner: '' }), { code: 'TETHER_ERR_INVALID_OPTION' })
  const manager = new SessionManager({ secret: SECRET, store: plain })
  await t.rejects(manager.destroyAllFor('ada'), { code: 'TETHER_ERR_STORE_CAPABILITY' })
})
