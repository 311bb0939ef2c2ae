/**
 * The near-cache tests' cluster: a private redis-server, app processes running
 * `fixtures/near-cache-app.mjs` (the near-cache on; each counts its own store loads) and
 * tether-balancer in front of them, with sticky cookies and the admin API. Everything is
 * stopped at the end of `t`.
 */
import { createBalancer } from '@tether/balancer'
import type { Balancer } from '@tether/balancer'
import { startRedis } from './redis.js'
import type { RedisServer } from './redis.js'
import { startApp } from './apps.js'
import type { AppProcess } from './apps.js'

interface Teardownable { teardown (fn: () => unknown): void }

export interface NearCacheCluster {
  readonly redis: RedisServer
  readonly apps: readonly AppProcess[]
  readonly byName: ReadonlyMap<string, AppProcess>
  readonly balancer: Balancer
  /** The balancer's URL, without a trailing slash. */
  readonly front: string
  /** The admin API's URL, without a trailing slash. */
  readonly admin: string
}

/**
 * Start the cluster: one app per name (one at a time: several processes compiling at once on a
 * loaded 2-core machine can miss the start-up bound), `env` added to each app's environment.
 *
 * @example
 * ```ts
 * const { front, admin, byName } = await nearCacheCluster(t, ['a', 'b', 'c'], 'ncr:')
 * ```
 */
export async function nearCacheCluster (t: Teardownable, names: readonly string[], prefix: string, env: Record<string, string> = {}): Promise<NearCacheCluster> {
  const redis = await startRedis(t)
  const apps: AppProcess[] = []
  for (const name of names) apps.push(await startApp(t, '../fixtures/near-cache-app.mjs', { REDIS_URL: redis.url, PREFIX: prefix, NODE_NAME: name, ...env }))
  const balancer = createBalancer({
    listen: '127.0.0.1:0',
    algorithm: 'weighted-round-robin',
    upstreams: apps.map((a, i) => ({ url: a.url, name: names[i]! })),
    sticky: { secret: 'sticky-secret-0123456789-abcdefghijklmnopq' },
    admin: { listen: '127.0.0.1:0' },
    log: { level: 'error' }
  })
  const bound = await balancer.listen()
  t.teardown(() => balancer.close())
  return {
    redis,
    apps,
    byName: new Map(names.map((n, i) => [n, apps[i]!])),
    balancer,
    front: `http://127.0.0.1:${bound.port}`,
    admin: `http://127.0.0.1:${bound.adminPort!}`
  }
}
