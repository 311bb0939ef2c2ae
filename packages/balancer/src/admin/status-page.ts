/**
 * The HTML status page, in the spirit of HAProxy's stats page: one table row per node, buttons
 * to drain, put in maint and activate, a weight field. Rendered on the server so it reads
 * without JavaScript; a small inline script (allowed by a hash in the CSP, no external assets)
 * sends the admin API calls and refreshes the page.
 */
import { createHash } from 'node:crypto'
import { infoOf } from '../config/fields.js'
import { nodeWeight } from '../config/schema.js'
import type { NodeSnapshot } from '../pool/snapshot.js'

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

const SCRIPT = `
document.addEventListener('click', async function (event) {
  var button = event.target.closest('button[data-node]');
  if (!button) return;
  var row = button.closest('tr');
  var body = {};
  if (button.dataset.state) body.state = button.dataset.state;
  if (button.dataset.weight !== undefined) body.weight = Number(row.querySelector('input[name=weight]').value);
  button.disabled = true;
  var res = await fetch('api/nodes/' + encodeURIComponent(button.dataset.node), {
    method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
  });
  if (!res.ok) {
    var problem = await res.json().catch(function () { return { error: { message: res.statusText } }; });
    document.getElementById('message').textContent = problem.error.message;
  }
  location.reload();
});
var refresh = document.getElementById('refresh');
refresh.checked = sessionStorage.getItem('tether-refresh') !== 'off';
refresh.addEventListener('change', function () { sessionStorage.setItem('tether-refresh', refresh.checked ? 'on' : 'off'); });
setInterval(function () { if (refresh.checked) location.reload(); }, 5000);
`

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

function row (n: NodeSnapshot): string {
  const name = escapeHtml(n.name)
  const button = (state: string, label: string): string =>
    `<button type="button" data-node="${name}" data-state="${state}"${n.state === state ? ' disabled' : ''}>${label}</button>`
  return `<tr class="status-${n.status}" data-node-row="${name}">
<td><strong>${name}</strong>${n.backup ? ' <span class="tag">backup</span>' : ''}<br><span class="muted">${escapeHtml(n.url)}</span></td>
<td><span class="badge ${n.status}" data-field="status">${n.status}</span></td>
<td data-field="state">${n.state}</td>
<td data-field="health" class="${n.health === 'up' ? 'ok' : 'bad'}">${n.health}${n.passiveDownUntil === null ? '' : ' <span class="muted">(passive)</span>'}</td>
<td data-field="weight"><input name="weight" type="number" min="${MIN_WEIGHT}" max="${MAX_WEIGHT}" value="${n.weight}" aria-label="weight of ${name}"> <button type="button" data-node="${name}" data-weight>Set</button></td>
<td data-field="active">${n.activeConnections}</td>
<td data-field="requests">${n.requests}</td>
<td data-field="errors">${n.errors}</td>
<td data-field="last-check">${lastCheck(n)}</td>
<td class="actions">${button('active', 'Activate')} ${button('drain', 'Drain')} ${button('maint', 'Maint')}</td>
</tr>`
}

/**
 * Render the status page.
 *
 * @example
 * ```ts
 * const html = renderStatusPage(balancer.nodes(), { algorithm: 'weighted-round-robin', engine: 'h1', sticky: true, listen: ':8080', startedAt: new Date() })
 * ```
 */
export function renderStatusPage (nodes: readonly NodeSnapshot[], info: StatusPageInfo): string {
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
button { cursor: pointer; } button:disabled { cursor: default; opacity: .5; }
#message { color: #b91c1c; min-height: 1.2em; }
</style>
</head>
<body>
<h1>tether-balancer</h1>
<p class="muted">listening on ${escapeHtml(info.listen)} · algorithm ${escapeHtml(info.algorithm)} · engine ${escapeHtml(info.engine)} · sticky cookies ${info.sticky ? 'on' : 'off'} · ${up} of ${nodes.length} nodes up · started ${escapeHtml(info.startedAt.toISOString())}
· <label><input type="checkbox" id="refresh"> refresh every 5 s</label></p>
<p id="message" role="status"></p>
<table>
<thead><tr><th>Node</th><th>Status</th><th>State</th><th>Health</th><th>Weight</th><th>Active</th><th>Requests</th><th>Errors</th><th>Last check</th><th>Actions</th></tr></thead>
<tbody>
${nodes.map(row).join('\n')}
</tbody>
</table>
<p class="muted">JSON: <a href="api/nodes">api/nodes</a> · Prometheus: <a href="metrics">metrics</a></p>
<script>${SCRIPT}</script>
</body>
</html>
`
}
