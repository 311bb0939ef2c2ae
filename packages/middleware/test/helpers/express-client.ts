/** A browser-like client for the Express tests: real HTTP, one cookie jar for the session. */
import http from 'node:http'
import { request } from '../../../../test/helpers/net.js'
import type { Reply } from '../../../../test/helpers/net.js'

export const COOKIE = 'tether.sid'

/** Every Set-Cookie line of a reply for the session cookie. */
export function sessionLines (reply: Pick<Reply, 'headers'>): string[] {
  return (reply.headers['set-cookie'] ?? []).filter((line) => line.startsWith(COOKIE + '='))
}

/** The session id inside a `tether.sid=<id>.<sig>` pair. */
export function idOf (pair: string | undefined): string | undefined {
  return pair?.slice(COOKIE.length + 1).split('.')[0]
}

/** Follows the session cookie like a browser: stores it when set, drops it when cleared. */
export class Browser {
  cookie: string | undefined

  constructor (cookie?: string) {
    this.cookie = cookie
  }

  async send (method: string, url: string, headers: Record<string, string> = {}): Promise<Reply & { json: <T = Record<string, unknown>>() => T }> {
    const reply = await request(url, { method, headers: { ...(this.cookie !== undefined ? { cookie: this.cookie } : {}), ...headers } })
    for (const line of sessionLines(reply)) this.cookie = /Max-Age=0/.test(line) ? undefined : line.split(';')[0]
    return { ...reply, json: <T>() => JSON.parse(reply.body) as T }
  }

  get (url: string, headers?: Record<string, string>) { return this.send('GET', url, headers) }
  post (url: string, headers?: Record<string, string>) { return this.send('POST', url, headers) }
}

/**
 * Start a GET and resolve as soon as the status line and headers arrive, before the body: what
 * a client can do with a cookie while a streamed response is still running.
 */
export function headersOf (url: string, headers: Record<string, string> = {}): Promise<{ res: http.IncomingMessage, body: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const body = new Promise<string>((resolve, reject) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => { text += d })
        res.on('end', () => resolve(text))
        res.on('error', reject)
      })
      resolve({ res, body })
    })
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
  })
}
