// Prints benchmark rows as a Markdown table, so the output can be pasted into docs/benchmarks.md.
export function fmt (n, digits = 0) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–'
  if (typeof n !== 'number') return String(n)
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

/**
 * @param {string} title
 * @param {string[]} columns
 * @param {Array<Array<unknown>>} rows
 */
export function table (title, columns, rows) {
  const lines = [`### ${title}`, '', `| ${columns.join(' | ')} |`, `|${columns.map(() => '---').join('|')}|`]
  for (const r of rows) lines.push(`| ${r.map((c) => (typeof c === 'number' ? fmt(c) : c ?? '–')).join(' | ')} |`)
  return lines.join('\n') + '\n'
}
