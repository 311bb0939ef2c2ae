/**
 * The configuration table of docs/balancer.md, rendered from the schema. `npm run docs` writes
 * it between the markers; `test/docs.test.ts` fails when the page and the schema disagree.
 */
import { fieldsOf, type DeclaredField } from './walk.js'
import { formatDuration } from './fields.js'
import { configSchema } from './schema.js'

/** The markers around the generated table in docs/balancer.md. */
export const TABLE_START = '<!-- config-table: generated from packages/balancer/src/config/schema.ts by `npm run docs`; test/docs.test.ts checks it -->'
export const TABLE_END = '<!-- /config-table -->'

function fieldName (path: readonly string[]): string {
  return path.join('.').replaceAll('.[]', '[]')
}

function shownDefault (f: DeclaredField): string {
  if (f.info.shown !== undefined) return f.info.shown
  const d = f.defaultValue
  if (d === undefined) return f.optional ? 'none' : 'required'
  if (f.info.kind === 'duration' && typeof d === 'number') return `\`${formatDuration(d)}\``
  if (f.info.kind === 'section') return ''
  return `\`${typeof d === 'string' ? d : JSON.stringify(d)}\``
}

function flagOf (f: DeclaredField): string {
  const flag = f.info.flag
  if (flag === undefined) return ''
  const env = flag.env === undefined ? '' : ` (or \`${flag.env}\`)`
  return `\`--${flag.name}${flag.arg === undefined ? '' : ` ${flag.arg}`}\`${env}`
}

function meaning (f: DeclaredField): string {
  const range = f.info.range === undefined ? '' : `; an integer from ${f.info.range[0]} to ${f.info.range[1]}`
  const choices = f.choices === undefined ? '' : `: ${f.choices.map((c) => `\`${c}\``).join(', ')}`
  return `${f.info.doc}${f.info.doc.endsWith(':') ? '' : `${range}${choices}`}`
}

/**
 * The Markdown table: one row per field, with its default, flag and meaning.
 *
 * @example
 * ```ts
 * renderConfigTable().split('\n')[0] // '| field | default | flag | meaning |'
 * ```
 */
export function renderConfigTable (): string {
  const rows = fieldsOf(configSchema).map((f) => `| \`${fieldName(f.path)}\` | ${shownDefault(f)} | ${flagOf(f)} | ${meaning(f).replaceAll('|', '\\|')} |`)
  return ['| field | default | flag | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

/**
 * `page` with the text between the table markers replaced by a fresh table.
 *
 * @example
 * ```ts
 * writeFileSync(file, withConfigTable(readFileSync(file, 'utf8')))
 * ```
 */
export function withConfigTable (page: string): string {
  const start = page.indexOf(TABLE_START)
  const end = page.indexOf(TABLE_END)
  if (start === -1 || end < start) throw new Error('the configuration table markers are missing')
  return `${page.slice(0, start + TABLE_START.length)}\n${renderConfigTable()}\n${page.slice(end)}`
}
