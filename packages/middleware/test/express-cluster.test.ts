// A mixed cluster: a Fastify node and Express nodes (5 and 4), each its own OS process, on one
// private redis-server with RedisStore and the same secret. One cookie format: a session
// written on any node is read by the very next request on any other, both ways.
import t from 'tap'
import { newId } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'
import { Browser, idOf, sessionLines } from './helpers/express-client.js'
import { spawnNode } from './helpers/spawn.js'

const redis = await startRedis(t)
const env = { REDIS_URL: redis.url, PREFIX: `cluster:${newId().slice(0, 6)}:` }
const [fastify, express5, express4] = await Promise.all([
  spawnNode(t, 'fastify-node', env),
  spawnNode(t, 'express-node', { ...env, FLAVOUR: 'express5' }),
  spawnNode(t, 'express-node', { ...env, FLAVOUR: 'express4' })
])
const nodes = { fastify: fastify.url, express5: express5.url, express4: express4.url }

t.test('a cookie issued by either framework is accepted by the other, unchanged', async (t) => {
  for (const [writer, reader] of [['fastify', 'express5'], ['express5', 'fastify'], ['fastify', 'express4'], ['express4', 'fastify']] as const) {
    const b = new Browser()
    const write = await b.post(`${nodes[writer]}/set?k=user&v="${writer}"`)
    const [line] = sessionLines(write)
    t.match(line, /^tether\.sid=[A-Za-z0-9_-]{32}\.[A-Za-z0-9+/]{43}; Path=\/; HttpOnly; SameSite=Lax$/, `${writer} issues the one format`)
    const read = await b.get(`${nodes[reader]}/get?k=user`)
    t.same(read.json(), { value: writer, id: idOf(b.cookie), isNew: false }, `${reader} reads ${writer}'s session under the same id`)
    t.same(sessionLines(read), [], `${reader} does not re-issue the cookie`)
  }
})

t.test('each write is read by the very next request on another node, round robin', async (t) => {
  const b = new Browser()
  const order = ['fastify', 'express5', 'express4'] as const
  let misses = 0
  for (let i = 0; i < 30; i++) {
    const writer = order[i % 3]!
    const reader = order[(i + 1) % 3]!
    await b.post(`${nodes[writer]}/set?k=n&v=${i}`)
    const seen = (await b.get(`${nodes[reader]}/get?k=n`)).json().value
    if (seen !== i) { misses++; t.fail(`write ${i} on ${writer} read as ${String(seen)} on ${reader}`) }
  }
  t.equal(misses, 0, '30 writes, each visible to the next request on the next node')
})

t.test('concurrent increments spread over all three nodes add up exactly', async (t) => {
  const b = new Browser()
  await b.post(`${nodes.fastify}/incr`)
  const urls = Object.values(nodes)
  const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => b.post(`${urls[i % 3]!}/incr`)))
  t.ok(replies.every((r) => r.status === 200), 'all answered 200')
  for (const url of urls) t.equal((await b.get(`${url}/get?k=n`)).json().value, 61, `${url} reads 61`)
})

t.test('regenerate and destroy on Express take effect on Fastify', async (t) => {
  const b = new Browser()
  await b.post(`${nodes.fastify}/set?k=n&v=5`)
  const old = b.cookie
  await b.post(`${nodes.express5}/login?user=ada`)
  t.not(idOf(b.cookie), idOf(old), 'new id')
  t.same((await b.get(`${nodes.fastify}/get?k=user`)).json().value, 'ada', 'Fastify reads the regenerated session')
  t.same((await b.get(`${nodes.fastify}/get?k=n`)).json().value, 5, 'with the data written on Fastify before')
  t.same((await new Browser(old).get(`${nodes.fastify}/get?k=n`)).json().isNew, true, 'the old id is dead on Fastify')
  const current = b.cookie
  await b.post(`${nodes.express4}/logout`)
  t.equal(b.cookie, undefined, 'cleared')
  t.same((await new Browser(current).get(`${nodes.fastify}/get?k=user`)).json().isNew, true, 'destroyed for Fastify too')
})
