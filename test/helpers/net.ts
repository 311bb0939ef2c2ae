/** Small helpers shared by the tests: free ports, polling with a deadline, HTTP requests. */
import net from 'node:net'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

/** A port the kernel says is free on 127.0.0.1 right now. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      if (address === null || typeof address === 'string') return reject(new Error('no port'))
      srv.close(() => resolve(address.port))
    })
  })
}

/** Poll `check` until it returns true; throw after `timeoutMs`, naming `what`. */
export async function waitFor (check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(25)
  }
}

export interface Reply { status: number, headers: http.IncomingHttpHeaders, body: string }

/** One HTTP request over a fresh connection (no keep-alive pooling between calls). */
export function request (url: string, options: { method?: string, headers?: Record<string, string>, body?: string, timeoutMs?: number, agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`request to ${url} timed out`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

/** The `name=value` part of the first Set-Cookie header for `name`, if any. */
export function cookieFrom (headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const list = headers['set-cookie'] ?? []
  for (const line of list) {
    const pair = line.split(';')[0]!
    if (pair.startsWith(name + '=')) return pair
  }
  return undefined
}

/**
 * This process's environment for a child process, without tap's NODE_OPTIONS: tap preloads its
 * process-info hook into every descendant, which more than doubles a node's start-up time and
 * makes bounded waits flaky on a loaded machine.
 */
export function childEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _tap, ...env } = process.env
  return { ...env, ...extra }
}
