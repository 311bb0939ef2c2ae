// Compiled by types.test.ts with `tsc --noEmit`, with fastify-usage.ts: an app that imports
// only from the subpath exports gets the same types as one that imports the root, and each
// subpath carries its own declarations (the `types` condition of every `exports` entry).
import Fastify from 'fastify'
import express from 'express'
import { fastifySession } from '@tether/middleware/fastify'
import type { FastifySessionOptions } from '@tether/middleware/fastify'
import { expressSession } from '@tether/middleware/express'
import type { ExpressSessionMiddleware } from '@tether/middleware/express'
import { MemoryStore } from '@tether/middleware/memory'
import { RedisStore } from '@tether/middleware/redis'
import type { RedisStoreOptions } from '@tether/middleware/redis'
import { SqliteStore } from '@tether/middleware/sqlite'
import { ConnectStore } from '@tether/middleware/connect'
import { TetherError, errorCodes } from '@tether/middleware/errors'
import type { ErrorCode } from '@tether/middleware/errors'
import type { SessionStore, SessionChange } from '@tether/middleware/store'
import type { RouteHint, Route } from '@tether/middleware'
// @ts-expect-error each subpath exports its own module only
import { RedisStore as NotHere } from '@tether/middleware/sqlite'

const stores: SessionStore[] = [
  new MemoryStore(),
  new RedisStore({ url: 'redis://127.0.0.1:6379', driver: 'ioredis' } satisfies RedisStoreOptions),
  new SqliteStore({ path: ':memory:' }),
  new ConnectStore({ get: () => {}, set: () => {}, destroy: () => {} })
]
const options: FastifySessionOptions = { secret: 'x'.repeat(32), store: stores[0]! }

const app = Fastify()
await app.register(fastifySession, options)
app.get('/', async (req) => {
  // SessionData is merged in fastify-usage.ts through the root module: the same interface.
  const visits: number = req.session.increment('visits')
  // @ts-expect-error visits is a number, whichever entry point the plugin came from
  req.session.visits = 'many'
  return { visits }
})

const session: ExpressSessionMiddleware = expressSession({ secret: 'x'.repeat(32) })
express().use(session)

const status: number = errorCodes.TETHER_ERR_LOCK_LOST.status ?? 500
const code: ErrorCode = 'TETHER_ERR_LOCK_LOST'
declare const err: TetherError
const both: [number, number] = [err.status, err.statusCode]
declare const change: SessionChange
const hint: RouteHint = 'sticky'
const old: Route = hint
export { status, code, both, change, old, NotHere }
