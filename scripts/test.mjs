#!/usr/bin/env node
// Type-checks, lints and runs the whole test suite, and ends with the one line CI reads: "N passed, N failed".
// tap's own summary ("# { total, pass, fail }") is parsed rather than re-counted, so the
// figure is exactly what tap saw; a run that dies before tap prints it counts as a failure.
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
// Build the packages and type-check the tests (tap runs .ts without checking types).
const typecheck = spawnSync('npm', ['run', 'typecheck', '--silent'], { cwd: root, stdio: 'inherit' })
if (typecheck.status !== 0) {
  console.log('0 passed, 1 failed')
  process.exit(1)
}

// Lint and import rules (no loops, packages independent, layers kept): a failure counts as one
// failed test, and the suite still runs so that one report shows everything.
const lint = spawnSync('npm', ['run', 'lint', '--silent'], { cwd: root, stdio: 'inherit' })
const lintFailed = lint.status === 0 ? 0 : 1
if (lintFailed) console.log('# lint or import rules failed (npm run lint)')

const args = ['tap', ...process.argv.slice(2)]
const child = spawn('npx', ['--no-install', ...args], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, FORCE_COLOR: '0' }
})

let tail = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  tail = (tail + chunk.toString('utf8')).slice(-4096)
})

child.on('close', (code) => {
  const summary = /# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?[^}]*\}/.exec(tail)
  const passed = summary ? Number(summary[2] ?? 0) : 0
  let failed = summary ? Number(summary[3] ?? 0) : 0
  if (code !== 0 && failed === 0) failed = 1 // tap failed outside an assertion (crash, timeout, no summary)
  failed += lintFailed
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed === 0 ? 0 : 1)
})
