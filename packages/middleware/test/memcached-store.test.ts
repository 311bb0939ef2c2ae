// MemcachedStore against a real memcached that this test starts on a free port: the whole
// conformance suite, then what is particular to memcached (tombstones, the 30-day TTL rule,
// CAS conflicts between stores that share nothing but the server).
import t from 'tap'
import { createRequire } from 'node:module'
import { MemcachedStore, newId } from '../src/index.js'
import { exptime } from '../src/stores/memcached/record.js'
import { ownerKey } from '../src/stores/memcached/owners.js'
import { startMemcached } from '../../../test/helpers/memcached.js'
import { create, storeConformance, update } from './helpers/store-conformance.js'

const memcached = await startMemcached(t)
const opts = (refreshBelow = 0) => ({ now: Date.now(), idleTimeout: 3_600_000, refreshBelow })

storeConformance(t, 'MemcachedStore', async (t) => {
  const store = new MemcachedStore({ url: memcached.url, prefix: `conf:${newId().slice(0, 6)}:` })
  t.teardown(() => store.close())
  return store
})

t.test('two stores (two processes\' worth of clients) share one memcached: CAS keeps every increment and key', async (t) => {
  const a = new MemcachedStore({ url: memcached.url, prefix: 'cas:' })
  const b = new MemcachedStore({ servers: [`127.0.0.1:${memcached.port}`], prefix: 'cas:' })
  const c = new MemcachedStore({ servers: `127.0.0.1:${memcached.port}`, prefix: 'cas:' })
  t.teardown(async () => { await a.close(); await b.close(); await c.close() })
  const id = newId()
  await a.apply(id, create([['n', '0']]))
  const stores = [a, b, c]
  const results = await Promise.all(Array.from({ length: 150 }, (_, i) => stores[i % 3]!.apply(id, update({ incr: [['n', 1]], set: [[`k${i}`, String(i)]] }))))
  t.ok(results.every((r) => r.ok), 'every write applied')
  const s = await b.load(id, opts())
  t.equal(s!.fields.get('n'), '150', 'no increment lost')
  t.equal([...s!.fields.keys()].filter((k) => k.startsWith('k')).length, 150, 'no key lost')
  t.equal(s!.version, 151, 'one version per write')
})

t.test('destroy leaves a tombstone: neither a write nor a repeated create brings the id back', async (t) => {
  const store = new MemcachedStore({ url: memcached.url, prefix: 'tomb:' })
  t.teardown(() => store.close())
  const id = newId()
  await store.apply(id, create([['user', '"ada"']]))
  await store.destroy(id)
  t.match(await memcached.command(`get tomb:${id}`), /tether:destroyed/, 'the item is a tombstone')
  t.same(await store.apply(id, update({ set: [['x', '1']] })), { ok: false, reason: 'gone' })
  t.same(await store.apply(id, create([['user', '"mallory"']])), { ok: false, reason: 'exists' }, 'a late create of the same id is refused')
  t.equal(await store.load(id, opts()), undefined)
  t.equal(await store.touch(id, 10_000, Date.now()), false)
  t.equal(await store.lock(id, { lease: 1000, wait: 100 }), undefined, 'nothing to lock')
})

t.test('memcached TTLs: whole seconds with a second of slack, absolute past 30 days', async (t) => {
  const now = 1_700_000_000_000
  t.equal(exptime(now + 300, now), 2, '300 ms: kept 2 s (the store checks the exact deadline itself)')
  t.equal(exptime(now + 86_400_000, now), 86_401, 'a day')
  t.equal(exptime(now + 30 * 86_400_000 - 1000, now), 2_592_000, 'just under 30 days: still relative')
  t.equal(exptime(now + 40 * 86_400_000, now), Math.ceil((now + 40 * 86_400_000) / 1000) + 1, 'past 30 days: a Unix time')
  t.equal(exptime(now - 5000, now), 1, 'a past deadline: the shortest TTL')
  // And memcached agrees: a 40-day session is really stored (a relative 40-day TTL would be
  // read as a Unix time in 1970 and expire at once).
  const store = new MemcachedStore({ url: memcached.url, prefix: 'ttl:' })
  t.teardown(() => store.close())
  const id = newId()
  t.ok((await store.apply(id, create([['a', '1']], 40 * 86_400_000, 40 * 86_400_000))).ok)
  t.ok(await store.load(id, opts()), 'a 40-day session is there')
})

t.test('a lock held in another store is retried with a bounded back-off and granted soon after its release', async (t) => {
  const holder = new MemcachedStore({ url: memcached.url, prefix: 'lk:' })
  const waiter = new MemcachedStore({ url: memcached.url, prefix: 'lk:', lockBackoffMax: 50 })
  t.teardown(async () => { await holder.close(); await waiter.close() })
  const id = newId()
  await holder.apply(id, create([['n', '0']]))
  const held = await holder.lock(id, { lease: 10_000, wait: 1000 })
  const pending = waiter.lock(id, { lease: 10_000, wait: 5000 })
  await new Promise((resolve) => setTimeout(resolve, 400))
  const released = Date.now()
  await held!.release()
  const got = await pending
  const after = Date.now() - released
  t.ok(got!.token > held!.token, 'granted with a larger token')
  t.ok(after < 500, `granted ${after} ms after the release (back-off capped at 50 ms), not at the 10 s lease`)
  await got!.release()
})

t.test('options and a missing server fail with registry codes', async (t) => {
  t.throws(() => new MemcachedStore({} as never), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new MemcachedStore({ url: 'redis://127.0.0.1:6379' }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new MemcachedStore({ servers: ['nohost'] }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new MemcachedStore({ url: memcached.url, prefix: 'a b' }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new MemcachedStore({ url: memcached.url, casRetries: 0 }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new MemcachedStore({ client: {} as never }), { code: 'TETHER_ERR_INVALID_OPTION' })
  const store = new MemcachedStore({ url: memcached.url, prefix: 'corrupt:' })
  t.teardown(() => store.close())
  const id = newId()
  await memcached.command(`set corrupt:${id} 0 60 6\r\nhello!`)
  await t.rejects(store.load(id, opts()), { code: 'TETHER_ERR_STORE_CORRUPT' }, 'an item MemcachedStore did not write is not adopted')
  const down = new MemcachedStore({ url: 'memcached://127.0.0.1:1', commandTimeout: 500 })
  await t.rejects(down.load(newId(), opts()), { code: 'TETHER_ERR_STORE_UNAVAILABLE' })
  await down.close()
  await store.close()
  await t.rejects(store.load(id, opts()), { code: 'TETHER_ERR_STORE_UNAVAILABLE' }, 'a closed store')
})

t.test('a cas sent to a memcached that stops (SIGSTOP) before answering is outcome unknown; the same-id retry applies it once', async (t) => {
  // Our own server, so that stopping it touches no other test. The fault is placed exactly:
  // the server is stopped as the `gets` answer arrives, so the `cas` that follows is sent and
  // never answered until SIGCONT.
  const server = await startMemcached(t)
  const Memcached = createRequire(import.meta.url)('memcached') as new (servers: string, options: object) => MemcachedClient
  const client = new Memcached(`127.0.0.1:${server.port}`, { retries: 0, timeout: 2000, idle: 0 })
  t.teardown(() => { client.end() })
  let armed = false
  const gets = client.gets.bind(client)
  client.gets = (key, cb) => gets(key, (err, data) => {
    if (!armed) { cb(err, data); return }
    armed = false
    void server.pause().then(() => { cb(err, data) })
  })
  const store = new MemcachedStore({ client: client as never, commandTimeout: 300, prefix: 'eo:' })
  t.teardown(() => store.close())
  const id = newId()
  await store.apply(id, create([['n', '1']]))
  const change = { ...update({ incr: [['n', 1]] }), writeId: newId() }
  armed = true
  await t.rejects(store.apply(id, change), { code: 'TETHER_ERR_STORE_OUTCOME_UNKNOWN' }, 'sent, unanswered: not "unavailable, nothing written"')
  server.resume()
  // The retry (the middleware sends one under the same write id) finds the stopped cas applied
  // once the server runs again, or applies it if it was not: either way once.
  let retry
  for (let i = 0; i < 20 && retry === undefined; i++) {
    retry = await store.apply(id, change).catch(async () => { await new Promise((resolve) => setTimeout(resolve, 50)) })
  }
  t.same(retry, { ok: true, version: 2, counters: new Map([['n', 2]]) }, 'the retry is answered with the one result')
  t.equal((await store.load(id, opts()))!.fields.get('n'), '2', 'the increment is counted once')
  const again = await store.apply(id, { ...update({ incr: [['n', 1]] }), writeId: newId() })
  t.same(again, { ok: true, version: 3, counters: new Map([['n', 3]]) }, 'a new write id is a new write')
})

interface MemcachedClient {
  gets (key: string, cb: (err: unknown, data: unknown) => void): void
  end (): void
}

t.test('log out everywhere by generation: seen from another process, in flight, and when the owner item is lost', async (t) => {
  const a = new MemcachedStore({ url: memcached.url, prefix: 'gen:' })
  const b = new MemcachedStore({ url: memcached.url, prefix: 'gen:' })
  t.teardown(async () => { await a.close(); await b.close() })
  const ids = [newId(), newId()]
  for (const id of ids) await a.apply(id, { ...create([['user', '"ada"']]), owner: 'ada' })
  // b reads them twice: the second load fetches session and owner item in one multi-get.
  for (const id of ids) { await b.load(id, opts()); t.ok(await b.load(id, opts()), 'readable in another process') }
  const late = await b.apply(ids[0]!, update({ incr: [['n', 1]] }))
  t.ok(late.ok, 'writable before')
  t.equal(await a.destroyAll('ada'), 2)
  for (const id of ids) t.equal(await b.load(id, opts()), undefined, 'the other process sees it ended at once')
  t.same(await b.apply(ids[0]!, update({ incr: [['n', 1]] })), { ok: false, reason: 'gone' }, 'a request in flight cannot write it back')
  t.same(await b.apply(ids[0]!, create([['user', '"ada"']])), { ok: false, reason: 'exists' }, 'nor create it again')
  t.equal(await b.touch(ids[1]!, 60_000, Date.now()), false)
  // A new login after the logout is a new generation, and lives.
  const fresh = newId()
  await b.apply(fresh, { ...create([['user', '"ada"']]), owner: 'ada' })
  t.ok(await a.load(fresh, opts()), 'a later login lives')
  // memcached may evict the owner item: the owner's sessions end (a logout, never a resurrection).
  t.match(await memcached.command(`delete ${ownerKey('gen:', 'ada')}`), /DELETED/)
  t.equal(await a.load(fresh, opts()), undefined, 'owner item gone: its sessions are gone')
  t.equal(await a.destroyAll('ada'), 0)
})
