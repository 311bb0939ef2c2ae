/**
 * Debian's chromium through playwright-core, launched one way for every browser test: headless,
 * no sandbox (containers), no GPU, no background traffic, no QUIC (so that the protocol a
 * page reports is the one the balancer negotiated over TCP).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'

/** Where the browser is. */
export const CHROMIUM = '/usr/bin/chromium'

/** A tap `skip` value: false when chromium is installed, else the reason. */
export const browserSkip: false | string = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (.ci/run installs Debian's chromium)`

/** The flags every browser test starts chromium with. */
export const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'] as const

/**
 * A persistent browser context with its profile in `dir/profile`, closed at teardown.
 * `ignoreHTTPSErrors` accepts the demo's self-signed certificate.
 */
export async function launchBrowser (t: { teardown (fn: () => unknown): void }, dir: string, options: { width: number, height: number, ignoreHTTPSErrors?: boolean }): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [...BROWSER_ARGS, ...(options.ignoreHTTPSErrors === true ? ['--ignore-certificate-errors'] : [])],
    viewport: { width: options.width, height: options.height },
    ignoreHTTPSErrors: options.ignoreHTTPSErrors === true,
    timeout: 60_000
  })
  t.teardown(() => context.close())
  return context
}
