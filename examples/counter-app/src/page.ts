/** The counter page: plain HTML with inline styles, no scripts and no external assets. */

/**
 * What one visit shows: the same facts the JSON routes return.
 *
 * @example
 * ```ts
 * const facts: VisitFacts = { count: 3, node: { name: 'node1', port: 3001, pid: 4242 }, session: 'q3Zx9kLm', nodes: ['node1'], moved: false, route: 'sticky', store: 'sqlite:./sessions.db' }
 * ```
 */
export interface VisitFacts {
  /** Visits counted in this session, this one included. */
  readonly count: number
  /** The node that served this request. */
  readonly node: { readonly name: string, readonly port: number, readonly pid: number }
  /** The first characters of the session id (never the whole id: it is a bearer secret). */
  readonly session: string
  /** Every node that has served this session, in order of first visit. */
  readonly nodes: readonly string[]
  /** The balancer moved this session here (its sticky node was down or in maintenance). */
  readonly moved: boolean
  /** How the balancer routed the request (`sticky`, `new`, `moved`), when behind one. */
  readonly route: string | null
  /** The session store, without credentials. */
  readonly store: string
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

function esc (value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/**
 * Render the counter page.
 *
 * @example
 * ```ts
 * reply.type('text/html').send(renderPage(facts))
 * ```
 */
export function renderPage (facts: VisitFacts): string {
  const moved = facts.moved
    ? '<p class="moved" id="moved">This session moved to this node: its previous node is down or in maintenance. The count carried over.</p>'
    : ''
  const nodes = facts.nodes.map((n) => `<li${n === facts.node.name ? ' class="here"' : ''}>${esc(n)}</li>`).join('')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tether counter · ${esc(facts.count)} · ${esc(facts.node.name)}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  main { max-width: 40rem; margin: 3rem auto; padding: 2rem; background: #fff; border-radius: 12px; box-shadow: 0 2px 12px #0001; }
  h1 { margin: 0 0 .25rem; font-size: 1.1rem; color: #5b6475; font-weight: 600; }
  .count { font-size: 5rem; font-weight: 700; line-height: 1; margin: .5rem 0 1rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0 0 1.5rem; }
  dt { color: #5b6475; }
  dd { margin: 0; font-family: ui-monospace, monospace; }
  .moved { background: #fff4d6; border: 1px solid #f0c24b; padding: .75rem 1rem; border-radius: 8px; }
  ol { margin: 0; padding-left: 1.25rem; }
  li.here { font-weight: 700; }
  a.button, button { display: inline-block; padding: .5rem 1rem; border-radius: 8px; border: 1px solid #2f6fed; background: #2f6fed; color: #fff; text-decoration: none; font: inherit; cursor: pointer; }
  form { display: inline; }
  button.secondary { background: #fff; color: #2f6fed; }
</style>
</head>
<body>
<main>
  <h1>Visits in this session</h1>
  <div class="count" id="count">${esc(facts.count)}</div>
  ${moved}
  <dl>
    <dt>Served by</dt><dd id="node">${esc(facts.node.name)}</dd>
    <dt>Port · pid</dt><dd><span id="port">${esc(facts.node.port)}</span> · <span id="pid">${esc(facts.node.pid)}</span></dd>
    <dt>Session</dt><dd id="session">${esc(facts.session)}…</dd>
    <dt>Nodes so far</dt><dd><span id="nodes-count">${esc(facts.nodes.length)}</span><ol id="nodes">${nodes}</ol></dd>
    <dt>Balancer route</dt><dd id="route">${esc(facts.route ?? 'direct (no balancer)')}</dd>
    <dt>Store</dt><dd id="store">${esc(facts.store)}</dd>
  </dl>
  <a class="button" href="/">Reload</a>
  <form method="post" action="/reset"><button class="secondary" type="submit">Start a new session</button></form>
</main>
</body>
</html>
`
}
