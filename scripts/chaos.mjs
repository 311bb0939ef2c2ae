#!/usr/bin/env node
// `npm run chaos`: the fault-injection suite (test/chaos/chaos.test.ts) with longer faults than
// in CI (`npm test` runs the same file with 3 s faults). Prints the table and writes it to
// .tether/chaos.md. CHAOS_FAULT_MS and CHAOS_CLIENTS override the defaults (10000 ms, 8);
// CHAOS_ONLY runs only the scenarios whose test name matches it (a regular expression), e.g.
// `CHAOS_ONLY='CLIENT PAUSE' npm run chaos`.
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const report = join(root, '.tether', 'chaos.md')
mkdirSync(dirname(report), { recursive: true })
const env = {
  ...process.env,
  CHAOS_FAULT_MS: process.env.CHAOS_FAULT_MS ?? '10000',
  CHAOS_CLIENTS: process.env.CHAOS_CLIENTS ?? '8',
  CHAOS_REPORT: report
}
const tap = join(root, 'node_modules', '.bin', 'tap')
const only = process.env.CHAOS_ONLY === undefined ? [] : ['--grep', process.env.CHAOS_ONLY]
const result = spawnSync(tap, ['--timeout', '600', ...only, 'test/chaos/chaos.test.ts'], { cwd: root, env, stdio: 'inherit' })
process.stdout.write(`\ntable written to ${report}\n`)
process.exit(result.status ?? 1)
