// The Express middleware and the Fastify plugin over one ConnectStore (connect-redis 9 on a
// node-redis client, private redis-server), through real HTTP: an existing connect-* backend
// serves both frameworks.
import t from 'tap'
import Fastify from 'fastify'
import express from 'express'
import { createClient } from 'redis'
import { RedisStore as ConnectRedis } from 'connect-redis'
import { ConnectStore, expressSession, fastifySession } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { buildApp, listen, SECRET } from './helpers/express-app.js'
import { Browser, idOf } from './helpers/express-client.js'

const redis = await startRedis(t)
const client = createClient({ url: redis.url, disableOfflineQueue: true })
client.on('error', () => {})
await client.connect()
t.teardown(() => client.destroy())
const store = new ConnectStore(new ConnectRedis({ client, prefix: 'legacy:' }))

const { app } = buildApp(express, { store })
const { url: expressUrl, server } = await listen(app)
t.teardown(() => { server.closeAllConnections(); server.close() })

const fastify = Fastify()
await fastify.register(fastifySession, { secret: SECRET, store })
type Data = Record<string, unknown>
fastify.get<{ Querystring: { k: string } }>('/get', async (req) => ({ value: (req.session as unknown as Data)[req.query.k] ?? null }))
fastify.post<{ Querystring: { k: string, v: string } }>('/set', async (req) => {
  (req.session as unknown as Data)[req.query.k] = JSON.parse(req.query.v) as unknown
  return { id: req.session.id }
})
await fastify.listen({ port: 0, host: '127.0.0.1' })
t.teardown(() => fastify.close())
const fastifyUrl = `http://127.0.0.1:${(fastify.server.address() as { port: number }).port}`

t.test('Express and Fastify share sessions through a connect-redis store', async (t) => {
  const b = new Browser()
  await b.post(`${expressUrl}/set?k=user&v="ada"`)
  const id = idOf(b.cookie)!
  t.equal((await b.get(`${fastifyUrl}/get?k=user`)).json().value, 'ada', 'written by Express, read by Fastify')
  await b.post(`${fastifyUrl}/set?k=n&v=3`)
  t.equal((await b.get(`${expressUrl}/get?k=n`)).json().value, 3, 'written by Fastify, read by Express')
  await b.post(`${expressUrl}/cart/push?item=9`)
  t.same((await b.get(`${fastifyUrl}/get?k=cart`)).json().value, { items: [9] }, 'nested mutation saved through the whole-object write')
  const stored = JSON.parse((await client.get(`legacy:${id}`))!) as { cookie: { expires: string }, tether: { fields: Array<[string, string]> } }
  t.same(Object.fromEntries(stored.tether.fields), { user: '"ada"', n: '3', cart: '{"items":[9]}' }, 'one connect-redis record holds the whole session')
  t.ok(Date.parse(stored.cookie.expires) > Date.now(), 'with the expiry connect-redis takes its TTL from')
  await b.post(`${expressUrl}/logout`)
  t.equal(await client.get(`legacy:${id}`), null, 'destroy removed the record')
})

t.test('lock mode is refused over a store without locks, at start-up and per request', async (t) => {
  t.throws(() => expressSession({ secret: SECRET, store, mode: 'lock' }), { code: 'TETHER_ERR_LOCK_UNSUPPORTED' })
  const b = new Browser()
  await b.post(`${expressUrl}/set?k=n&v=0`)
  const reply = await b.post(`${expressUrl}/rmw?lock=1`)
  t.equal(reply.status, 500)
  t.equal(reply.json().code, 'TETHER_ERR_LOCK_UNSUPPORTED')
})
