// Issue 2 benchmark: Fastify + @tether/middleware + RedisStore against the same app on
// @fastify/session + connect-redis 9 (node-redis), on one private Redis, in the same run.
import { compareApps } from '../lib/compare.mjs'
import { startRedisServer } from '../lib/redis.mjs'
const PEER = '@fastify/session + connect-redis'
const PLAIN = 'plain Fastify (no session)'

export default async function (ctx) {
  const redis = await startRedisServer()
  try {
    return await compareApps({
      title: 'Fastify sessions on Redis',
      peer: PEER,
      plain: PLAIN,
      redis,
      rounds: ctx.quick ? 1 : 3,
      duration: ctx.duration,
      apps: [
        [PLAIN, 'fastify-plain.mjs', ['read']],
        [PEER, 'fastify-session-peer.mjs', ['read', 'write']],
        ['Tether fastifySession + RedisStore', 'fastify-tether.mjs', ['read', 'write']],
        ['Tether, RedisStore on ioredis', 'fastify-tether.mjs', ['read', 'write'], { DRIVER: 'ioredis' }],
        ['Tether + nearCache', 'fastify-tether.mjs', ['read', 'write'], { NEAR: '1' }]
      ]
    })
  } finally {
    redis.stop()
  }
}
