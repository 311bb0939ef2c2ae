/**
 * The public types of `req.session`: your {@link SessionData} (extended by declaration
 * merging), the methods every session has, and the keys `increment()` accepts.
 */

import type { SessionCookie } from './cookie.js'

/**
 * Your session's shape. Extend it by declaration merging and `req.session` is typed for
 * both the Fastify plugin and the Express middleware.
 *
 * @example
 * ```ts
 * declare module '@tether/middleware' {
 *   interface SessionData { userId: string, visits: number, cart: { items: string[] } }
 * }
 * ```
 */
export interface SessionData {}

/** {@link SessionData} without index signatures: the keys it names. */
type NamedKeys<T> = { [K in keyof T as string extends K ? never : number extends K ? never : symbol extends K ? never : K]: T[K] }

/**
 * Keys `increment` accepts: the named {@link SessionData} keys whose type is `number`, or any
 * string when SessionData has an index signature that admits numbers.
 */
export type CounterKey =
  | ({ [K in keyof NamedKeys<SessionData>]-?: NonNullable<NamedKeys<SessionData>[K]> extends number ? K : never }[keyof NamedKeys<SessionData>] & string)
  | (SessionData extends { [key: string]: infer V } ? (number extends V ? string : never) : never)

/**
 * The callback the session methods take in express-session's style: called exactly once, with
 * the error (a `TetherError` with its code) if the operation failed.
 *
 * @example
 * ```ts
 * req.session.save((err) => { if (err) return next(err); res.redirect('/') })
 * ```
 */
export type SessionCallback = (err?: unknown) => void

/**
 * The methods and metadata every session has, next to its data.
 *
 * @example
 * ```ts
 * app.post('/login', async (req) => {
 *   await req.session.regenerate()          // new id against session fixation; data kept
 *   req.session.userId = user.id
 * })
 * app.post('/logout', async (req) => { await req.session.destroy() })
 * app.post('/visit', async (req) => ({ visits: req.session.increment('visits') })) // exact under concurrency
 * ```
 */
export interface SessionApi {
  /** The session id (192 random bits, base64url). Stable for the request unless regenerated. */
  readonly id: string
  /** True until the session has been written to the store. */
  readonly isNew: boolean
  /**
   * This session's cookie: set `maxAge` (ms) or `expires` for this session only ("remember
   * me"); `originalMaxAge` reads the lifetime back. Saved with the session; it is also the
   * session's idle TTL in the store, within the absolute timeout.
   */
  readonly cookie: SessionCookie
  /** Read a key (same as property access; handy for keys that clash with method names). */
  get<K extends keyof SessionData & string> (key: K): SessionData[K] | undefined
  /** Write a key (same as property assignment). */
  set<K extends keyof SessionData & string> (key: K, value: SessionData[K]): void
  /**
   * Add `by` (default 1, a safe integer) to an integer key, atomically in the store: N
   * concurrent increments add exactly N, on any node, without a lock. Returns the local value.
   */
  increment (key: CounterKey, by?: number): number
  /** Give the session a new id and destroy the old one. Keeps the data unless `keepData: false`. */
  regenerate (options?: { keepData?: boolean }): Promise<void>
  /**
   * express-session's form: a new id, the old one destroyed, and the new session starts
   * **empty** (as express-session's does); `done` is called once, with the error if any.
   */
  regenerate (done: SessionCallback): void
  /** The options form with a callback. */
  regenerate (options: { keepData?: boolean } | undefined, done: SessionCallback): void
  /** @fastify/session's form: a new id and an empty session but for the keys listed. */
  regenerate (keep: readonly string[]): Promise<void>
  /** Delete the session from the store now. Later writes in this request start a new session. */
  destroy (): Promise<void>
  /** The same, calling `done` once with the error if any (express-session's form). */
  destroy (done: SessionCallback): void
  /** Write the pending changes now instead of when the response is sent. */
  save (): Promise<void>
  /** The same, calling `done` once with the error if any (express-session's form). */
  save (done: SessionCallback): void
  /** Drop unsaved changes and read the session again from the store. */
  reload (): Promise<void>
  /** The same, calling `done` once with the error if any (express-session's form). */
  reload (done: SessionCallback): void
  /** Reset the idle timeout now. */
  touch (): Promise<void>
  /** The same, calling `done` once with the error if any. */
  touch (done: SessionCallback): void
  /**
   * Take this session's lock until the response is sent (lock mode for this request), then
   * reload so the request sees every earlier holder's writes.
   */
  lock (): Promise<void>
  /** The session data as a plain object. */
  toJSON (): Record<string, unknown>
}

/**
 * `req.session`: your {@link SessionData} keys as plain properties, plus {@link SessionApi}.
 *
 * @example
 * ```ts
 * req.session.visits = (req.session.visits ?? 0) + 1
 * delete req.session.flash
 * ```
 */
export type Session = SessionApi & Partial<SessionData>
