// Compiled by express-types.test.ts with `tsc --noEmit`, against the built package as a user
// would. Every `@ts-expect-error` line must fail to compile and everything else must compile.
// The test also compiles a copy without the first directive and checks the exact error.
import express from 'express'
import type { NextFunction, Request, Response } from 'express'
import { ConnectStore, MemoryStore, expressSession } from '@tether/middleware'
import type { ConnectCompatibleStore, ExpressSessionMiddleware, Session, TetherError } from '@tether/middleware'

declare module '@tether/middleware' {
  interface SessionData {
    userId: string
    visits: number
    cart: { items: string[] }
  }
}

const session: ExpressSessionMiddleware = expressSession({ secret: 'x'.repeat(32), store: new MemoryStore(), mode: 'lock', logger: console })
const app = express()
app.use(session)
express.Router().use(session)

app.get('/', async (req: Request, res: Response) => {
  const s: Session = req.session
  const id: string = req.sessionID
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
  const cart: { items: string[] } | undefined = req.session.get('cart')

  // @ts-expect-error visits is a number
  req.session.visits = 'many'
  // @ts-expect-error userId is not a counter
  req.session.increment('userId')
  // @ts-expect-error unknown keys are not part of SessionData
  req.session.nope = 1
  // @ts-expect-error sessionID is read-only
  req.sessionID = 'mine'
  res.json({ s: s.id, id, user, visits, cart })
})

app.use((err: TetherError, _req: Request, res: Response, _next: NextFunction) => {
  res.status(err.statusCode).json({ code: err.code })
})

// @ts-expect-error the secret is required
expressSession({})

declare const legacy: ConnectCompatibleStore
const store = new ConnectStore(legacy, { timeout: 1000 })
app.use(expressSession({ secret: 'y'.repeat(32), store }))
// @ts-expect-error set() and destroy() are missing
void new ConnectStore({ get (_sid: string, cb: (err: unknown, value?: unknown) => void) { cb(null) } })

await session.close()
