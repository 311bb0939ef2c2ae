// The live status page in a real browser (Debian's chromium through playwright-core), on the
// cluster `npm start` runs (on Redis, so the nodes run the near-cache and report its hit rate),
// under load from concurrent clients: the charts receive points, the
// table moves, a Drain clicked on the page (after its confirmation) changes routing, the page
// reads in a narrow window, and axe-core finds no serious or critical accessibility violation.
// The screenshots are the README's and docs/balancer.md's, checked by size and content.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BrowserContext } from 'playwright-core'
import { request } from './helpers/net.js'
import { up } from './helpers/demo-cluster.js'
import { startRedis } from './helpers/redis.js'
import { browserSkip, launchBrowser } from './helpers/browser.js'

const IMG = fileURLToPath(new URL('../docs/img/', import.meta.url))
/** The little of the page's globals the predicates read. */
interface PageGlobals { document: { querySelector (s: string): { getAttribute (n: string): string | null, textContent: string | null } | null } }

/** The node named in a counter-app answer (`{ node: { name } }`), if it is one. */
function nodeOf (body: string): string | undefined {
  try { return (JSON.parse(body) as { node?: { name?: string } }).node?.name } catch { return undefined }
}
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

t.test('the live status page under load: charts, a drain from the page, narrow window, axe', { skip: browserSkip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-status-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const redis = await startRedis(t)
  const cluster = await up(t, ['--port', '0', '--admin-port', '0', '--data-dir', join(dir, 'data'), '--store', redis.url])

  // Load: 8 clients, each with its own cookies, for at most 40 s (stopped at the end).
  const load$ = { on: true }
  let sent = 0
  let leaked = 0
  const served = new Map<string, number>()
  const client = async (): Promise<void> => {
    let cookie = ''
    const deadline = Date.now() + 40_000
    while (load$.on && Date.now() < deadline) {
      const res = await request(`${cluster.url}api/visit`, { method: 'POST', headers: cookie === '' ? {} : { cookie } }).catch(() => null)
      sent++
      if (res === null) continue
      if (res.headers['x-tether-cache'] !== undefined) leaked++
      const set = res.headers['set-cookie']
      if (set !== undefined) {
        const jar = new Map(cookie.split('; ').filter(Boolean).map((c) => [c.split('=')[0] ?? '', c]))
        for (const c of set) { const pair = c.split(';')[0] ?? ''; jar.set(pair.split('=')[0] ?? '', pair) }
        cookie = [...jar.values()].join('; ')
      }
      const node = nodeOf(res.body)
      if (node !== undefined) served.set(node, (served.get(node) ?? 0) + 1)
      // A read of the session between visits: what the near-cache serves.
      if (cookie !== '') await request(`${cluster.url}api/state`, { headers: { cookie } }).catch(() => null)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const load = Promise.all(Array.from({ length: 8 }, client))
  t.teardown(async () => { load$.on = false; await load })

  const context: BrowserContext = await launchBrowser(t, dir, { width: 1280, height: 900 })
  context.setDefaultTimeout(20_000)
  const page = context.pages()[0] ?? await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()) })
  await page.goto(cluster.statusUrl)

  // The charts receive points, and keep receiving them.
  await page.waitForSelector('body[data-live="on"]')
  const points = async (): Promise<number> => Number(await page.getAttribute('#chart-rate', 'data-points') ?? 0)
  // Predicates are functions, not text: the page's CSP forbids eval, and waitForFunction would
  // eval a string. This program's types have no DOM, hence the narrow cast.
  const chartLast = (n: number): boolean => Number((globalThis as unknown as PageGlobals).document.querySelector('#chart-rate')?.getAttribute('data-last') ?? 0) > n
  await page.waitForFunction(chartLast, 0, { timeout: 20_000 })
  t.ok(await points() >= 60, `the rate chart shows the history (${await points()} points)`)
  const last = async (): Promise<number> => Number(await page.getAttribute('#chart-rate', 'data-last') ?? 0)
  const before = await last()
  await page.waitForFunction(chartLast, before, { timeout: 10_000 })
  t.ok(await last() > before, 'the rate chart gets new points while the page is open')
  t.ok(await page.locator('#chart-rate polyline').count() >= 2, 'a total line and per-node lines')
  t.ok(await page.locator('#chart-latency polyline').count() >= 1, 'latency lines')
  // The near-cache hit rate the nodes report: a percentage in the session view, and a chart.
  const hitRateShown = (): boolean => /%$/.test((globalThis as unknown as PageGlobals).document.querySelector('td[data-cache=""]')?.textContent ?? '')
  await page.waitForFunction(hitRateShown, undefined, { timeout: 10_000 })
  t.match(await page.textContent('td[data-cache=""]'), /^\d+(\.\d)? %$/, `the near-cache hit rate is shown (${await page.textContent('td[data-cache=""]')})`)
  t.ok(await page.locator('#chart-cache polyline').count() >= 2, 'near-cache hit rate lines: all nodes and per node')
  const rates = await page.locator('[data-field="rate"]').allTextContents()
  t.ok(rates.some((r) => Number(r) > 0), `the table shows live rates (${rates.join(', ')})`)

  // Drain a node from the page: confirmed, then new clients no longer reach it.
  const node = cluster.nodes[0]!.name
  page.once('dialog', (dialog) => { t.match(dialog.message(), `Put ${node} in drain?`); void dialog.accept() })
  await page.click(`button[data-node="${node}"][data-state="drain"]`)
  await page.waitForSelector(`tr[data-node-row="${node}"] [data-field="state"]:text-is("drain")`)
  const snapshot = JSON.parse((await request(`${cluster.adminUrl}/api/nodes/${node}`)).body) as { state: string }
  t.equal(snapshot.state, 'drain', 'the admin API agrees')
  const fresh = await Promise.all(Array.from({ length: 12 }, async () => nodeOf((await request(`${cluster.url}api/visit`, { method: 'POST' })).body)))
  t.notOk(fresh.includes(node), `12 new clients avoid the drained ${node} (${fresh.join(', ')})`)
  // Dismissing the confirmation changes nothing.
  page.once('dialog', (dialog) => { void dialog.dismiss() })
  await page.click(`button[data-node="${node}"][data-state="maint"]`)
  await page.waitForTimeout(500)
  t.equal(JSON.parse((await request(`${cluster.adminUrl}/api/nodes/${node}`)).body).state, 'drain', 'a dismissed confirmation sends nothing')

  // Screenshots, checked by size and content (not pixel-exact).
  await page.waitForTimeout(2500)
  const wide = join(IMG, 'status-page.png')
  await page.screenshot({ path: wide, fullPage: true })
  t.ok(statSync(wide).size > 30_000, `${wide} has content (${statSync(wide).size} bytes)`)
  t.match(await page.textContent('h1'), 'tether-balancer')
  t.equal(await page.locator('tr[data-node-row]').count(), 3, 'three node rows on the page')

  // Accessibility: axe-core in the page, no serious or critical violation.
  // Evaluated through the DevTools protocol, which the page's CSP does not govern (an inline
  // script tag would be refused, as it should be).
  await page.evaluate(AXE)
  const violations = await page.evaluate<Array<{ id: string, impact: string | null, nodes: number }>>(
    'axe.run(document).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })))')
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  t.same(serious, [], `no serious axe violations (all: ${JSON.stringify(violations)})`)

  // A narrow window: the page does not overflow sideways (the table scrolls in its own box).
  await page.setViewportSize({ width: 400, height: 900 })
  await page.waitForTimeout(300)
  const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth')
  t.ok(overflow <= 1, `no horizontal page scroll at 400 px (overflow ${overflow}px)`)
  const narrow = join(IMG, 'status-page-narrow.png')
  await page.screenshot({ path: narrow, fullPage: true })
  t.ok(statSync(narrow).size > 15_000, `${narrow} has content`)

  t.same(errors, [], 'no script errors in the page')
  t.equal(leaked, 0, 'x-tether-cache never reached a client')
  load$.on = false
  await load
  t.ok(sent > 50, `the load sent ${sent} requests (${[...served].map(([n, c]) => `${n}: ${c}`).join(', ')})`)
})
