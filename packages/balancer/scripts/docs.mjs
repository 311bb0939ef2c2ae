#!/usr/bin/env node
// `npm run docs`: rewrites the configuration table of docs/balancer.md from the schema
// (packages/balancer/src/config/schema.ts, built to dist/). test/docs.test.ts fails while the
// page and the schema disagree.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { withConfigTable } from '../dist/config/docs.js'

const file = fileURLToPath(new URL('../../../docs/balancer.md', import.meta.url))
const before = readFileSync(file, 'utf8')
const after = withConfigTable(before)
if (after === before) {
  console.log('docs/balancer.md: the configuration table is up to date')
} else {
  writeFileSync(file, after)
  console.log('docs/balancer.md: configuration table rewritten')
}
