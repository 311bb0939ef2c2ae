/**
 * A private memcached per test, on a free loopback port, killed (by its pid) when the test
 * ends. Never a shared one.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import net from 'node:net'
import { freePort, waitFor } from './net.js'
import { kill, reap } from './reaper.js'

export interface MemcachedServer {
  readonly port: number
  readonly url: string
  /** One raw text-protocol command and its reply, up to the line that ends it (`END`, `STORED`…). */
  command (line: string): Promise<string>
  /** SIGKILL the server. */
  stop (): Promise<void>
  /**
   * SIGSTOP the server, resolving once every thread of it has stopped (a signal to a process
   * running on another core takes effect a moment later): from then on connections stay open
   * and commands are accepted by the kernel, not answered.
   */
  pause (): Promise<void>
  /** SIGCONT: the server runs again and answers what it was sent meanwhile. */
  resume (): void
}

interface Teardownable { teardown (fn: () => unknown): void }

/** Start /usr/bin/memcached on a free port (64 MB, 1 MiB items, UDP off). */
export async function startMemcached (t: Teardownable): Promise<MemcachedServer> {
  const port = await freePort()
  // memcached refuses to run as root unless told which user to become.
  const user = process.getuid?.() === 0 ? ['-u', 'nobody'] : []
  let child: ChildProcess | undefined = spawn('memcached', [...user, '-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64', '-I', '1m', '-c', '4096'], { stdio: 'ignore' })
  reap(child)
  const command = (line: string): Promise<string> => new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let out = ''
    socket.setTimeout(5000, () => { socket.destroy(); reject(new Error('memcached command timed out')) })
    socket.on('error', reject)
    socket.on('data', (d) => {
      out += d.toString('utf8')
      if (/(^|\r\n)(END|STORED|NOT_STORED|EXISTS|NOT_FOUND|DELETED|TOUCHED|OK|ERROR|VERSION [^\r]*|CLIENT_ERROR [^\r]*|SERVER_ERROR [^\r]*)\r\n$/.test(out)) {
        socket.end()
        resolve(out)
      }
    })
    socket.write(`${line}\r\n`)
  })
  await waitFor(async () => {
    try { return (await command('version')).startsWith('VERSION') } catch { return false }
  }, 10_000, `memcached on port ${port}`)
  const stop = async (): Promise<void> => {
    const c = child
    child = undefined
    if (c !== undefined) await kill(c)
  }
  t.teardown(stop)
  const signal = (sig: NodeJS.Signals): void => { if (child?.pid !== undefined) process.kill(child.pid, sig) }
  t.teardown(() => { signal('SIGCONT') })
  const pause = async (): Promise<void> => {
    const pid = child?.pid
    signal('SIGSTOP')
    if (pid === undefined) return
    await waitFor(async () => {
      const tasks = await readdir(`/proc/${pid}/task`).catch(() => [])
      const states = await Promise.all(tasks.map(async (task) => (await readFile(`/proc/${pid}/task/${task}/stat`, 'utf8').catch(() => ') T')).replace(/^.*\) /s, '')[0]))
      return states.every((state) => state === 'T' || state === 't')
    }, 5000, `memcached ${pid} to stop`)
  }
  return { port, url: `memcached://127.0.0.1:${port}`, command, stop, pause, resume: () => { signal('SIGCONT') } }
}
