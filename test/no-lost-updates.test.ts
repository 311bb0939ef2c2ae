// Issue 4 across real processes: three app nodes share one store and one session cookie, and
// fire hundreds of concurrent requests at it. Each guarantee is checked by its final state, on
// every shared store: Redis, and memcached (issue 14); the scenarios are the shared ones of
// helpers/lost-updates.ts (the SQL stores run them too), here with the extended set and a look
// inside the store after the no-resurrection case.
import t from 'tap'
import { startRedis } from './helpers/redis.js'
import { startMemcached } from './helpers/memcached.js'
import { lostUpdateSuite } from './helpers/lost-updates.js'

const redis = await startRedis(t)
const memcached = await startMemcached(t)

t.test('on Redis', async (t) => {
  await lostUpdateSuite(t, { REDIS_URL: redis.url, PREFIX: 'nlu:' }, {
    name: 'Redis',
    extended: true,
    holds: async (id) => (await redis.client().exists(`nlu:{${id}}`)) === 1
  })
})

t.test('on memcached', async (t) => {
  await lostUpdateSuite(t, { MEMCACHED_URL: memcached.url, PREFIX: 'nlu:' }, {
    name: 'memcached',
    extended: true,
    holds: async (id) => {
      const record = await memcached.command(`get nlu:${id}`)
      return /^VALUE /.test(record) && !/tether:destroyed/.test(record)
    }
  })
})
