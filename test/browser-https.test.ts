// The demo over https in a real browser: `npm start -- --tls` (a certificate generated at
// start-up), Debian's chromium accepting that certificate. The count goes up across reloads on
// one node, the sticky cookie is `Secure`, and the page came over HTTP/2.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { up } from './helpers/demo-cluster.js'
import { browserSkip, launchBrowser } from './helpers/browser.js'

/** The little of the page's globals the predicate reads (this program's types have no DOM). */
interface PageGlobals { performance: { getEntries (): Array<{ nextHopProtocol?: string }> } }

t.test('the demo over https: counts, sticks with a Secure cookie, speaks h2', { skip: browserSkip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-browser-https-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cluster = await up(t, ['--tls', '--port', '0', '--admin-port', '0', '--data-dir', join(dir, 'data')])
  t.match(cluster.url, /^https:\/\//, 'the demo is served on https')

  const context = await launchBrowser(t, dir, { width: 900, height: 760, ignoreHTTPSErrors: true })
  context.setDefaultTimeout(15_000)
  context.setDefaultNavigationTimeout(15_000)
  const page = context.pages()[0] ?? await context.newPage()

  const counts: number[] = []
  const nodes = new Set<string>()
  const protocols: string[] = []
  for (let i = 0; i < 3; i++) {
    if (i === 0) await page.goto(cluster.url); else await page.reload()
    counts.push(Number(await page.textContent('#count')))
    nodes.add((await page.textContent('#node')) ?? '')
    protocols.push(await page.evaluate(() => (globalThis as unknown as PageGlobals).performance.getEntries()[0]?.nextHopProtocol ?? ''))
  }
  t.same(counts, [1, 2, 3], 'the count goes 1, 2, 3')
  t.equal(nodes.size, 1, 'every reload served by one node (sticky)')
  t.same(protocols, ['h2', 'h2', 'h2'], 'the page came over HTTP/2')
  const cookie = (await context.cookies(cluster.url)).find((c) => c.name === 'tether_node')
  t.ok(cookie !== undefined, 'the sticky cookie is set')
  t.equal(cookie?.secure, true, 'the sticky cookie is Secure')
  t.equal(cookie?.httpOnly, true, 'and HttpOnly')
})
