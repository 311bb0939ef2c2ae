/**
 * A browser-like client for the compatibility matrix: real HTTP, a cookie jar that keeps every
 * cookie by name (the session's and any a third-party package sets), form and JSON bodies.
 */
import { request } from '../../../../test/helpers/net.js'
import type { Reply } from '../../../../test/helpers/net.js'

export interface JsonReply extends Reply {
  json: <T = Record<string, unknown>>() => T
}

/** Follows cookies like a browser: stores them when set, drops them when cleared. */
export class CookieClient {
  readonly #jar = new Map<string, string>()
  readonly #base: string

  constructor (base: string) {
    this.#base = base
  }

  /** The value of cookie `name`, if the client holds it. */
  cookie (name: string): string | undefined {
    return this.#jar.get(name)
  }

  async send (method: string, path: string, options: { form?: Record<string, string>, json?: unknown, headers?: Record<string, string> } = {}): Promise<JsonReply> {
    const headers: Record<string, string> = { ...options.headers }
    if (this.#jar.size > 0) headers.cookie = [...this.#jar].map(([k, v]) => `${k}=${v}`).join('; ')
    let body: string | undefined
    if (options.form !== undefined) {
      body = new URLSearchParams(options.form).toString()
      headers['content-type'] = 'application/x-www-form-urlencoded'
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json)
      headers['content-type'] = 'application/json'
    }
    // Generous: the matrix runs on a loaded machine, but a hang must still fail the test.
    const reply = await request(this.#base + path, { method, headers, body, timeoutMs: 15_000 })
    for (const line of reply.headers['set-cookie'] ?? []) {
      const pair = line.split(';')[0]!
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      if (/max-age=0\b/i.test(line) || /expires=Thu, 01 Jan 1970/i.test(line)) this.#jar.delete(name)
      else this.#jar.set(name, pair.slice(eq + 1))
    }
    return { ...reply, json: <T>() => JSON.parse(reply.body) as T }
  }

  get (path: string, headers?: Record<string, string>) { return this.send('GET', path, { headers }) }
  post (path: string, options?: { form?: Record<string, string>, json?: unknown, headers?: Record<string, string> }) { return this.send('POST', path, options) }
}
