// Client libraries are optional peer dependencies: importing the middleware (any entry point)
// loads none of them, each store loads only its own when it needs it, and a store whose
// library is not installed fails with TETHER_ERR_DEPENDENCY_MISSING naming what to install.
// Runs on the built package (`npm test` builds first), in fresh node processes.
import t from 'tap'
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { childEnv } from '../../../test/helpers/net.js'

const PEERS = ['ioredis', '@redis/client', 'better-sqlite3', 'pg', 'mysql2', 'memcached']
const ENTRY_POINTS = ['@tether/middleware', '@tether/middleware/fastify', '@tether/middleware/express', '@tether/middleware/memory', '@tether/middleware/redis', '@tether/middleware/sqlite', '@tether/middleware/postgres', '@tether/middleware/mysql', '@tether/middleware/memcached', '@tether/middleware/connect', '@tether/middleware/errors', '@tether/middleware/store']
const pkg = fileURLToPath(new URL('../', import.meta.url))

// Runs `body` (an ES module) in a fresh node, then prints which of PEERS it loaded. CommonJS
// packages imported or required from ESM all land in the CommonJS cache (Module._cache), so
// its keys name every client library the process loaded.
const REPORT = `
import { createRequire as tetherProbeRequire } from 'node:module'
const tetherProbePeers = ${JSON.stringify(PEERS)}
const tetherProbeLoaded = new Set()
for (const file of Object.keys(tetherProbeRequire(import.meta.url).cache)) {
  const at = file.lastIndexOf('/node_modules/')
  if (at === -1) continue
  const parts = file.slice(at + '/node_modules/'.length).split('/')
  const name = parts[0].startsWith('@') ? parts[0] + '/' + parts[1] : parts[0]
  if (tetherProbePeers.includes(name)) tetherProbeLoaded.add(name)
}
console.log('PROBE ' + JSON.stringify({ ...globalThis.probeResult, loaded: [...tetherProbeLoaded].sort() }))
process.exit(0)
`

interface Probe { loaded: string[], code?: string, message?: string }

function probe (body: string, cwd = pkg, env: NodeJS.ProcessEnv = childEnv()): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', body + REPORT], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.once('error', reject)
    child.once('close', () => {
      clearTimeout(timer)
      const line = out.split('\n').find((l) => l.startsWith('PROBE '))
      if (line === undefined) reject(new Error(`probe printed no result:\n${out}`))
      else resolve(JSON.parse(line.slice('PROBE '.length)) as Probe)
    })
  })
}

const imports = (specifiers: string[]): string => specifiers.map((s) => `await import(${JSON.stringify(s)})\n`).join('')

t.test('importing the root and @tether/middleware/sqlite loads no client library', async (t) => {
  const found = await probe(imports(['@tether/middleware', '@tether/middleware/sqlite']))
  t.same(found.loaded, [], 'no client library (ioredis, @redis/client, better-sqlite3, pg, mysql2, memcached) was loaded')
})

t.test('no entry point loads a client library on import', async (t) => {
  const found = await probe(imports(ENTRY_POINTS))
  t.same(found.loaded, [], ENTRY_POINTS.join(', '))
})

// The same check, where a store did load its library: it sees the load, so its empty answers
// above are not vacuous. Each store loads its own library and no other.
t.test('the check sees each library a store loads, and only that one', async (t) => {
  const cases: Array<[name: string, construct: string, expected: string[]]> = [
    ['RedisStore from a URL (node-redis)', 'const { RedisStore } = await import(\'@tether/middleware/redis\'); new RedisStore({ url: \'redis://127.0.0.1:1\' })', ['@redis/client']],
    ['RedisStore from a URL with driver ioredis', 'const { RedisStore } = await import(\'@tether/middleware\'); new RedisStore({ url: \'redis://127.0.0.1:1\', driver: \'ioredis\' })', ['ioredis']],
    ['SqliteStore', 'const { SqliteStore } = await import(\'@tether/middleware/sqlite\'); new SqliteStore({ path: \':memory:\' })', ['better-sqlite3']],
    ['PostgresStore', 'const { PostgresStore } = await import(\'@tether/middleware/postgres\'); new PostgresStore({ url: \'postgres://127.0.0.1:1/x\' })', ['pg']],
    ['MySqlStore', 'const { MySqlStore } = await import(\'@tether/middleware/mysql\'); new MySqlStore({ url: \'mysql://127.0.0.1:1/x\' })', ['mysql2']],
    ['MemcachedStore', 'const { MemcachedStore } = await import(\'@tether/middleware/memcached\'); new MemcachedStore({ url: \'memcached://127.0.0.1:1\' })', ['memcached']]
  ]
  await Promise.all(cases.map(async ([name, construct, expected]) => {
    const found = await probe(construct)
    t.same(found.loaded, expected, name)
  }))
})

// A real install without the optional peers: the built package copied outside the repository
// (so no node_modules above it holds them) next to its three hard dependencies.
t.test('without the peers installed, the package imports and each store names the package to install', async (t) => {
  const app = mkdtempSync(join(tmpdir(), 'tether-no-peers-'))
  t.teardown(() => rmSync(app, { recursive: true, force: true }))
  const modules = join(app, 'node_modules')
  const target = join(modules, '@tether', 'middleware')
  mkdirSync(target, { recursive: true })
  cpSync(join(pkg, 'package.json'), join(target, 'package.json'))
  cpSync(join(pkg, 'dist'), join(target, 'dist'), { recursive: true })
  const root = fileURLToPath(new URL('../../../node_modules/', import.meta.url))
  mkdirSync(join(modules, '@fastify'))
  for (const dep of ['@fastify/cookie', 'fastify-plugin', 'secure-json-parse']) symlinkSync(join(root, dep), join(modules, dep), 'dir')
  const { NODE_PATH: _unused, ...env } = childEnv()

  const attempt = (construct: string): string => `
    const m = await import('@tether/middleware')
    try { ${construct}; globalThis.probeResult = { code: 'none' } } catch (err) { globalThis.probeResult = { code: err.code, message: err.message } }
  `
  const plain = await probe('const m = await import(\'@tether/middleware\'); new m.MemoryStore(); globalThis.probeResult = { code: \'none\' }', app, env)
  t.equal(plain.code, 'none', 'the package imports and MemoryStore works without any peer')
  const cases: Array<[string, string, RegExp]> = [
    ['RedisStore (node-redis)', 'new m.RedisStore({ url: \'redis://127.0.0.1:1\' })', /npm install @redis\/client/],
    ['RedisStore (ioredis)', 'new m.RedisStore({ url: \'redis://127.0.0.1:1\', driver: \'ioredis\' })', /npm install ioredis/],
    ['SqliteStore', 'new m.SqliteStore({ path: \':memory:\' })', /npm install better-sqlite3/],
    ['PostgresStore', 'new m.PostgresStore({ url: \'postgres://127.0.0.1:1/x\' })', /npm install pg/],
    ['MySqlStore', 'new m.MySqlStore({ url: \'mysql://127.0.0.1:1/x\' })', /npm install mysql2/],
    ['MemcachedStore', 'new m.MemcachedStore({ url: \'memcached://127.0.0.1:1\' })', /npm install memcached/]
  ]
  await Promise.all(cases.map(async ([name, construct, install]) => {
    const found = await probe(attempt(construct), app, env)
    t.equal(found.code, 'TETHER_ERR_DEPENDENCY_MISSING', `${name}: typed error`)
    t.match(found.message, /is not installed/, `${name}: says why`)
    t.match(found.message, install, `${name}: says what to install`)
  }))
})
