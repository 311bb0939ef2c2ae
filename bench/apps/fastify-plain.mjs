// Benchmark baseline: the same Fastify app without any session.
import Fastify from 'fastify'
const app = Fastify({ logger: false })
app.get('/read', async () => ({ user: null }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGINT', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
