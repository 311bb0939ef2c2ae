/**
 * A private three-master Redis Cluster on free loopback ports (and their bus ports, +10000),
 * in a temp directory, stopped at teardown.
 */
import { spawn, execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { promisify } from 'node:util'
import { Cluster, Redis } from 'ioredis'
import { waitFor } from './net.js'
import { kill, reap } from './reaper.js'

const run = promisify(execFile)

function isFree (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/** Ports p whose cluster bus port p + 10000 is free too. */
async function clusterPorts (n: number): Promise<number[]> {
  const ports: number[] = []
  for (let tries = 0; ports.length < n && tries < 500; tries++) {
    const p = 20000 + Math.floor(Math.random() * 25000)
    if (!ports.includes(p) && await isFree(p) && await isFree(p + 10000)) ports.push(p)
  }
  if (ports.length < n) throw new Error('no free port pairs for a Redis Cluster')
  return ports
}

interface Teardownable { teardown (fn: () => unknown): void }

export interface RedisClusterHandle {
  readonly ports: number[]
  /** An ioredis Cluster client (closed at teardown). */
  client (): Cluster
}

export async function startRedisCluster (t: Teardownable): Promise<RedisClusterHandle> {
  const ports = await clusterPorts(3)
  const dir = mkdtempSync(join(tmpdir(), 'tether-cluster-'))
  const children: ChildProcess[] = []
  const clients: Cluster[] = []
  t.teardown(async () => {
    for (const c of clients) c.disconnect()
    await Promise.all(children.map(kill))
    rmSync(dir, { recursive: true, force: true })
  })
  for (const port of ports) {
    children.push(reap(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })))
  }
  for (const port of ports) {
    await waitFor(async () => {
      const c = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
      c.on('error', () => {})
      try { await c.connect(); return (await c.ping()) === 'PONG' } catch { return false } finally { c.disconnect() }
    }, 10_000, `cluster node ${port}`)
  }
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
  await waitFor(async () => {
    const { stdout } = await run('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'])
    return stdout.includes('cluster_state:ok')
  }, 15_000, 'cluster_state:ok')
  return {
    ports,
    client: () => {
      const c = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { commandTimeout: 2000 } })
      c.on('error', () => {})
      clients.push(c)
      return c
    }
  }
}
