/**
 * The chaos suite's cluster: a private redis-server (AOF on, `appendfsync always`, on a free
 * port, in a temporary directory), three counter-app processes on it, and the real balancer
 * (`@tether/balancer`, in this process) in front, with active checks, passive checks and a
 * per-try timeout. Every process is started here and stopped by pid at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createBalancer, type Balancer, type BalancerConfig } from '@tether/balancer'
import { Redis } from 'ioredis'
import { childEnv, freePort, request, waitFor } from '../helpers/net.js'
import { kill as killChild, reap } from '../helpers/reaper.js'

const SERVER = fileURLToPath(new URL('../../examples/counter-app/dist/server.js', import.meta.url))
const SECRET = 'chaos-suite-secret-0123456789abcdef'

interface Teardownable { teardown (fn: () => unknown): void }

/** One counter-app process. */
export interface AppNode {
  readonly name: string
  readonly port: number
  readonly url: string
  pid: number
  /** SIGKILL it (a crash). */
  crash (): Promise<void>
  /** Start it again on the same port; resolves once it answers /health. */
  restart (): Promise<void>
  signal (sig: NodeJS.Signals): void
  /** Resolves when the running process exits (at once when it has). */
  exited (): Promise<void>
}

export interface ChaosCluster {
  readonly balancer: Balancer
  readonly url: string
  readonly nodes: readonly AppNode[]
  readonly redisPort: number
  /** An admin connection to the private Redis. */
  readonly redis: Redis
  /** SIGKILL redis-server. */
  stopRedis (): Promise<void>
  /** Start it again on the same port and directory (it loads its AOF when that is on). */
  startRedis (aof: boolean): Promise<void>
  health (name: string): string | undefined
  /** The balancer's configuration with only `names` as upstreams (for reloads). */
  configWith (names: readonly string[], weight?: number): BalancerConfig
}

async function spawnApp (name: string, port: number, store: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [SERVER, '--port', String(port), '--host', '127.0.0.1', '--node-name', name, '--store', store], {
    // SHUTDOWN_DELAY: on SIGTERM /health answers 503 for longer than the balancer's mark-down
    // (fall 2 × interval 500 ms + timeout 400 ms) before the port closes.
    env: childEnv({ SESSION_SECRET: SECRET, LOG_LEVEL: 'error', TRUST_PROXY: '127.0.0.1,::1', SHUTDOWN_DELAY: '1500' }),
    stdio: ['ignore', 'ignore', 'inherit']
  })
  reap(child)
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`)
    try { return (await request(`http://127.0.0.1:${port}/health`, { timeoutMs: 1000 })).status === 200 } catch { return false }
  }, 60_000, `counter-app ${name} on port ${port}`)
  return child
}

/** Start the whole cluster; everything is stopped at teardown. */
export async function startCluster (t: Teardownable): Promise<ChaosCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-chaos-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const redisPort = await freePort()
  let redisChild: ChildProcess | undefined
  const startRedis = async (aof: boolean): Promise<void> => {
    const args = ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', aof ? 'yes' : 'no', '--appendfsync', 'always', '--protected-mode', 'yes']
    redisChild = spawn('redis-server', args, { stdio: 'ignore' })
    reap(redisChild)
    await waitFor(async () => {
      const probe = new Redis({ port: redisPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      probe.on('error', () => {})
      try { await probe.connect(); return (await probe.ping()) === 'PONG' } catch { return false } finally { probe.disconnect() }
    }, 20_000, `redis-server on port ${redisPort}`)
  }
  const stopRedis = async (): Promise<void> => {
    const c = redisChild
    redisChild = undefined
    if (c !== undefined) await killChild(c)
  }
  await startRedis(true)
  t.teardown(stopRedis)
  const redis = new Redis({ port: redisPort, host: '127.0.0.1' })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  const store = `redis://127.0.0.1:${redisPort}`

  const nodes = await Promise.all(['node1', 'node2', 'node3'].map(async (name): Promise<AppNode> => {
    const port = await freePort()
    let child = await spawnApp(name, port, store)
    const node: AppNode = {
      name,
      port,
      url: `http://127.0.0.1:${port}`,
      pid: child.pid ?? 0,
      crash: () => killChild(child),
      async restart () {
        await killChild(child)
        child = await spawnApp(name, port, store)
        node.pid = child.pid ?? 0
      },
      signal (sig) { try { process.kill(node.pid, sig) } catch { /* gone */ } },
      exited: async () => {
        const c = child
        if (c.exitCode !== null || c.signalCode !== null) return
        await new Promise((resolve) => c.once('exit', resolve))
      }
    }
    t.teardown(async () => { node.signal('SIGCONT'); await killChild(child) })
    return node
  }))

  const configWith = (names: readonly string[], weight = 1): BalancerConfig => ({
    listen: '127.0.0.1:0',
    upstreams: nodes.filter((n) => names.includes(n.name)).map((n) => ({ url: n.url, name: n.name, weight, maxFails: 1, failTimeout: '2s' })),
    sticky: { secret: SECRET },
    healthCheck: { path: '/health', interval: '500ms', timeout: '400ms', rise: 2, fall: 2 },
    timeouts: { perTry: '1s', response: '20s', shutdown: '5s' },
    log: { level: (process.env.CHAOS_BALANCER_LOG ?? 'error') as 'error' }
  })
  const balancer = createBalancer(configWith(nodes.map((n) => n.name)))
  t.teardown(() => balancer.close())
  const { port } = await balancer.listen()
  return {
    balancer,
    url: `http://127.0.0.1:${port}`,
    nodes,
    redisPort,
    redis,
    stopRedis,
    startRedis,
    health: (name) => balancer.nodes().find((n) => n.name === name)?.status,
    configWith
  }
}
