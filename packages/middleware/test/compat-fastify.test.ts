// The compatibility matrix, Fastify half: real packages from the registry (@fastify/passport
// with passport-local, @fastify/csrf-protection with sessionPlugin '@fastify/session',
// @fastify/flash) on Fastify 5, each on MemoryStore and on RedisStore (a private redis-server),
// driven end to end through real HTTP. The Express half is compat-express.test.ts.
import t from 'tap'
import type { Test } from 'tap'
import Fastify from 'fastify'
import { Authenticator } from '@fastify/passport'
import fastifyCsrf from '@fastify/csrf-protection'
import type {} from '@fastify/flash'
import { Strategy as LocalStrategy } from 'passport-local'
import { fastifySession, MemoryStore, RedisStore, newId } from '../src/index.js'
import type { SessionStore } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { CookieClient } from './helpers/compat-client.js'
import { PASSWORDS } from './helpers/compat-express.js'

declare module 'fastify' {
  interface PassportUser { name: string }
}

const SID = 'tether.sid'
const idOf = (value: string | undefined): string | undefined => value?.split('.')[0]

const redis = await startRedis(t)

async function buildApp (store: SessionStore) {
  const app = Fastify()
  await app.register(fastifySession, { secret: 'compat-fastify-secret-0123456789-abcdefghij', store })
  const auth = new Authenticator()
  auth.use('local', new LocalStrategy((username, password, done) => {
    if (PASSWORDS[username] === password) done(null, { name: username })
    else done(null, false)
  }))
  auth.registerUserSerializer(async (user: { name: string }) => user.name)
  auth.registerUserDeserializer(async (name: string) => ({ name }))
  await app.register(auth.initialize())
  await app.register(auth.secureSession())
  await app.register(fastifyCsrf, { sessionPlugin: '@fastify/session' })
  // @fastify/passport's initialize() registers @fastify/flash itself (the same installed copy);
  // registering it a second time would fail with FST_ERR_DEC_ALREADY_PRESENT.
  t.ok(app.hasRequestDecorator('flash'), '@fastify/flash is registered')

  app.post('/login', { preValidation: auth.authenticate('local') }, async (req) => ({ user: req.user?.name ?? null, id: req.session.id }))
  app.get('/me', async (req) => ({ user: req.user?.name ?? null, id: req.session.id, authenticated: req.isAuthenticated() }))
  app.post('/logout', async (req) => { await req.logout(); return { ok: true } })
  app.post<{ Body: { message: string } }>('/flash', async (req) => { req.flash('info', req.body.message); return { ok: true } })
  app.get('/flash', async (_req, reply) => ({ info: reply.flash('info') }))
  app.get('/csrf', async (_req, reply) => ({ token: await reply.generateCsrf() }))
  app.post('/transfer', { onRequest: app.csrfProtection }, async () => ({ done: true }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url }
}

type Cell = (t: Test, url: string) => Promise<void>

const cells: Array<[string, Cell]> = [
  ['@fastify/passport + passport-local: login, request.user on the next request, logout; the id changes at login', async (t, url) => {
    const c = new CookieClient(url)
    await c.post('/flash', { json: { message: 'before login' } })
    const anonymousCookie = c.cookie(SID)
    t.ok(anonymousCookie, 'an anonymous session exists')
    t.equal((await c.post('/login', { json: { username: 'ada', password: 'wrong' } })).status, 401, 'a wrong password is refused')
    const login = await c.post('/login', { json: { username: 'ada', password: 'lovelace' } })
    t.equal(login.status, 200, `login answers (${login.body})`)
    const after = idOf(c.cookie(SID))
    t.equal(login.json().id, after)
    t.not(after, idOf(anonymousCookie), 'session fixation: the id changed at login')
    t.same((await c.get('/me')).json(), { user: 'ada', id: after, authenticated: true }, 'request.user on the next request')
    t.same((await c.get('/flash')).json(), { info: [] }, 'regenerate([\'session\']) kept only the keys listed, as @fastify/session does')
    const stolen = await new CookieClient(url).get('/me', { cookie: `${SID}=${anonymousCookie!}` })
    t.equal(stolen.json().user, null, 'the pre-login id does not carry the login')
    t.equal((await c.post('/logout')).status, 200)
    t.equal((await c.get('/me')).json().user, null, 'logged out on the next request')
  }],

  ['@fastify/flash: a message is shown once', async (t, url) => {
    const c = new CookieClient(url)
    t.equal((await c.post('/flash', { json: { message: 'saved!' } })).status, 200)
    t.same((await c.get('/flash')).json(), { info: ['saved!'] }, 'shown on the next request')
    t.same((await c.get('/flash')).json(), { info: [] }, 'and only once')
  }],

  ['@fastify/csrf-protection (sessionPlugin @fastify/session): a valid token accepted, a forged one refused', async (t, url) => {
    const c = new CookieClient(url)
    const { token } = (await c.get('/csrf')).json<{ token: string }>()
    t.ok(token.length > 10, 'a token')
    t.ok(c.cookie(SID), 'its secret was stored in a session')
    t.equal((await c.post('/transfer', { headers: { 'csrf-token': token.slice(0, -2) + 'xx' } })).status, 403, 'forged token refused')
    t.equal((await c.post('/transfer')).status, 403, 'missing token refused')
    const ok = await c.post('/transfer', { headers: { 'csrf-token': token } })
    t.same({ status: ok.status, body: ok.json() }, { status: 200, body: { done: true } }, 'valid token accepted')
    t.equal((await new CookieClient(url).post('/transfer', { headers: { 'csrf-token': token } })).status, 403, 'another session\'s token is refused')
  }]
]

const stores: Array<[string, () => SessionStore]> = [
  ['MemoryStore', () => new MemoryStore()],
  ['RedisStore', () => new RedisStore({ url: redis.url, prefix: `compat:${newId().slice(0, 6)}:` })]
]

for (const [storeName, makeStore] of stores) {
  t.test(`fastify5 on ${storeName}`, async (t) => {
    const store = makeStore()
    t.teardown(() => store.close?.())
    const { app, url } = await buildApp(store)
    t.teardown(() => app.close())
    for (const [name, cell] of cells) await t.test(name, (t) => cell(t, url))
  })
}
