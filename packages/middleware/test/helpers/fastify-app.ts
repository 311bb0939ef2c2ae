/**
 * The Fastify side of the middleware tests: an app factory for `fastify.inject`, the session
 * cookie of a response, and a browser-like cookie jar.
 */
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { fastifySession } from '../../src/index.js'
import type { SessionOptions } from '../../src/index.js'

export const SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
export const OLD_SECRET = 'old-secret-0123456789-abcdefghijklmnopqrstuvwxyz'

declare module '../../src/index.js' {
  interface SessionData {
    visits: number
    user: string
    cart: { items: number[] }
    flash: string
    n: number
    [key: string]: unknown
  }
}

/** A Fastify app with the plugin registered; closed at teardown. */
export async function makeApp (t: Test, options: Partial<SessionOptions> = {}, fastifyOptions: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, ...fastifyOptions })
  await app.register(fastifySession, { secret: SECRET, ...options })
  t.teardown(() => app.close())
  return app
}

/** The `name=value` pair of a response's session cookie (undefined when none was set). */
export function sessionCookie (res: LightMyRequestResponse, name = 'tether.sid'): string | undefined {
  const raw = res.headers['set-cookie']
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
  const line = list.find((l) => l.startsWith(name + '='))
  return line?.split(';')[0]
}

/** The whole Set-Cookie line for the session cookie. */
export function sessionCookieLine (res: LightMyRequestResponse, name = 'tether.sid'): string | undefined {
  const raw = res.headers['set-cookie']
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
  return list.find((l) => l.startsWith(name + '='))
}

/** The session id inside a `name=<id>.<sig>` cookie pair. */
export function idOf (cookie: string | undefined): string | undefined {
  return cookie?.split('=')[1]?.split('.')[0]
}

/** A browser-like cookie jar for a sequence of inject() calls. */
export class Jar {
  cookie: string | undefined
  constructor (readonly app: FastifyInstance) {}
  async get (url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({ url, headers: { ...(this.cookie !== undefined ? { cookie: this.cookie } : {}), ...headers } })
    const line = sessionCookieLine(res)
    if (line !== undefined) {
      const pair = line.split(';')[0]!
      this.cookie = /Max-Age=0/.test(line) ? undefined : pair
    }
    return res
  }
}
