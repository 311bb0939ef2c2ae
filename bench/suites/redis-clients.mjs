// Why RedisStore defaults to node-redis: client-side CPU per command, ioredis against
// node-redis (@redis/client), on the two commands a session read and write send (HGETALL, and
// EVALSHA of a small script), 50 commands in flight, against one private redis-server. This
// process's CPU time divided by the commands: the cost a busy app node pays per round trip.
import { createClient } from '@redis/client'
import { Redis } from 'ioredis'
import { startRedisServer } from '../lib/redis.mjs'
import { fmt, table } from '../lib/table.mjs'

const LUA = "redis.call('HSET', KEYS[1], 'n', ARGV[1]) redis.call('PEXPIRE', KEYS[1], 60000) return 1"
const CONCURRENCY = 50

async function run (send, total) {
  let issued = 0
  const cpu = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (issued < total) { issued++; await send() } }))
  const used = process.cpuUsage(cpu)
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  return { opsPerSec: total / ms * 1000, cpuUs: (used.user + used.system) / total }
}

export default async function (ctx) {
  const total = ctx.quick ? 50_000 : 200_000
  const redis = await startRedisServer()
  const io = new Redis(redis.url, { enableAutoPipelining: true })
  const nr = createClient({ url: redis.url })
  await nr.connect()
  try {
    await io.hset('k', 'a', '1', 'b', '"x"', 'c', '{"items":[1,2]}')
    const sha = await io.script('LOAD', LUA)
    const cases = [
      ['HGETALL (a read)', () => io.call('HGETALL', 'k'), () => nr.sendCommand(['HGETALL', 'k'])],
      ['EVALSHA (a write)', () => io.evalsha(sha, 1, 'k', '5'), () => nr.sendCommand(['EVALSHA', sha, '1', 'k', '5'])]
    ]
    const rows = []
    for (const [what, ioSend, nrSend] of cases) {
      await run(ioSend, total / 10) // warm-up
      await run(nrSend, total / 10)
      const a = await run(ioSend, total)
      const b = await run(nrSend, total)
      rows.push([what, 'ioredis 5 (auto-pipelining)', a.opsPerSec, fmt(a.cpuUs, 2), '1.00×'])
      rows.push([what, 'node-redis 5 (@redis/client)', b.opsPerSec, fmt(b.cpuUs, 2), `${fmt(a.cpuUs / b.cpuUs, 2)}× less CPU`])
    }
    return table(`Redis clients: client CPU per command (${CONCURRENCY} in flight, ${fmt(total)} commands)`, ['command', 'client', 'commands/s', 'client CPU µs/command', 'vs ioredis'], rows)
  } finally {
    io.disconnect()
    nr.destroy()
    redis.stop()
  }
}
