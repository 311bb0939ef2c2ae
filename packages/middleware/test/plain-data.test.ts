// Session data is plain data: `__proto__`, `constructor` and `prototype` are ordinary own keys
// at every level, in every store and through both adapters. Issue 15's reproduction: a route
// does Object.assign(req.session, JSON.parse(body)) with a `__proto__` key, and the next
// request's toJSON() must not take its prototype from session data.
import t from 'tap'
import type { Test } from 'tap'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import type { Request, Response } from 'express'
import Fastify from 'fastify'
import { ConnectStore, expressSession, fastifySession, MemoryStore, newId, RedisStore, SqliteStore } from '../src/index.js'
import type { ConnectCompatibleStore, Session, SessionStore } from '../src/index.js'
import { startRedis } from '../../../test/helpers/redis.js'

const SECRET = 'plain-data-secret-0123456789-abcdefghijklmnopqrs'
const { MemoryStore: SessionMemoryStore } = createRequire(import.meta.url)('express-session') as { MemoryStore: new () => ConnectCompatibleStore }

// What a JSON body parsed with JSON.parse gives: `__proto__` as an own key, at the top and nested.
const BODY = '{"__proto__":{"isAdmin":true},"normal":1,"constructor":{"prototype":{"polluted":true}},"prototype":{"x":1},"nested":{"__proto__":{"deep":true},"k":2}}'

/** What a route reports about the session's toJSON(), computed in the server process. */
function inspectSession (session: Session): Record<string, unknown> {
  const json = session.toJSON()
  const nested = json.nested as Record<string, unknown>
  return {
    prototypeIsObject: Object.getPrototypeOf(json) === Object.prototype,
    isAdmin: json.isAdmin ?? null,
    ownProtoKey: Object.hasOwn(json, '__proto__'),
    protoValue: Object.getOwnPropertyDescriptor(json, '__proto__')?.value ?? null,
    keys: Object.keys(json).sort(),
    text: JSON.stringify(json),
    nestedPrototypeIsObject: Object.getPrototypeOf(nested) === Object.prototype,
    nestedOwnProto: Object.hasOwn(nested, '__proto__'),
    nestedDeep: nested.deep ?? null,
    constructorKey: JSON.stringify(json.constructor),
    globalPolluted: ({} as Record<string, unknown>).isAdmin ?? ({} as Record<string, unknown>).polluted ?? null
  }
}

const expected = {
  prototypeIsObject: true,
  isAdmin: null,
  ownProtoKey: true,
  protoValue: { isAdmin: true },
  keys: ['__proto__', 'constructor', 'nested', 'normal', 'prototype'],
  nestedPrototypeIsObject: true,
  nestedOwnProto: true,
  nestedDeep: null,
  constructorKey: '{"prototype":{"polluted":true}}',
  globalPolluted: null
}

type Serve = (t: Test, store: SessionStore) => Promise<string>

const adapters: Array<[string, Serve]> = [
  ['Fastify', async (t, store) => {
    const app = Fastify()
    // Text, not Fastify's JSON parser: that one refuses `__proto__` bodies, and the point is a
    // route that does not.
    app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) => { done(null, body) })
    await app.register(fastifySession, { secret: SECRET, store })
    app.post('/assign', async (req) => { Object.assign(req.session, JSON.parse(req.body as string)); return 'ok' })
    app.get('/inspect', async (req) => inspectSession(req.session))
    t.teardown(() => app.close())
    return await app.listen({ port: 0, host: '127.0.0.1' })
  }],
  ['Express', async (t, store) => {
    const app = express()
    app.use(expressSession({ secret: SECRET, store }))
    app.post('/assign', express.text(), (req: Request, res: Response) => { Object.assign(req.session, JSON.parse(req.body as string)); res.send('ok') })
    app.get('/inspect', (req: Request, res: Response) => { res.json(inspectSession(req.session)) })
    const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
    t.teardown(() => new Promise((resolve) => server.close(resolve)))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }]
]

const redis = await startRedis(t)
const dir = mkdtempSync(join(tmpdir(), 'tether-plain-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const stores: Array<[string, (t: Test) => SessionStore]> = [
  ['MemoryStore', () => new MemoryStore()],
  ['RedisStore', (t) => { const s = new RedisStore({ url: redis.url, prefix: `plain:${newId().slice(0, 6)}:` }); t.teardown(() => s.close()); return s }],
  ['SqliteStore', (t) => { const s = new SqliteStore({ path: join(dir, `${newId().slice(0, 6)}.db`) }); t.teardown(() => s.close()); return s }],
  ['ConnectStore', () => new ConnectStore(new SessionMemoryStore())]
]

for (const [adapter, serve] of adapters) {
  for (const [storeName, make] of stores) {
    t.test(`${adapter} + ${storeName}: __proto__, constructor and prototype are ordinary keys`, async (t) => {
      const base = await serve(t, make(t))
      const assigned = await fetch(`${base}/assign`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: BODY })
      t.equal(assigned.status, 200)
      const cookie = assigned.headers.get('set-cookie')?.split(';')[0]
      t.ok(cookie, 'the session was saved')
      const res = await fetch(`${base}/inspect`, { headers: { cookie: cookie! } })
      t.equal(res.status, 200)
      const seen = await res.json() as Record<string, unknown>
      const text = seen.text as string
      delete seen.text
      t.same(seen, expected, 'the next request: own keys, no prototype taken from session data')
      t.same(JSON.parse(text), JSON.parse(BODY), 'toJSON() serialises back to exactly what was assigned')
    })
  }
}
