// Issue 3 benchmark: Express 5 + @tether/middleware expressSession + RedisStore against the same
// app on express-session 1.19 + connect-redis 9 (node-redis), on one private Redis, in the
// same run. One session is created first and its cookie reused by every request (wrk -H).
import { compareApps } from '../lib/compare.mjs'
import { startRedisServer } from '../lib/redis.mjs'

const PEER = 'express-session + connect-redis'
const PLAIN = 'plain Express (no session): the ceiling'

export default async function (ctx) {
  const redis = await startRedisServer()
  try {
    return await compareApps({
      title: 'Express 5 sessions on Redis',
      peer: PEER,
      plain: PLAIN,
      redis,
      rounds: ctx.quick ? 1 : 3,
      duration: ctx.duration,
      apps: [
        [PLAIN, 'express-plain.mjs', ['read']],
        [PEER, 'express-session-peer.mjs', ['read', 'write']],
        ['Tether expressSession + RedisStore', 'express-tether.mjs', ['read', 'write']],
        ['Tether + nearCache', 'express-tether.mjs', ['read', 'write'], { NEAR: '1' }]
      ]
    })
  } finally {
    redis.stop()
  }
}
