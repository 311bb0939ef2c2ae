/**
 * The `req.session` object user code sees: a Proxy whose data keys are plain properties and
 * whose methods are shared functions. It owns no state; every trap forwards to the request's
 * {@link ProxyTarget} (the core's SessionState), and it decides which names are methods.
 */
import { inspect } from 'node:util'
import { tetherError } from '../errors.js'
import type { Session } from './types.js'
import type { SessionCookie } from './cookie.js'

/**
 * What the proxy needs of the state behind it.
 *
 * @example
 * ```ts
 * class SessionState implements ProxyTarget { … readonly proxy = sessionProxy(this) }
 * ```
 */
export interface ProxyTarget {
  /** The id so far: undefined until a new session needs one. */
  readonly id: string | undefined
  readonly isNew: boolean
  /** The data, keyed by top-level key; values may still be JSON text until `read()`. */
  readonly data: Readonly<Record<string, unknown>>
  /** The id, given to the session now if it has none yet. */
  sessionId (): string
  read (key: string): unknown
  write (key: string, value: unknown): void
  remove (key: string): void
  increment (key: string, by: number): number
  /** An object value was handed out: user code may mutate it in place. */
  handOut (key: string): void
  /** The data as a plain object (every object value counts as handed out). */
  snapshot (): Record<string, unknown>
  regenerate (keepData: boolean): Promise<void>
  destroy (): Promise<void>
  save (): Promise<void>
  reload (): Promise<void>
  touch (): Promise<void>
  lock (): Promise<void>
  /** `req.session.cookie`. */
  cookie (): SessionCookie
}

// Method names and metadata a data key may not shadow. `then` is here so that awaiting or
// returning `req.session` from an async function does not treat it as a thenable.
const RESERVED = new Set(['id', 'isNew', 'cookie', 'get', 'set', 'increment', 'regenerate', 'destroy', 'save', 'reload', 'touch', 'lock', 'toJSON', 'then'])

/**
 * Refuse a data key that would shadow a session method or property, or that starts with NUL
 * (stores reserve that prefix for their metadata).
 *
 * @example
 * ```ts
 * checkKey('cart') // fine
 * checkKey('save') // throws TETHER_ERR_RESERVED_KEY
 * ```
 */
export function checkKey (key: string): void {
  if (RESERVED.has(key)) throw tetherError('TETHER_ERR_RESERVED_KEY', `'${key}' is a session method or property and cannot be used as a data key; use another name`)
  if (key.charCodeAt(0) === 0) throw tetherError('TETHER_ERR_RESERVED_KEY', 'session keys may not start with a NUL character (reserved for store metadata)')
}

/**
 * The `req.session` Proxy over `target`.
 *
 * @example
 * ```ts
 * const session = sessionProxy(state)
 * session.visits = 1 // state.write('visits', 1)
 * ```
 */
export function sessionProxy (target: ProxyTarget): Session {
  return new Proxy(target, handler) as unknown as Session
}

// The methods live here once; the proxy hands out these shared functions and they find the
// request's state through `this`, so a request allocates no closures for its session.
const kTarget = Symbol('tether.session.target')
type WithTarget = { [kTarget]: ProxyTarget }

/** A Node-style completion callback, as express-session's methods take. */
type Done = (err?: unknown) => void

/**
 * The two styles of every asynchronous method: with a callback (express-session's, which
 * Passport and other middleware call), `done` is called exactly once, with the error if any,
 * and nothing is returned; without one, the Promise is.
 */
function settle (work: Promise<void>, done: Done | undefined): Promise<void> | undefined {
  if (done === undefined) return work
  work.then(() => { call(done, undefined) }, (err: unknown) => { call(done, err) })
  return undefined
}

function call (done: Done, err: unknown): void {
  try {
    if (err === undefined) done()
    else done(err)
  } catch (thrown) {
    // A callback that throws must not be called a second time with its own error, nor turn
    // into a rejection nobody handles: it surfaces as an uncaught exception, as the same
    // throw from an express-session callback would.
    process.nextTick(() => { throw thrown })
  }
}

async function regenerateKeeping (target: ProxyTarget, keys: readonly string[]): Promise<void> {
  const kept: Array<[string, unknown]> = []
  for (const key of keys) if (typeof key === 'string' && key in target.data) kept.push([key, target.read(key)])
  await target.regenerate(false)
  for (const [key, value] of kept) target.write(key, value)
}

const api: Record<string, unknown> = {
  get (this: WithTarget, key: string) { return this[kTarget].read(key) },
  set (this: WithTarget, key: string, value: unknown) { this[kTarget].write(key, value) },
  increment (this: WithTarget, key: string, by = 1) { return this[kTarget].increment(key, by) },
  // regenerate(cb) is express-session's: the new session starts empty (Passport decides itself
  // what to carry over). Without a callback, or with options, the data is kept by default.
  // regenerate(['key', …]) is @fastify/session's (what @fastify/passport calls): an empty
  // session but for the keys listed.
  regenerate (this: WithTarget, options?: { keepData?: boolean } | readonly string[] | Done, done?: Done) {
    if (typeof options === 'function') return settle(this[kTarget].regenerate(false), options)
    if (Array.isArray(options)) return settle(regenerateKeeping(this[kTarget], options), done)
    return settle(this[kTarget].regenerate((options as { keepData?: boolean } | undefined)?.keepData ?? true), done)
  },
  destroy (this: WithTarget, done?: Done) { return settle(this[kTarget].destroy(), done) },
  save (this: WithTarget, done?: Done) { return settle(this[kTarget].save(), done) },
  reload (this: WithTarget, done?: Done) { return settle(this[kTarget].reload(), done) },
  touch (this: WithTarget, done?: Done) { return settle(this[kTarget].touch(), done) },
  async lock (this: WithTarget) { await this[kTarget].lock() },
  toJSON (this: WithTarget) { return this[kTarget].snapshot() }
}

const handler: ProxyHandler<ProxyTarget> = {
  get (target, prop) {
    if (typeof prop === 'symbol') {
      if (prop === kTarget) return target
      if (prop === inspect.custom) return () => ({ id: target.id, isNew: target.isNew, data: target.snapshot() })
      if (prop === Symbol.toStringTag) return 'Session'
      return undefined
    }
    if (RESERVED.has(prop)) {
      if (prop === 'id') return target.sessionId()
      if (prop === 'isNew') return target.isNew
      if (prop === 'cookie') return target.cookie()
      return api[prop]
    }
    const value = target.read(prop)
    if (typeof value === 'object' && value !== null) target.handOut(prop)
    return value
  },
  set (target, prop, value) {
    if (typeof prop === 'symbol') throw tetherError('TETHER_ERR_RESERVED_KEY', 'session keys must be strings, not symbols')
    target.write(prop, value)
    return true
  },
  deleteProperty (target, prop) {
    if (typeof prop === 'symbol') return true
    target.remove(prop)
    return true
  },
  has (target, prop) {
    if (typeof prop === 'symbol') return prop === kTarget
    return RESERVED.has(prop) ? prop !== 'then' : prop in target.data
  },
  ownKeys (target) {
    return Object.keys(target.data)
  },
  getOwnPropertyDescriptor (target, prop) {
    if (typeof prop === 'symbol' || !(prop in target.data)) return undefined
    const value = target.read(prop)
    if (typeof value === 'object' && value !== null) target.handOut(prop)
    return { value, writable: true, enumerable: true, configurable: true }
  },
  defineProperty (target, prop, descriptor) {
    if (typeof prop === 'symbol' || !('value' in descriptor)) throw tetherError('TETHER_ERR_RESERVED_KEY', 'session keys must be plain string-keyed values')
    target.write(prop, descriptor.value)
    return true
  },
  setPrototypeOf () {
    return false
  },
  getPrototypeOf () {
    return null
  }
}
