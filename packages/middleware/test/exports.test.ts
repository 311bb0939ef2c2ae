// The package's entry points, as an app resolves them (the built package, through the exports
// map): each subpath exports what it names, with its declarations beside it, and the root
// re-exports every one of them, the very same objects, for compatibility.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'

const pkgUrl = new URL('../package.json', import.meta.url)
const pkg = JSON.parse(readFileSync(pkgUrl, 'utf8')) as { name: string, exports: Record<string, string | { types: string, import: string }> }

const expected: Record<string, string[]> = {
  './fastify': ['fastifySession'],
  './express': ['expressSession'],
  './memory': ['MemoryStore'],
  './redis': ['RedisStore'],
  './sqlite': ['SqliteStore'],
  './postgres': ['PostgresStore'],
  './mysql': ['MySqlStore'],
  './memcached': ['MemcachedStore'],
  './connect': ['ConnectStore'],
  './errors': ['TetherError', 'errorCodes', 'outcomeUnknown', 'storeUnavailable', 'tetherError'],
  './store': []
}
// The root's own exports on top of every subpath's.
const rootOnly = ['SessionManager', 'NearCache', 'StickyCache', 'isWellFormedId', 'newId']

t.test('every entry point has its JavaScript and its declarations', async (t) => {
  const entries = Object.entries(pkg.exports).filter(([path]) => path !== './package.json')
  t.same(entries.map(([path]) => path).sort(), ['.', ...Object.keys(expected)].sort(), 'the subpaths this test knows, and no other')
  for (const [path, target] of entries) {
    t.type(target, 'object', `${path} has conditions`)
    if (typeof target === 'string') continue
    t.same(Object.keys(target), ['types', 'import'], `${path}: types first, then import`)
    t.ok(existsSync(new URL(target.import, pkgUrl)), `${path}: ${target.import} exists`)
    t.ok(existsSync(new URL(target.types, pkgUrl)), `${path}: ${target.types} exists`)
  }
})

t.test('each subpath exports what it names; the root re-exports them all', async (t) => {
  const root = await import(pkg.name) as Record<string, unknown>
  const all = new Set(rootOnly)
  for (const [path, names] of Object.entries(expected)) {
    const mod = await import(pkg.name + path.slice(1)) as Record<string, unknown>
    t.same(Object.keys(mod).sort(), [...names].sort(), `${pkg.name}${path.slice(1)}`)
    for (const name of names) {
      t.equal(root[name], mod[name], `the root's ${name} is the subpath's`)
      all.add(name)
    }
  }
  t.same(Object.keys(root).sort(), [...all].sort(), 'the root exports nothing else')
})
