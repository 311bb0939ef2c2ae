// RedisStore on a real three-master Redis Cluster, through both drivers: each session's hash
// and lock share a hash slot (the id is the hash tag), so every script runs on one node.
import t from 'tap'
import { createCluster } from '@redis/client'
import { RedisStore, SessionManager, newId } from '../src/index.js'
import type { NodeRedisClient } from '../src/index.js'
import { startRedisCluster } from '../../../test/helpers/redis-cluster.js'
import { storeConformance } from './helpers/store-conformance.js'

const cluster = await startRedisCluster(t)

storeConformance(t, 'RedisStore on Redis Cluster (ioredis Cluster)', async (t) => {
  const store = new RedisStore({ client: cluster.client(), prefix: `c:${newId().slice(0, 4)}:` })
  t.teardown(() => store.close())
  return store
})

storeConformance(t, 'RedisStore on Redis Cluster (node-redis createCluster)', async (t) => {
  const client = createCluster({ rootNodes: cluster.ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })), commandOptions: { timeout: 2000 } })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.destroy())
  const store = new RedisStore({ client: client as unknown as NodeRedisClient, prefix: `n:${newId().slice(0, 4)}:` })
  t.teardown(() => store.close())
  return store
})

t.test('log out everywhere is refused on Cluster with a typed start-up error (one user\'s sessions span slots)', async (t) => {
  const store = new RedisStore({ client: cluster.client(), prefix: `o:${newId().slice(0, 4)}:` })
  t.teardown(() => store.close())
  t.same(store.capabilities, { destroyAll: false })
  t.equal(store.destroyAll, undefined)
  t.throws(() => new SessionManager({ secret: 'x'.repeat(32), store, owner: 'user' }), { code: 'TETHER_ERR_STORE_CAPABILITY' })
})
