// One OS process sharing a SqliteStore file with the test, for the cross-process cases.
// Usage: node sqlite-worker.mjs <db> <op> <session id> [n]
// It prints {"ready":true} once the store is open, waits for "go" on stdin (so every worker
// starts contending at once), runs <op>, prints its result as one JSON line and exits.
// Runs on the built package: `npm test` builds before running tap.
import { createInterface } from 'node:readline'
import { SqliteStore } from '../dist/index.js'

const [db, op, id, nArg] = process.argv.slice(2)
const n = Number(nArg ?? 1)
const HOUR = 3_600_000
const store = new SqliteStore({ path: db })
const lines = createInterface({ input: process.stdin })
const next = () => new Promise((resolve) => lines.once('line', resolve))
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const change = (parts) => ({ set: [], del: [], incr: [], ...parts, ttl: HOUR, now: Date.now() })
const load = () => store.load(id, { now: Date.now(), idleTimeout: HOUR, refreshBelow: 0 })

const ops = {
  // n increments, all in flight at once within this process too.
  async incr () {
    const results = await Promise.all(Array.from({ length: n }, () => store.apply(id, change({ incr: [['count', 1]] }))))
    return { seen: results.map((r) => (r.ok ? r.counters.get('count') : r.reason)) }
  },
  // n read-modify-writes under the session lock.
  async rmw () {
    for (let i = 0; i < n; i++) {
      const lock = await store.lock(id, { lease: 5000, wait: 20_000 })
      try {
        const s = await load()
        const value = Number(s.fields.get('n'))
        await new Promise((resolve) => setImmediate(resolve))
        const r = await store.apply(id, change({ set: [['n', String(value + 1)]], fence: lock.token }))
        if (!r.ok) throw new Error(`write refused: ${r.reason}`)
      } finally { await lock.release() }
    }
    return { done: n }
  },
  // Take the lock, report it, then hold it until told to release (or until killed).
  async hold () {
    const lock = await store.lock(id, { lease: n, wait: 5000 })
    say({ token: lock.token })
    await next()
    await lock.release()
    return { released: true }
  },
  // Load, report, then write only after the test has destroyed the session elsewhere.
  async slowWrite () {
    const before = await load()
    say({ loaded: before !== undefined })
    await next()
    return { result: await store.apply(id, change({ set: [['cart', '[1]']], incr: [['count', 1]] })) }
  }
}

say({ ready: true })
await next()
try {
  say(await ops[op]())
} catch (err) {
  say({ error: String(err?.code ?? err) })
}
await store.close()
lines.close()
