// SqliteStore: the conformance suite on a real database file, then what only several OS
// processes sharing that file can show: exact increments, no resurrection, and the lock.
import t from 'tap'
import { childEnv } from '../../../test/helpers/net.js'
import { kill as killChild } from '../../../test/helpers/reaper.js'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import type BetterSqlite3 from 'better-sqlite3'
import type { Test } from 'tap'
import { SqliteStore, newId } from '../src/index.js'
import { create, storeConformance, update } from './helpers/store-conformance.js'

const dir = mkdtempSync(join(tmpdir(), 'tether-sqlite-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const dbPath = join(dir, 'sessions.db')
const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3

// A new store per case on one shared file: the cases also show that instances share state.
storeConformance(t, 'SqliteStore', async (t) => {
  const store = new SqliteStore({ path: dbPath })
  t.teardown(() => store.close())
  return store
})

function open (t: Test, options: Partial<ConstructorParameters<typeof SqliteStore>[0]> = {}): SqliteStore {
  const store = new SqliteStore({ path: dbPath, ...options })
  t.teardown(() => store.close())
  return store
}

interface Worker {
  /** Next JSON line the worker prints. */
  read (): Promise<Record<string, unknown>>
  send (line: string): void
  kill (): Promise<void>
}

const workerPath = fileURLToPath(new URL('./fixtures/sqlite-worker.mjs', import.meta.url))

async function worker (t: Test, op: string, id: string, n = 1): Promise<Worker> {
  const child: ChildProcess = spawn(process.execPath, [workerPath, dbPath, op, id, String(n)], { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d) => { stderr += String(d) })
  const queue: Array<Record<string, unknown>> = []
  const waiters: Array<(v: Record<string, unknown>) => void> = []
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const value = JSON.parse(line) as Record<string, unknown>
    const w = waiters.shift()
    if (w !== undefined) w(value)
    else queue.push(value)
  })
  const kill = (): Promise<void> => killChild(child)
  t.teardown(kill)
  const w: Worker = {
    read: () => {
      const queued = queue.shift()
      if (queued !== undefined) return Promise.resolve(queued)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker ${op} said nothing for 30 s; stderr: ${stderr}`)), 30_000)
        waiters.push((v) => { clearTimeout(timer); resolve(v) })
      })
    },
    send: (line) => { child.stdin!.write(line + '\n') },
    kill
  }
  t.same(await w.read(), { ready: true }, `worker ${op} opened the store`)
  return w
}

t.test('the file is in WAL mode, and expired rows are swept', async (t) => {
  const store = open(t, { cleanupInterval: 50 })
  for (let i = 0; i < 20; i++) await store.apply(newId(), create([['a', '1'], ['b', '2']], 30))
  const live = newId()
  await store.apply(live, create([['a', '1']]))
  const raw = new Database(dbPath, { readonly: true })
  t.teardown(() => raw.close())
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal')
  const count = (): number => raw.prepare('SELECT count(*) FROM tether_sessions WHERE expires_at <= ?').pluck().get(Date.now()) as number
  const deadline = Date.now() + 5000
  while (count() > 0 && Date.now() < deadline) await sleep(25)
  t.equal(count(), 0, 'expired sessions deleted by the sweep, without anyone reading them')
  t.equal(raw.prepare('SELECT count(*) FROM tether_fields f LEFT JOIN tether_sessions s ON s.id = f.sid WHERE s.id IS NULL').pluck().get(), 0, 'with their fields')
  t.ok(await store.load(live, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }), 'a live session is kept')
})

t.test('three processes increment one counter at once: exact, every value seen once', async (t) => {
  const id = newId()
  const store = open(t)
  await store.apply(id, create([['count', '0']]))
  const workers = await Promise.all([1, 2, 3].map(() => worker(t, 'incr', id, 200)))
  for (const w of workers) w.send('go')
  const seen = (await Promise.all(workers.map((w) => w.read()))).flatMap((r) => r.seen as number[])
  t.equal((await store.load(id, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }))!.fields.get('count'), '600', '600 increments, 600 added')
  t.same([...seen].sort((a, b) => a - b), Array.from({ length: 600 }, (_, i) => i + 1), 'each increment saw a distinct value')
})

t.test('a write from a process whose session another process destroyed is refused', async (t) => {
  const id = newId()
  const store = open(t)
  await store.apply(id, create([['user', '"ada"'], ['count', '1']]))
  const slow = await worker(t, 'slowWrite', id)
  slow.send('go')
  t.same(await slow.read(), { loaded: true }, 'the other process loaded the session')
  await store.destroy(id)
  slow.send('write now')
  t.same(await slow.read(), { result: { ok: false, reason: 'gone' } }, 'its write was refused with gone')
  t.equal(await store.load(id, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }), undefined, 'the session stays destroyed')
})

t.test('lock mode across processes: locked read-modify-writes lose nothing', async (t) => {
  const id = newId()
  const store = open(t)
  await store.apply(id, create([['n', '0']]))
  const workers = await Promise.all([1, 2, 3].map(() => worker(t, 'rmw', id, 30)))
  for (const w of workers) w.send('go')
  t.same(await Promise.all(workers.map((w) => w.read())), [{ done: 30 }, { done: 30 }, { done: 30 }])
  t.equal((await store.load(id, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }))!.fields.get('n'), '90')
})

t.test('a release in another process wakes a waiter long before the lease would run out', async (t) => {
  const id = newId()
  const store = open(t)
  await store.apply(id, create([['n', '0']]))
  const holder = await worker(t, 'hold', id, 20_000)
  holder.send('go')
  const { token } = await holder.read() as { token: number }
  t.ok(token > 0, 'the other process holds the lock')
  // The holder renews its 20 s lease for as long as it lives, so only the release itself can
  // wake this waiter within its 10 s wait.
  const waiting = store.lock(id, { lease: 5000, wait: 10_000 })
  await sleep(200)
  holder.send('release')
  t.same(await holder.read(), { released: true })
  const lock = await waiting
  t.ok(lock, 'granted after the release in the other process')
  t.ok(lock!.token > token, 'with a larger fencing token')
  await lock!.release()
})

t.test('a holder process that dies frees the lock when its lease runs out', async (t) => {
  const id = newId()
  const store = open(t)
  await store.apply(id, create([['n', '0']]))
  const holder = await worker(t, 'hold', id, 800)
  holder.send('go')
  const { token } = await holder.read() as { token: number }
  await holder.kill()
  const lock = await store.lock(id, { lease: 5000, wait: 10_000 })
  t.ok(lock!.token > token, 'granted to the next waiter once the dead holder stopped renewing')
  t.same(await store.apply(id, update({ set: [['n', '1']], fence: token })), { ok: false, reason: 'fenced' }, 'the dead holder\'s token no longer writes')
  await lock!.release()
})

t.test('":memory:" works for one process', async (t) => {
  const store = new SqliteStore({ path: ':memory:' })
  t.teardown(() => store.close())
  const id = newId()
  t.ok((await store.apply(id, create([['a', '1']]))).ok)
  const lock = await store.lock(id, { lease: 1000, wait: 1000 })
  const next = store.lock(id, { lease: 1000, wait: 1000 })
  await lock!.release()
  t.ok((await next)!.token > lock!.token, 'an in-process release wakes the waiter')
  await (await next)!.release()
})

t.test('bad options and a closed store fail with registry codes', async (t) => {
  t.throws(() => new SqliteStore({ path: '' }), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new SqliteStore({} as never), { code: 'TETHER_ERR_INVALID_OPTION' })
  t.throws(() => new SqliteStore({ path: join(dir, 'no-such-dir', 'x.db') }), { code: 'TETHER_ERR_INVALID_OPTION', message: /no-such-dir/ })
  t.throws(() => new SqliteStore({ path: dbPath, busyTimeout: -1 }), { code: 'TETHER_ERR_INVALID_OPTION', message: /busyTimeout/ })
  const store = new SqliteStore({ path: dbPath })
  await store.close()
  await t.rejects(store.load(newId(), { now: Date.now(), idleTimeout: 1000, refreshBelow: 0 }), { code: 'TETHER_ERR_STORE_UNAVAILABLE' })
})

t.test('better-sqlite3 stays off the import path and its absence is a typed error', async (t) => {
  const index = new URL('../dist/index.js', import.meta.url).href
  const probe = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { createRequire } from 'node:module'
    await import(${JSON.stringify(index)})
    const loaded = Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('better-sqlite3'))
    console.log(JSON.stringify({ loaded }))
  `], { encoding: 'utf8', env: childEnv() })
  t.same(JSON.parse(probe.stdout), { loaded: false }, 'importing @tether/middleware does not load better-sqlite3')
  // Uninstalling the package is not possible from a test; a resolver hook that refuses it is
  // the closest real thing (the same MODULE_NOT_FOUND a missing install raises).
  const missing = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import Module from 'node:module'
    const resolve = Module._resolveFilename
    Module._resolveFilename = function (request, ...rest) {
      if (request === 'better-sqlite3') { const e = new Error("Cannot find module 'better-sqlite3'"); e.code = 'MODULE_NOT_FOUND'; throw e }
      return resolve.call(this, request, ...rest)
    }
    const { SqliteStore } = await import(${JSON.stringify(index)})
    try { new SqliteStore({ path: ':memory:' }) } catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })) }
  `], { encoding: 'utf8', env: childEnv() })
  const err = JSON.parse(missing.stdout) as { code: string, message: string }
  t.equal(err.code, 'TETHER_ERR_DEPENDENCY_MISSING')
  t.match(err.message, /npm install better-sqlite3/, 'the message says what to do')
})

t.test('a file made before the owner column gets it on open (log out everywhere)', async (t) => {
  const old = join(dir, 'before-owner.db')
  const db = new Database(old)
  db.exec('CREATE TABLE tether_sessions (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, absolute_expiry INTEGER NOT NULL, expires_at INTEGER NOT NULL, version INTEGER NOT NULL, lock_seq INTEGER NOT NULL DEFAULT 0, lock_token INTEGER, lock_expires INTEGER) WITHOUT ROWID')
  db.close()
  const store = new SqliteStore({ path: old })
  t.teardown(() => store.close())
  const id = newId()
  t.ok((await store.apply(id, { ...create([['user', '"ada"']]), owner: 'ada' })).ok)
  t.equal(await store.destroyAll('ada'), 1)
  t.equal(await store.load(id, { now: Date.now(), idleTimeout: 3_600_000, refreshBelow: 0 }), undefined)
})
