// Benchmark peer: Fastify + @fastify/cookie + @fastify/session + connect-redis 9 (node-redis).
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'

const client = createClient({ url: process.env.REDIS_URL })
await client.connect()
const app = Fastify({ logger: false })
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: 'bench-secret-0123456789-abcdefghijklmnopqrst',
  store: new RedisStore({ client }),
  saveUninitialized: false,
  cookie: { secure: false }
})
app.get('/read', async (req) => ({ user: req.session.get('user') ?? null }))
app.get('/write', async (req) => { req.session.set('user', 'ada'); req.session.set('n', (req.session.get('n') ?? 0) + 1); return { n: req.session.get('n') } })
app.get('/n', async (req) => ({ n: req.session.get('n') ?? null }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGINT', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
