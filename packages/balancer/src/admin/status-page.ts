/**
 * The HTML status page, in the spirit of HAProxy's stats page: one table row per node (state,
 * health, weight, in-flight requests, requests/s, latency percentiles, answers by class, bytes,
 * the last check), buttons to drain, put in maint and activate, a weight field; charts of the
 * last 15 minutes (rate, p99 latency, errors, routes, near-cache hit rate) and the session view
 * (routes, moves by cause, and the near-cache hit rate the app nodes report). Rendered on the server so the table reads without JavaScript; the inline script
 * (`status-script.ts`, allowed by its hash in the CSP, no external assets) sends the admin API
 * calls and keeps the page live.
 */
import { createHash } from 'node:crypto'
import { infoOf } from '../config/fields.js'
import { nodeWeight } from '../config/schema.js'
import type { NodeSnapshot } from '../pool/snapshot.js'
import { STATUS_SCRIPT as SCRIPT } from './status-script.js'
import { MOVE_CAUSES, type NodeSummary, type StatsReport } from './timeline.js'

// The weight field's bounds, as the configuration declares them.
const [MIN_WEIGHT, MAX_WEIGHT] = infoOf(nodeWeight)?.range ?? [1, 1]

/** Facts shown in the page header. */
export interface StatusPageInfo {
  readonly algorithm: string
  readonly engine: string
  readonly sticky: boolean
  readonly listen: string
  readonly startedAt: Date
}

/** CSP hash of the inline script: the only script the page may run. */
export const STATUS_PAGE_SCRIPT_HASH = `sha256-${createHash('sha256').update(SCRIPT).digest('base64')}`

/** Headers the page is served with. */
export const STATUS_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; script-src '${STATUS_PAGE_SCRIPT_HASH}'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer'
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escape text for HTML content and attribute values. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)
}

function lastCheck (node: NodeSnapshot): string {
  const c = node.lastCheck
  if (c === null) return '<span class="muted">none</span>'
  const what = c.ok ? `OK ${c.status ?? ''}` : `FAIL ${escapeHtml(c.error ?? '')}`
  return `<span class="${c.ok ? 'ok' : 'bad'}">${what}</span> <span class="muted">${escapeHtml(c.at.slice(11, 19))}Z, ${c.durationMs} ms</span>`
}

function ms (v: number | null): string {
  return v === null ? '–' : String(v)
}

function bytes (n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1073741824) return `${(n / 1048576).toFixed(1)} MiB`
  return `${(n / 1073741824).toFixed(2)} GiB`
}

/** A near-cache hit rate (0–1) as a percentage, or a dash when the nodes reported no reads. */
function percent (rate: number | null | undefined): string {
  return rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(1)} %`
}

function row (n: NodeSnapshot, s: NodeSummary | undefined): string {
  const name = escapeHtml(n.name)
  const button = (state: string, label: string): string =>
    `<button type="button" data-node="${name}" data-state="${state}"${n.state === state ? ' disabled' : ''}>${label}</button>`
  return `<tr class="status-${n.status}" data-node-row="${name}">
<td><strong>${name}</strong>${n.backup ? ' <span class="tag">backup</span>' : ''}<br><span class="muted">${escapeHtml(n.url)}</span></td>
<td><span class="badge ${n.status}" data-field="status">${n.status}</span></td>
<td data-field="state">${n.state}</td>
<td data-field="health" class="${n.health === 'up' ? 'ok' : 'bad'}">${n.health}${n.passiveDownUntil === null ? '' : ' <span class="muted">(passive)</span>'}</td>
<td data-field="weight"><input name="weight" type="number" min="${MIN_WEIGHT}" max="${MAX_WEIGHT}" value="${n.weight}" aria-label="weight of ${name}"> <button type="button" data-node="${name}" data-weight>Set</button></td>
<td><span data-field="active">${n.activeConnections}</span>${n.maxConn > 0 ? ` <span class="muted">/ ${n.maxConn}</span>` : ''}<span class="bad" data-field="queued">${n.queued > 0 ? ` +${n.queued} queued` : ''}</span></td>
<td data-field="rate">${s?.rate ?? 0}</td>
<td data-field="latency">${ms(s?.p50 ?? null)} / ${ms(s?.p95 ?? null)} / ${ms(s?.p99 ?? null)}</td>
<td data-field="classes">${s === undefined ? '0 / 0 / 0 / 0' : `${s.responses['2xx']} / ${s.responses['3xx']} / ${s.responses['4xx']} / ${s.responses['5xx']}`}</td>
<td data-field="requests">${n.requests}</td>
<td data-field="errors">${n.errors}</td>
<td data-field="bytes">${bytes(s?.bytesOut ?? 0)}</td>
<td data-field="last-check">${lastCheck(n)}</td>
<td class="actions">${button('active', 'Activate')} ${button('drain', 'Drain')} ${button('maint', 'Maint')}</td>
</tr>`
}

/**
 * Render the status page.
 *
 * @example
 * ```ts
 * const html = renderStatusPage(balancer.nodes(), { algorithm: 'weighted-round-robin', engine: 'h1', sticky: true, listen: ':8080', startedAt: new Date() }, report.summary, report.totals)
 * ```
 */
function chart (id: string, title: string): string {
  return `<figure class="chart">
<figcaption>${title} <span class="legend" id="legend-${id}"></span></figcaption>
<svg id="chart-${id}" viewBox="0 0 600 150" preserveAspectRatio="none" role="img" aria-label="${title}, last 15 minutes"></svg>
</figure>`
}

export function renderStatusPage (nodes: readonly NodeSnapshot[], info: StatusPageInfo, summary: StatsReport['summary'] | null = null, totals: StatsReport['totals'] | null = null): string {
  const up = nodes.filter((n) => n.status === 'up' || n.status === 'drain').length
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tether-balancer status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #f7f8fa; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
.muted { color: #6b7280; font-size: .85em; }
table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
th, td { padding: .5rem .6rem; border-bottom: 1px solid #e5e7eb; text-align: left; vertical-align: top; }
th { background: #eef0f4; font-weight: 600; }
.badge { padding: .1rem .5rem; border-radius: 1rem; font-weight: 600; font-size: .85em; }
.badge.up { background: #d1fae5; color: #065f46; } .badge.drain { background: #fef3c7; color: #92400e; }
.badge.down { background: #fee2e2; color: #991b1b; } .badge.maint { background: #e5e7eb; color: #374151; }
.ok { color: #047857; } .bad { color: #b91c1c; }
.tag { font-size: .75em; background: #e0e7ff; color: #3730a3; padding: 0 .4rem; border-radius: .3rem; }
input[name=weight] { width: 4.5rem; }
.scroll { overflow-x: auto; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(320px, 100%), 1fr)); gap: 1rem; margin: 1rem 0; }
.chart { margin: 0; background: #fff; padding: .5rem; box-shadow: 0 1px 2px #0002; }
.chart { min-width: 0; } .chart svg { width: 100%; height: 150px; display: block; }
.chart figcaption { font-weight: 600; margin-bottom: .25rem; }
.legend { font-weight: 400; font-size: .85em; }
.legend i { display: inline-block; width: .8em; height: .8em; margin: 0 .25em 0 .5em; border-radius: .2em; }
.axis { stroke: #9ca3af; } .tick { font-size: 10px; fill: #4b5563; text-anchor: end; } .tick.start { text-anchor: start; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
.sessions td, .sessions th { text-align: right; } .sessions th:first-child { text-align: left; }
button { cursor: pointer; } button:disabled { cursor: default; opacity: .5; }
#message { min-height: 1.2em; }
</style>
</head>
<body>
<header><h1>tether-balancer</h1>
<p class="muted">listening on ${escapeHtml(info.listen)} · algorithm ${escapeHtml(info.algorithm)} · engine ${escapeHtml(info.engine)} · sticky cookies ${info.sticky ? 'on' : 'off'} · ${up} of ${nodes.length} nodes up · started ${escapeHtml(info.startedAt.toISOString())}
· <label><input type="checkbox" id="live"> live (every 2 s)</label></p>
<p id="message" role="status"></p>
</header>
<main>
<div class="scroll">
<table>
<caption class="muted">Active: requests in flight (/ maxConn, + queued); req/s over the last 10 s; latency p50 / p95 / p99 (ms, to the node's response head) over the last 60 s; answers 2xx / 3xx / 4xx / 5xx, requests, errors and bytes since start</caption>
<thead><tr><th scope="col">Node</th><th scope="col">Status</th><th scope="col">State</th><th scope="col">Health</th><th scope="col">Weight</th><th scope="col">Active</th><th scope="col">req/s</th><th scope="col">Latency</th><th scope="col">2xx / 3xx / 4xx / 5xx</th><th scope="col">Requests</th><th scope="col">Errors</th><th scope="col">Bytes out</th><th scope="col">Last check</th><th scope="col">Actions</th></tr></thead>
<tbody>
${nodes.map((n) => row(n, summary?.nodes[n.name])).join('\n')}
</tbody>
</table>
</div>
<h2>Last 15 minutes</h2>
<div class="charts">
${chart('rate', 'Requests per second')}
${chart('latency', 'p99 latency (ms)')}
${chart('errors', 'Errors per second (5xx and the balancer\'s own)')}
${chart('routes', 'Routes per second')}
${chart('cache', 'Near-cache hit rate (%)')}
</div>
<h2>Sessions</h2>
<div class="scroll">
<table class="sessions">
<caption class="muted">How requests found their node since start, and why sessions moved</caption>
<thead><tr><th scope="col">route</th>${(['sticky', 'new', 'moved'] as const).map((r) => `<th scope="col">${r}</th>`).join('')}<th scope="col">moved because</th>${MOVE_CAUSES.map((c) => `<th scope="col">${c}</th>`).join('')}</tr></thead>
<tbody><tr><th scope="row">requests</th>${(['sticky', 'new', 'moved'] as const).map((r) => `<td data-route="${r}">${totals?.routes[r] ?? 0}</td>`).join('')}<td></td>${MOVE_CAUSES.map((c) => `<td data-move="${c}">${totals?.moves[c] ?? 0}</td>`).join('')}</tr></tbody>
</table>
</div>
<div class="scroll">
<table class="sessions">
<caption class="muted">Near-cache hit rate over the last 60 s: the share of session reads each app node served from its near-cache, as it reports them in <code>x-tether-cache</code> (– when a node reports none)</caption>
<thead><tr><th scope="col">near-cache</th><th scope="col">all nodes</th>${nodes.map((n) => `<th scope="col">${escapeHtml(n.name)}</th>`).join('')}</tr></thead>
<tbody><tr><th scope="row">hit rate</th><td data-cache="">${percent(summary?.total.cacheHitRate)}</td>${nodes.map((n) => `<td data-cache="${escapeHtml(n.name)}">${percent(summary?.nodes[n.name]?.cacheHitRate)}</td>`).join('')}</tr></tbody>
</table>
</div>
</main>
<footer><p class="muted">JSON: <a href="api/nodes">api/nodes</a> · <a href="api/stats">api/stats</a> · Prometheus: <a href="metrics">metrics</a></p></footer>
<script>${SCRIPT}</script>
</body>
</html>
`
}
