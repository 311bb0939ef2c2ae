// docs/balancer.md's configuration table is generated from the schema (`npm run docs`); this
// test fails as soon as the page and the schema disagree, so the table cannot drift.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { TABLE_END, TABLE_START, renderConfigTable, withConfigTable } from '../src/config/docs.js'
import { configSchema } from '../src/config/schema.js'
import { fieldsOf } from '../src/config/walk.js'

const page = readFileSync(fileURLToPath(new URL('../../../docs/balancer.md', import.meta.url)), 'utf8')

t.test('the configuration table in docs/balancer.md is the one the schema renders', async (t) => {
  t.ok(page.includes(TABLE_START) && page.includes(TABLE_END), 'the page has the table markers')
  t.equal(withConfigTable(page), page, 'run `npm run docs` after changing src/config/schema.ts')
})

t.test('every field is a row, with its default and flag', async (t) => {
  const table = renderConfigTable()
  const rows = table.split('\n').slice(2)
  t.equal(rows.length, fieldsOf(configSchema).length, 'one row per declared field')
  for (const [field, cells] of [
    ['`upstreams[].weight`', '| `1` |  | relative share of new clients; an integer from 1 to 10000 |'],
    ['`timeouts.clientRequest`', '| `5m` |'],
    ['`sticky.secret`', '`--sticky-secret SECRET` (or `TETHER_STICKY_SECRET`)'],
    ['`engine`', '`h1`, `undici`, `http-proxy`']
  ] as const) {
    const row = rows.find((r) => r.startsWith(`| ${field} |`))
    t.ok(row?.includes(cells), `${field}: ${row ?? 'missing'}`)
  }
})
