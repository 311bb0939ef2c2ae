// Peer: Fastify with @fastify/reply-from (undici inside), round-robin over UPSTREAMS.
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'

const upstreams = process.env.UPSTREAMS.split(',')
let next = 0
const app = Fastify({ logger: false })
await app.register(replyFrom, { undici: { connections: 128, pipelining: 1 } })
app.all('/*', (req, reply) => reply.from(`${upstreams[next++ % upstreams.length]}${req.url}`))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
