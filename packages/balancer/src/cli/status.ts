/**
 * `tether-balancer status`: the status page's node table in a terminal, read from a running
 * balancer's admin API (`GET /api/nodes` and `GET /api/stats`), for servers without a browser.
 *
 *   tether-balancer status [--admin URL|[HOST:]PORT] [--admin-token TOKEN] [--json]
 *
 * The token may also come from `TETHER_ADMIN_TOKEN`, as for the balancer itself.
 */
import { parseArgs } from 'node:util'
import { TetherBalancerError } from '../errors.js'
import type { NodeSnapshot } from '../pool/snapshot.js'
import type { StatsReport } from '../admin/timeline.js'

/** The `status` command's usage text. */
export const STATUS_USAGE = `Usage: tether-balancer status [options]

Print the node table of a running balancer, read from its admin API.

Options:
  --admin URL|[HOST:]PORT  the admin API (default http://127.0.0.1:9000; a bare port is on 127.0.0.1)
  --admin-token TOKEN      the admin token (env TETHER_ADMIN_TOKEN)
  --json                   print the API's JSON instead of a table
  -h, --help               this text`

/** Where the admin API is, from `--admin`. */
export function adminUrl (value: string | undefined): URL {
  const raw = value ?? '127.0.0.1:9000'
  if (/^https?:\/\//i.test(raw)) return new URL(raw.endsWith('/') ? raw : `${raw}/`)
  if (/^\d+$/.test(raw)) return new URL(`http://127.0.0.1:${raw}/`)
  return new URL(`http://${raw}/`)
}

function cell (v: number | null): string {
  return v === null ? '-' : String(v)
}

/** A near-cache hit rate (0–1) as a percentage; `-` when the node reported no reads. */
function hitRate (rate: number | null | undefined): string {
  return rate === null || rate === undefined ? '-' : `${(rate * 100).toFixed(1)}%`
}

/**
 * The node table as text, one line per node, columns aligned.
 *
 * @example
 * ```ts
 * process.stdout.write(formatStatus(nodes, stats))
 * ```
 */
export function formatStatus (nodes: readonly NodeSnapshot[], stats: StatsReport): string {
  const header = ['NODE', 'STATUS', 'STATE', 'HEALTH', 'WEIGHT', 'ACTIVE', 'REQ/S', 'P50', 'P95', 'P99', '2XX', '3XX', '4XX', '5XX', 'ERRORS', 'CACHE HIT', 'LAST CHECK']
  const rows = nodes.map((n) => {
    const s = stats.summary.nodes[n.name]
    const check = n.lastCheck === null ? '-' : n.lastCheck.ok ? `ok ${n.lastCheck.status ?? ''}`.trim() : `fail ${n.lastCheck.error ?? ''}`.trim()
    return [n.name, n.status, n.state, n.health, String(n.weight), String(n.activeConnections), String(s?.rate ?? 0),
      cell(s?.p50 ?? null), cell(s?.p95 ?? null), cell(s?.p99 ?? null),
      String(s?.responses['2xx'] ?? 0), String(s?.responses['3xx'] ?? 0), String(s?.responses['4xx'] ?? 0), String(s?.responses['5xx'] ?? 0),
      String(n.errors), hitRate(s?.cacheHitRate), check]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cols: string[]): string => cols.map((c, i) => i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  const t = stats.totals
  const moves = Object.entries(t.moves).filter(([, n]) => n > 0).map(([cause, n]) => `${cause} ${n}`).join(', ')
  return [
    line(header),
    ...rows.map(line),
    '',
    `routes: sticky ${t.routes.sticky}, new ${t.routes.new}, moved ${t.routes.moved}${moves === '' ? '' : ` (${moves})`}; retries ${t.retries}; near-cache hit rate ${hitRate(stats.summary.total.cacheHitRate)}; latency and cache hits over the last 60 s, req/s over the last 10 s`
  ].join('\n') + '\n'
}

async function getJson (base: URL, path: string, token: string | undefined): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(new URL(path, base), { headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    throw new TetherBalancerError('TETHER_ERR_ADMIN_UNREACHABLE', `cannot reach the admin API at ${base.href}: ${(err as Error).message}`, { cause: err })
  }
  if (!res.ok) {
    const body = await res.text()
    let why = body.trim().slice(0, 300)
    try {
      const { error } = JSON.parse(body) as { error: { code: string, message: string } }
      why = `${error.code}: ${error.message}`
    } catch { /* not the admin API's JSON: show the text */ }
    throw new TetherBalancerError('TETHER_ERR_ADMIN_UNREACHABLE', `the admin API at ${base.href} answered ${res.status} (${why})`)
  }
  return await res.json()
}

/**
 * Run `tether-balancer status` with the arguments after `status`; resolves to the text to print.
 *
 * @example
 * ```ts
 * process.stdout.write(await runStatus(['--admin', '9000'], process.env))
 * ```
 */
export async function runStatus (args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  let values
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { admin: { type: 'string' }, 'admin-token': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true
    }))
  } catch (err) {
    throw new TetherBalancerError('TETHER_ERR_CLI_USAGE', `${(err as Error).message}\n${STATUS_USAGE}`)
  }
  if (values.help === true) return `${STATUS_USAGE}\n`
  let base: URL
  try {
    base = adminUrl(values.admin)
  } catch {
    throw new TetherBalancerError('TETHER_ERR_CLI_USAGE', `--admin ${JSON.stringify(values.admin)} is not a URL or [HOST:]PORT`)
  }
  const token = values['admin-token'] ?? env.TETHER_ADMIN_TOKEN
  const [nodes, stats] = await Promise.all([getJson(base, 'api/nodes', token), getJson(base, `api/stats?since=${Math.floor(Date.now() / 1000)}`, token)])
  if (values.json === true) return `${JSON.stringify({ ...(nodes as object), stats }, null, 2)}\n`
  return formatStatus((nodes as { nodes: NodeSnapshot[] }).nodes, stats as StatsReport)
}
