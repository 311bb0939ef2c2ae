// Issue 4: how many of 300 concurrent increments of one session survive. One session cookie,
// requests spread round-robin over the app processes, all fired at once; the final count is
// read back afterwards. A count, not a timing: it does not depend on the machine's noise as
// req/s does, though how many writes collide does depend on timing.
import { startRedisServer } from '../lib/redis.mjs'
import { mintCookies, startBenchApp } from '../lib/sessions.mjs'
import { table } from '../lib/table.mjs'

const N = 300

const cases = [
  ['express-session + connect-redis, 3 nodes', 'express-session-peer.mjs', 3, '/write'],
  ['express-session + connect-redis, 1 node', 'express-session-peer.mjs', 1, '/write'],
  ['@fastify/session + connect-redis, 1 node', 'fastify-session-peer.mjs', 1, '/write'],
  ['Tether (Fastify), 3 nodes, merge mode, read-modify-write', 'fastify-tether.mjs', 3, '/write'],
  ['Tether (Fastify), 3 nodes, increment()', 'fastify-tether.mjs', 3, '/incr'],
  ['Tether (Fastify), 3 nodes, lock mode, read-modify-write', 'fastify-tether.mjs', 3, '/locked'],
  ['Tether (Express), 3 nodes, increment()', 'express-tether.mjs', 3, '/incr']
]

export default async function () {
  const redis = await startRedisServer()
  const rows = []
  try {
    for (const [name, file, nodes, path] of cases) {
      redis.flush()
      const apps = []
      try {
        for (let i = 0; i < nodes; i++) apps.push(await startBenchApp(file, { REDIS_URL: redis.url }))
        const [cookie] = await mintCookies(apps[0].url, 1, { path: '/write' }) // n = 1
        const replies = await Promise.all(Array.from({ length: N }, (_, i) =>
          fetch(apps[i % nodes].url + path, { headers: { cookie } }).then(async (r) => { await r.arrayBuffer(); return r.status })))
        const failed = replies.filter((s) => s !== 200).length
        const final = (await (await fetch(apps[0].url + '/n', { headers: { cookie } })).json()).n
        rows.push([name, N + 1, final, N + 1 - final, failed])
      } finally {
        for (const app of apps) await app.stop()
      }
    }
  } finally {
    redis.stop()
  }
  return table(`Lost updates: ${N} concurrent increments of one session (plus the one that created it)`, ['setup', 'expected', 'final count', 'lost', 'failed requests'], rows)
}
