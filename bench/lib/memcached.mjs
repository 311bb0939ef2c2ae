// A private memcached for a benchmark run (free port, 64 MB), and its command counts.
import net from 'node:net'
import { freePort, startProcess, waitForPort } from './proc.mjs'

export async function startMemcachedServer () {
  const port = await freePort()
  // memcached refuses to run as root unless told which user to become.
  const user = process.getuid?.() === 0 ? ['-u', 'nobody'] : []
  const proc = startProcess('memcached', [...user, '-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64', '-c', '4096'])
  await waitForPort(port)
  return {
    port,
    url: `memcached://127.0.0.1:${port}`,
    /**
     * Commands clients sent: gets and sets (add, cas, replace… count as sets), touches,
     * deletes, increments. A multi-get counts once per key.
     */
    async commands () {
      const s = await stats(port)
      return ['cmd_get', 'cmd_set', 'cmd_touch', 'delete_hits', 'delete_misses', 'incr_hits', 'incr_misses', 'decr_hits', 'decr_misses']
        .reduce((sum, k) => sum + Number(s[k] ?? 0), 0)
    },
    stop: () => proc.stop('SIGKILL')
  }
}

function stats (port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let out = ''
    socket.setTimeout(5000, () => { socket.destroy(); reject(new Error('memcached stats timed out')) })
    socket.on('error', reject)
    socket.on('data', (d) => {
      out += d
      if (out.endsWith('END\r\n')) {
        socket.end()
        resolve(Object.fromEntries([...out.matchAll(/^STAT (\S+) (\S+)\r$/gm)].map((m) => [m[1], m[2]])))
      }
    })
    socket.write('stats\r\n')
  })
}
