// RedisStore on a real three-master Redis Cluster: each session's hash and lock share a hash
// slot (the id is the hash tag), so every script runs on one node.
import t from 'tap'
import { RedisStore, newId } from '../src/index.js'
import { startRedisCluster } from '../../../test/helpers/redis-cluster.js'
import { storeConformance } from './store-conformance.js'

const cluster = await startRedisCluster(t)

storeConformance(t, 'RedisStore on Redis Cluster', async (t) => {
  const client = cluster.client()
  const store = new RedisStore({ client, prefix: `c:${newId().slice(0, 4)}:` })
  t.teardown(() => store.close())
  return store
})
