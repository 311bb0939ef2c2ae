#!/usr/bin/env node
// `npm run bench [-- <filter>...]`: runs every suite in bench/suites (or those whose file name
// contains a filter), peers side by side in the same run, and prints Markdown tables of req/s,
// p99 and ratios. Figures are for comparing within one run: this machine is shared and noisy.
import { readdirSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'
import os from 'node:os'
import { ensureWrk } from './lib/load.mjs'
import { stopAll } from './lib/proc.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1'
const suites = readdirSync(join(here, 'suites'))
  .filter((f) => f.endsWith('.mjs'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()

ensureWrk()
console.log(`# Tether benchmarks, ${new Date().toISOString()}`)
console.log(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${quick ? 'quick' : 'full'} run\n`)

const ctx = { quick, duration: quick ? 3 : 10, root: join(here, '..') }
let failed = false
for (const file of suites) {
  const mod = await import(pathToFileURL(join(here, 'suites', file)).href)
  try {
    const out = await mod.default(ctx)
    if (out) console.log(out)
  } catch (err) {
    failed = true
    console.error(`suite ${file} failed:`, err)
  } finally {
    await stopAll()
  }
}
process.exit(failed ? 1 : 0)
