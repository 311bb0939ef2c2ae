// The compatibility matrix in docs/middleware.md names the versions the compat tests ran
// against: every `name@version` in it must be what package-lock.json installed, and every
// package the compat tests import must appear in it.
import t from 'tap'
import { readFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const doc = readFileSync(join(root, 'docs/middleware.md'), 'utf8')
const start = doc.indexOf('<!-- compat-matrix:start -->')
const end = doc.indexOf('<!-- compat-matrix:end -->')

/** The version npm installed for `dir` (a package name or an npm alias). */
function installed (dir: string): string | undefined {
  for (const base of [root, join(root, 'packages/middleware')]) {
    const file = join(base, 'node_modules', dir, 'package.json')
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
  }
  return undefined
}

t.ok(start !== -1 && end > start, 'the matrix is marked in docs/middleware.md')
const table = doc.slice(start, end)
const named = [...table.matchAll(/`(@?[\w./-]+)@(\d+\.\d+\.\d+)`/g)].map(([, name, version]) => [name!, version!] as const)
t.ok(named.length >= 9, 'the table names versions')

for (const [name, version] of new Map(named.map(([n, v]) => [`${n}@${v}`, [n, v] as const])).values()) {
  // Express 4 and 5 are both installed: 4 under the npm alias `express4`.
  const dir = name === 'express' && version.startsWith('4.') ? 'express4' : name
  t.equal(installed(dir), version, `${name}@${version} is what package-lock installed`)
}

const tested = ['passport', 'passport-local', 'connect-flash', 'csrf-sync', '@fastify/passport', '@fastify/csrf-protection', '@fastify/flash', 'express', 'fastify']
for (const name of tested) t.ok(named.some(([n]) => n === name), `${name} is in the table`)
