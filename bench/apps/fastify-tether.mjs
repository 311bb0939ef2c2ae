// Benchmark app: Fastify + @tether/middleware on Redis. ROUTES are shared with the peer app.
import Fastify from 'fastify'
import { fastifySession, RedisStore } from '@tether/middleware'

const store = new RedisStore({ url: process.env.REDIS_URL, driver: process.env.DRIVER ?? 'node-redis' })
const app = Fastify({ logger: false })
await app.register(fastifySession, {
  secret: 'bench-secret-0123456789-abcdefghijklmnopqrst',
  store,
  // NEAR=1: the near-cache (Redis CLIENT TRACKING invalidates the copies; any routing).
  ...(process.env.NEAR === '1' ? { nearCache: true } : {})
})
app.get('/read', async (req) => ({ user: req.session.user ?? null }))
app.get('/write', async (req) => { req.session.user = 'ada'; req.session.n = (req.session.n ?? 0) + 1; return { n: req.session.n } })
app.get('/incr', async (req) => ({ n: req.session.increment('n') }))
app.get('/locked', { config: { session: { lock: true } } }, async (req) => { req.session.user = 'ada'; req.session.n = (req.session.n ?? 0) + 1; return { n: req.session.n } })
app.get('/n', async (req) => ({ n: req.session.n ?? null }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGINT', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
