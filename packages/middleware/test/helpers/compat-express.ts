/**
 * The Express app of the compatibility matrix: the session middleware in express-session's
 * place, and the third-party packages people put on sessions, each wired as its README says.
 * Built the same way for Express 4 and 5.
 */
import type { NextFunction, Request, Response } from 'express'
import passport from 'passport'
import { Strategy as LocalStrategy } from 'passport-local'
import flash from 'connect-flash'
import { csrfSync } from 'csrf-sync'
import { expressSession } from '../../src/index.js'
import type { SessionStore } from '../../src/index.js'
import type { ExpressFactory } from './express-app.js'

declare global {
  namespace Express {
    // Passport's augmentation point: what deserializeUser gives back as req.user.
    interface User { name: string }
  }
}

export const COMPAT_SECRET = 'compat-matrix-secret-0123456789-abcdefghijkl'
export const PASSWORDS: Readonly<Record<string, string>> = { ada: 'lovelace', grace: 'hopper' }

/** Build the matrix app on `store`. Errors reach an error handler that answers with their code. */
export function buildCompatApp (factory: ExpressFactory, store: SessionStore) {
  const app = factory()
  app.set('env', 'test')
  app.use(factory.urlencoded({ extended: false }))
  app.use(factory.json())
  const session = expressSession({ secret: COMPAT_SECRET, store })
  app.use(session)

  // One Passport instance per app: the global one would carry strategies between cells.
  const auth = new passport.Passport()
  auth.use(new LocalStrategy((username, password, done) => {
    if (PASSWORDS[username] === password) done(null, { name: username })
    else done(null, false)
  }))
  auth.serializeUser((user, done) => { done(null, user.name) })
  auth.deserializeUser((name: string, done) => { done(null, { name }) })
  app.use(auth.initialize())
  app.use(auth.session())

  app.use(flash())
  const csrf = csrfSync({ getTokenFromRequest: (req) => req.headers['x-csrf-token'] as string | undefined })

  app.post('/login', auth.authenticate('local', { failWithError: true }), (req, res) => {
    res.json({ user: req.user?.name ?? null, id: req.sessionID })
  })
  app.get('/me', (req, res) => {
    res.json({ user: req.user?.name ?? null, id: req.sessionID, authenticated: req.isAuthenticated() })
  })
  app.post('/logout', (req, res, next) => {
    req.logout((err) => {
      if (err !== undefined && err !== null) { next(err); return }
      res.json({ id: req.sessionID })
    })
  })

  app.post('/flash', (req, res) => {
    req.flash('info', String(req.body.message))
    res.json({ ok: true })
  })
  app.get('/flash', (req, res) => { res.json({ info: req.flash('info') }) })

  app.get('/csrf', (req, res) => { res.json({ token: csrf.generateToken(req) }) })
  app.post('/transfer', csrf.csrfSynchronisedProtection, (_req, res) => { res.json({ done: true }) })

  app.use((err: Error & { code?: string, status?: number, statusCode?: number }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.statusCode ?? err.status ?? 500).json({ code: err.code ?? null, message: err.message })
  })
  return { app, session }
}
