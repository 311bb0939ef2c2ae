/**
 * A private Redis Sentinel group per test: one primary, one replica and three sentinels
 * (`redis-server --sentinel` with config files generated in a temp dir), each on a free
 * loopback port, all killed by pid when the test ends.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort, waitFor } from './net.js'
import { kill, reap } from './reaper.js'

export interface SentinelGroup {
  /** The master name the sentinels monitor. */
  readonly name: string
  readonly sentinels: Array<{ host: string, port: number }>
  readonly primaryPort: number
  readonly replicaPort: number
  /** SIGKILL the primary (by pid): the crash a failover is for. */
  killPrimary (): Promise<void>
  /** The port the sentinels name as primary now. */
  primaryNow (): Promise<number>
  /** Start the killed primary again, on its port, as a replica of the current primary. */
  rejoinAsReplica (): Promise<void>
}

interface Teardownable { teardown (fn: () => unknown): void }

/** Start the group and wait until the replica is in sync and every sentinel sees the whole group. */
export async function startSentinelGroup (t: Teardownable, name = 'tether'): Promise<SentinelGroup> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-sentinel-'))
  const children: ChildProcess[] = []
  const clients: Redis[] = []
  t.teardown(async () => {
    for (const c of clients) c.disconnect()
    await Promise.all(children.map((c) => kill(c)))
    rmSync(dir, { recursive: true, force: true })
  })
  const run = (args: string[]): ChildProcess => {
    // In the temp dir: a replica's full sync makes the primary write an RDB file to its cwd.
    const child = spawn('redis-server', args, { stdio: 'ignore', cwd: dir })
    reap(child)
    children.push(child)
    return child
  }
  const client = (port: number): Redis => {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    c.on('error', () => {})
    clients.push(c)
    return c
  }
  const ask = async (port: number, ...args: string[]): Promise<unknown> => {
    const c = client(port)
    try { await c.connect(); return await c.call(args[0]!, ...args.slice(1)) } finally { c.disconnect() }
  }
  const server = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const primaryPort = await freePort()
  let primary = run(['--port', String(primaryPort), ...server])
  const replicaPort = await freePort()
  await waitFor(async () => { try { return await ask(primaryPort, 'PING') === 'PONG' } catch { return false } }, 10_000, 'the primary')
  run(['--port', String(replicaPort), ...server, '--replicaof', '127.0.0.1', String(primaryPort)])
  await waitFor(async () => {
    try { return /master_link_status:up/.test(String(await ask(replicaPort, 'INFO', 'replication'))) } catch { return false }
  }, 15_000, 'the replica to sync')
  const sentinelPorts = await Promise.all([0, 1, 2].map(() => freePort()))
  for (const port of sentinelPorts) {
    const conf = join(dir, `sentinel-${port}.conf`)
    writeFileSync(conf, [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
      // Declared down after 1 s without a reply: a short failover for a bounded test.
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 10000`,
      `sentinel parallel-syncs ${name} 1`,
      ''
    ].join('\n'))
    run([conf, '--sentinel'])
  }
  await waitFor(async () => {
    try {
      const views = await Promise.all(sentinelPorts.map(async (port) => flat(await ask(port, 'SENTINEL', 'MASTER', name))))
      return views.every((v) => v['num-slaves'] === '1' && v['num-other-sentinels'] === '2')
    } catch { return false }
  }, 30_000, 'the sentinels to see the replica and each other')
  const primaryNow = async (): Promise<number> => {
    const reply = await ask(sentinelPorts[0]!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as string[]
    return Number(reply[1])
  }
  return {
    name,
    sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
    primaryPort,
    replicaPort,
    killPrimary: async () => { await kill(primary) },
    primaryNow,
    rejoinAsReplica: async () => {
      primary = run(['--port', String(primaryPort), ...server, '--replicaof', '127.0.0.1', String(await primaryNow())])
      await waitFor(async () => {
        try { return /master_link_status:up/.test(String(await ask(primaryPort, 'INFO', 'replication'))) } catch { return false }
      }, 15_000, 'the old primary to sync as a replica')
    }
  }
}

/** A `SENTINEL MASTER` reply ([k, v, k, v …]) as an object. */
function flat (reply: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  const list = reply as string[]
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = String(list[i + 1])
  return out
}
