import t from 'tap'
import { MemoryStore, newId } from '../src/index.js'
import { create, storeConformance } from './helpers/store-conformance.js'

storeConformance(t, 'MemoryStore', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  return store
}, { invalidations: true })

t.test('MemoryStore is bounded: the least recently used session is evicted', async (t) => {
  const store = new MemoryStore({ maxEntries: 3 })
  t.teardown(() => store.close())
  const ids = [newId(), newId(), newId(), newId()]
  for (const id of ids.slice(0, 3)) await store.apply(id, create([['a', '1']]))
  const opts = { now: Date.now(), idleTimeout: 60_000, refreshBelow: 0 }
  await store.load(ids[0]!, opts) // ids[0] is now the most recently used
  await store.apply(ids[3]!, create([['a', '1']]))
  t.equal(store.size, 3)
  t.ok(await store.load(ids[0]!, opts), 'recently used kept')
  t.equal(await store.load(ids[1]!, opts), undefined, 'least recently used evicted')
  t.ok(await store.load(ids[3]!, opts), 'newest kept')
})

t.test('MemoryStore sweeps expired sessions nobody reads again', async (t) => {
  const store = new MemoryStore({ sweepInterval: 50 })
  t.teardown(() => store.close())
  for (let i = 0; i < 50; i++) await store.apply(newId(), create([['a', '1']], 30))
  t.equal(store.size, 50)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(store.size, 0, 'swept without any access')
})

t.test('MemoryStore rejects a bad maxEntries', async (t) => {
  t.throws(() => new MemoryStore({ maxEntries: 0 }), { code: 'TETHER_ERR_INVALID_OPTION' })
})
