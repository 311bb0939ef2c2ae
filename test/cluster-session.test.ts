// Two app processes share one Redis: a session written through one node is read through the
// other, over real HTTP, both ways. This is the whole point of a shared session store.
import t from 'tap'
import { startRedis } from './helpers/redis.js'
import { startApp } from './helpers/apps.js'
import { cookieFrom, request } from './helpers/net.js'

const redis = await startRedis(t)
const env = { REDIS_URL: redis.url, PREFIX: 'cluster:' }
const [a, b] = await Promise.all([
  startApp(t, '../fixtures/fastify-app.mjs', { ...env, NODE_NAME: 'a' }),
  startApp(t, '../fixtures/fastify-app.mjs', { ...env, NODE_NAME: 'b' })
])

t.test('a write on one node is read on the other, both ways', async (t) => {
  const login = await request(`${a.url}/login?user=ada`, { method: 'POST' })
  t.equal(login.status, 200)
  const cookie = cookieFrom(login.headers, 'tether.sid')
  t.ok(cookie, 'node a issued the cookie')
  const onB = JSON.parse((await request(`${b.url}/me`, { headers: { cookie: cookie! } })).body)
  t.equal(onB.node, 'b')
  t.same(onB.data, { user: 'ada' }, 'node b sees what node a wrote')

  const write = await request(`${b.url}/set/theme?value=dark`, { method: 'POST', headers: { cookie: cookie! } })
  t.equal(write.status, 200)
  t.equal(write.headers['set-cookie'], undefined, 'the existing cookie stays valid on the other node')
  const onA = JSON.parse((await request(`${a.url}/me`, { headers: { cookie: cookie! } })).body)
  t.same(onA.data, { user: 'ada', theme: 'dark' }, 'node a sees what node b wrote, immediately')
})

t.test('a node that dies logs nobody out', async (t) => {
  const login = await request(`${a.url}/login?user=grace`, { method: 'POST' })
  const cookie = cookieFrom(login.headers, 'tether.sid')!
  await a.kill()
  const onB = JSON.parse((await request(`${b.url}/me`, { headers: { cookie } })).body)
  t.same(onB.data, { user: 'grace' }, 'the session lives on in the store')
})
