/**
 * A private redis-server per test, on a free port, so a test that stops or breaks Redis only
 * ever touches the server it started. Never the shared one on 6379.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import { freePort, waitFor } from './net.js'
import { kill, reap } from './reaper.js'

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Stop the server (SIGKILL: the abrupt way a crash looks to clients). */
  stop (): Promise<void>
  /** Start it again on the same port. */
  start (): Promise<void>
  /** A fresh ioredis client to this server (closed at teardown). */
  client (): Redis
}

interface Teardownable { teardown (fn: () => unknown): void }

/**
 * Start redis-server on a free loopback port; it and every client made from it are closed
 * when the test ends.
 */
export async function startRedis (t: Teardownable, extraArgs: readonly string[] = []): Promise<RedisServer> {
  const port = await freePort()
  // With --requirepass, the default user needs that password: admin clients use it.
  const at = extraArgs.indexOf('--requirepass')
  const password = at === -1 ? undefined : extraArgs[at + 1]
  let child: ChildProcess | undefined
  const clients: Redis[] = []

  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', ...extraArgs], { stdio: 'ignore' })
    reap(child)
    await waitFor(async () => {
      const probe = new Redis({ port, host: '127.0.0.1', password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      probe.on('error', () => {})
      try { await probe.connect(); return (await probe.ping()) === 'PONG' } catch { return false } finally { probe.disconnect() }
    }, 10_000, `redis-server on port ${port}`)
  }
  const stop = async (): Promise<void> => {
    const c = child
    child = undefined
    if (c !== undefined) await kill(c)
  }
  await start()
  t.teardown(async () => {
    for (const c of clients) c.disconnect()
    await stop()
  })
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    client: () => {
      const c = new Redis({ port, host: '127.0.0.1', password })
      c.on('error', () => {})
      clients.push(c)
      return c
    }
  }
}
