// The first thing a new user sees, in a real browser: headless Chromium (Debian's package)
// on the cluster `npm start` runs. The count survives a node put into maintenance and a node
// that dies, the page says the session moved, and the status page shows the new state.
// Screenshots go to test-artifacts/; the last one is the README's docs/img/counter.png.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, Page } from 'playwright-core'
import { request } from './helpers/net.js'
import { up } from './helpers/demo-cluster.js'
import { browserSkip, launchBrowser } from './helpers/browser.js'

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url))

t.test('failover in a real browser: sticky, then maint, then a killed node; the count carries on', { skip: browserSkip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-browser-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(ARTIFACTS, { recursive: true })

  const cluster = await up(t, ['--port', '0', '--admin-port', '0', '--data-dir', join(dir, 'data')])
  const context: BrowserContext = await launchBrowser(t, dir, { width: 900, height: 760 })
  context.setDefaultTimeout(15_000)
  context.setDefaultNavigationTimeout(15_000)
  const page = context.pages()[0] ?? await context.newPage()

  /** What the counter page shows. */
  const shown = async (p: Page): Promise<{ count: number, node: string, nodes: string[], moved: boolean, route: string }> => ({
    count: Number(await p.textContent('#count')),
    node: (await p.textContent('#node')) ?? '',
    nodes: await p.locator('#nodes li').allTextContents(),
    moved: await p.locator('#moved').count() === 1,
    route: (await p.textContent('#route')) ?? ''
  })

  await page.goto(cluster.url)
  const first = await shown(page)
  const seen = [first]
  for (let i = 0; i < 4; i++) {
    await page.reload()
    seen.push(await shown(page))
  }
  t.same(seen.map((s) => s.count), [1, 2, 3, 4, 5], 'the count goes 1, 2, 3, 4, 5')
  t.same(new Set(seen.map((s) => s.node)).size, 1, `every reload served by ${first.node} (sticky)`)
  t.same(seen.map((s) => s.route), ['new', 'sticky', 'sticky', 'sticky', 'sticky'], 'the balancer routed by its sticky cookie')
  t.notOk(seen.some((s) => s.moved), 'no move yet')
  await page.screenshot({ path: join(ARTIFACTS, 'browser-1-sticky.png') })

  // Maintenance through the admin API: the node takes no traffic at all, sticky or not.
  const sticky = first.node
  const patch = await request(`${cluster.adminUrl}/api/nodes/${sticky}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'maint' }) })
  t.equal(patch.status, 200, `${sticky} put into maint`)
  await page.reload()
  const afterMaint = await shown(page)
  t.equal(afterMaint.count, 6, 'the count continues at 6: no reset, no logout')
  t.not(afterMaint.node, sticky, `served by another node (${afterMaint.node})`)
  t.ok(afterMaint.moved, 'the page says the session moved')
  t.same(afterMaint.nodes, [sticky, afterMaint.node], 'the session lists both nodes')
  await page.screenshot({ path: join(ARTIFACTS, 'browser-2-moved-maint.png') })
  await page.reload()
  const settled = await shown(page)
  t.same([settled.count, settled.node, settled.moved, settled.route], [7, afterMaint.node, false, 'sticky'], 'the rewritten cookie sticks to the new node')

  // A crash: SIGKILL the process group of the node now serving the session.
  const victim = cluster.nodes.find((n) => n.name === settled.node)!
  process.kill(-victim.pid, 'SIGKILL')
  await page.reload()
  const afterKill = await shown(page)
  t.equal(afterKill.count, 8, 'the count continues at 8 after the node died')
  t.not(afterKill.node, victim.name, 'served by a live node')
  t.not(afterKill.node, sticky, 'and not by the node in maint')
  t.ok(afterKill.moved, 'the page says the session moved')
  t.same(afterKill.nodes, [sticky, victim.name, afterKill.node], 'three nodes have served this session')
  await page.screenshot({ path: join(ARTIFACTS, 'browser-3-moved-killed.png') })
  // The README's picture of the journey: the node that answered, the route, the nodes so far.
  await page.screenshot({ path: fileURLToPath(new URL('../docs/img/counter.png', import.meta.url)) })

  // The status page shows both new states; its buttons call the admin API.
  const status = await context.newPage()
  await status.goto(cluster.statusUrl)
  const cell = (node: string, field: string) => status.locator(`tr[data-node-row="${node}"] [data-field="${field}"]`)
  t.equal((await cell(sticky, 'state').textContent())?.trim(), 'maint', `the status page shows ${sticky} in maint`)
  // Active checks (1 s interval, fall 2) or the passive check take the dead node down; the page
  // is reloaded until it shows that, within a bound.
  const deadline = Date.now() + 15_000
  let health = (await cell(victim.name, 'health').textContent())?.trim() ?? ''
  while (!health.startsWith('down') && Date.now() < deadline) {
    await status.waitForTimeout(250)
    await status.reload()
    health = (await cell(victim.name, 'health').textContent())?.trim() ?? ''
  }
  t.match(health, /^down/, `the status page shows ${victim.name} down`)
  await status.screenshot({ path: join(ARTIFACTS, 'browser-4-status.png'), fullPage: true })
  // The page asks for a confirmation before it changes a node.
  status.once('dialog', (dialog) => { void dialog.accept() })
  await status.click(`button[data-node="${sticky}"][data-state="active"]`)
  // The button's script sends the PATCH and refreshes the table; wait (bounded) for the new row.
  await status.waitForSelector(`tr[data-node-row="${sticky}"] [data-field="state"]:text-is("active")`)
  t.equal((await cell(sticky, 'state').textContent())?.trim(), 'active', `the Activate button brought ${sticky} back to active`)
})
