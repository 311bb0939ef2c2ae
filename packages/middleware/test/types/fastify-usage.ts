// Compiled by types.test.ts with `tsc --noEmit`. Every `@ts-expect-error` line must fail to
// compile, and everything else must compile: a regression either way fails the test.
import Fastify from 'fastify'
import { fastifySession, MemoryStore, RedisStore } from '@tether/middleware'
import type { Session, SessionStore, TetherError, ErrorCode } from '@tether/middleware'

declare module '@tether/middleware' {
  interface SessionData {
    userId: string
    visits: number
    cart: { items: string[] }
  }
}

const app = Fastify()
await app.register(fastifySession, { secret: 'x'.repeat(32), store: new MemoryStore() })
await app.register(fastifySession, { secret: ['new'.repeat(11), 'old'.repeat(11)], store: new RedisStore({ url: 'redis://127.0.0.1:6379' }), cookie: { secure: 'auto', sameSite: 'strict', maxAge: 60_000 } })

app.get('/', { config: { session: { lock: true } } }, async (req) => {
  const s: Session = req.session
  const id: string = s.id
  const user: string | undefined = req.session.userId
  const visits: number = req.session.increment('visits')
  req.session.cart = { items: ['a'] }
  req.session.cart.items.push('b')
  delete req.session.cart
  await req.session.regenerate({ keepData: false })
  await req.session.save()
  await req.session.reload()
  await req.session.touch()
  await req.session.lock()
  await req.session.destroy()
  const got: { items: string[] } | undefined = req.session.get('cart')
  req.session.set('userId', 'u1')

  // @ts-expect-error visits is a number
  req.session.visits = 'many'
  // @ts-expect-error userId is not a counter
  req.session.increment('userId')
  // @ts-expect-error unknown keys are not part of SessionData
  req.session.nope = 1
  // @ts-expect-error id is read-only
  req.session.id = 'x'
  // @ts-expect-error set() checks the value type
  req.session.set('visits', 'x')
  return { id, user, visits, got }
})

// @ts-expect-error route config rejects unknown session settings
app.get('/bad', { config: { session: { lock: 'yes' } } }, async () => 'x')

// @ts-expect-error the secret is required
await app.register(fastifySession, {})

const custom: SessionStore = {
  load: async () => undefined,
  apply: async () => ({ ok: false, reason: 'gone' }),
  destroy: async () => {},
  touch: async () => false
}
void custom
const code: ErrorCode = 'TETHER_ERR_STORE_UNAVAILABLE'
// @ts-expect-error codes are a closed union
const wrong: ErrorCode = 'TETHER_ERR_NOPE'
declare const e: TetherError
const status: number = e.statusCode
export { code, wrong, status }
