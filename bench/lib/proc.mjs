// Process helpers for benchmarks: free ports, spawning servers, waiting for them, stopping
// exactly the processes we started (by process group), never by name.
import { spawn } from 'node:child_process'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/** Ask the kernel for a free loopback port. */
export function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** Resolve once something accepts TCP connections on host:port, or reject after `timeoutMs`. */
export async function waitForPort (port, { host = '127.0.0.1', timeoutMs = 15000 } = {}) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, host)
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    await sleep(50)
  }
  throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`)
}

const started = new Set()

/**
 * Spawn a long-running process in its own process group so that `stop()` ends it and all its
 * children, and nothing else.
 */
export function startProcess (cmd, args, { env = {}, cwd, quiet = true } = {}) {
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: quiet ? ['ignore', 'ignore', 'pipe'] : ['ignore', 'inherit', 'inherit']
  })
  let stderr = ''
  child.stderr?.on('data', (d) => { stderr = (stderr + d).slice(-4000) })
  const handle = {
    child,
    get stderr () { return stderr },
    async stop (signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      try { process.kill(-child.pid, signal) } catch {}
      const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL') } catch {} }, 3000)
      await exited
      clearTimeout(timer)
      started.delete(handle)
    }
  }
  started.add(handle)
  return handle
}

/** Stop every process this benchmark run started. */
export async function stopAll () {
  await Promise.all([...started].map((h) => h.stop()))
}

process.once('exit', () => {
  for (const h of started) { try { process.kill(-h.child.pid, 'SIGKILL') } catch {} }
})
