/**
 * Session options: what users pass, the defaults, and validation at start-up. A mistake here
 * fails when the app boots, with the option's name in the message, never on the first request.
 */
import { tetherError } from './errors.js'
import type { CookieSettings } from './cookie.js'
import type { NearCacheOptions } from './near-cache.js'
import type { SessionStore } from './store.js'

/** Minimal logger shape (pino, Fastify's `request.log`, console-like). */
export interface SessionLogger {
  debug (obj: object, msg?: string): void
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}

/**
 * How concurrent requests of one session combine their writes.
 * - `merge` (default): each request writes only the keys it changed; last writer wins per key.
 * - `lock`: one request of a session at a time across every node, from load to save.
 */
export type ConcurrencyMode = 'merge' | 'lock'

/**
 * Options shared by the Fastify plugin and the Express middleware.
 *
 * @example
 * ```ts
 * const options: SessionOptions = {
 *   secret: process.env.SESSION_SECRET!,            // ≥ 32 characters; an array rotates keys
 *   store: new RedisStore({ url: 'redis://127.0.0.1:6379' }),
 *   idleTimeout: 30 * 60_000,                         // sliding, enforced by the store
 *   absoluteTimeout: 12 * 3_600_000,                  // from creation, enforced by the store
 *   cookie: { secure: 'auto', sameSite: 'lax' }
 * }
 * ```
 */
export interface SessionOptions {
  /** Cookie signing secret(s), each at least 32 characters. The first signs; the rest still verify. */
  secret: string | readonly string[]
  /** Where sessions live. Default: a new {@link MemoryStore} (one process only). */
  store?: SessionStore
  /** Cookie name. Default `tether.sid`. */
  cookieName?: string
  /** Cookie attributes. */
  cookie?: {
    path?: string
    domain?: string
    httpOnly?: boolean
    /** Default `'auto'`: Secure when the request came over HTTPS. */
    secure?: boolean | 'auto'
    sameSite?: 'lax' | 'strict' | 'none' | false
    partitioned?: boolean
    /** Persistent cookie lifetime (ms). Default: a browser-session cookie. */
    maxAge?: number
  }
  /** Sliding idle timeout (ms), enforced by the store. Default 24 h. */
  idleTimeout?: number
  /** Absolute lifetime from creation (ms), enforced by the store. Default 7 days. */
  absoluteTimeout?: number
  /**
   * Refresh the idle TTL only once this many ms of it have elapsed since the last refresh, so
   * read-only requests normally write nothing. Default: a tenth of `idleTimeout`.
   */
  touchAfter?: number
  /** Store sessions nobody wrote to (and send their cookie). Default false. */
  saveUninitialized?: boolean
  /** Default concurrency mode for every route. Default `'merge'`. */
  mode?: ConcurrencyMode
  /**
   * Keep a per-process copy of sessions, invalidated by the store whenever anything changes
   * them: a read of a cached session costs no store round trip, under any routing. Each
   * client gets read-your-writes and monotonic reads; between clients a change is visible
   * everywhere within `maxLag` (docs/middleware.md, "Near-cache"). Needs a store with an
   * invalidation channel (RedisStore on node-redis, MemoryStore); any other store is
   * `TETHER_ERR_NEAR_CACHE_UNSUPPORTED` at start-up. `true` takes the defaults.
   */
  nearCache?: NearCacheOptions | boolean
  /** @deprecated The former name of `nearCache` (its `trustedProxies` is ignored). */
  stickyCache?: NearCacheOptions
  /**
   * The session key whose value identifies the user (for example `'userId'`): the store keeps
   * an index of each user's sessions as they are written, so that `destroyAllFor(user)` logs
   * that user out everywhere. Needs a store with the `destroyAll` capability (Memory,
   * PostgreSQL, MySQL), else `TETHER_ERR_STORE_CAPABILITY` at start-up.
   */
  owner?: string
  /** Lock mode settings. */
  lock?: {
    /** Lease TTL (ms). Default 10 s. */
    lease?: number
    /** Longest wait for the lock (ms) before a 503. Default 10 s. */
    wait?: number
  }
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  readonly secrets: readonly string[]
  readonly cookie: CookieSettings
  readonly idleTimeout: number
  readonly absoluteTimeout: number
  readonly refreshBelow: number
  readonly saveUninitialized: boolean
  readonly mode: ConcurrencyMode
  readonly lockLease: number
  readonly lockWait: number
  /** The session key naming the owner, or undefined. */
  readonly owner: string | undefined
}

const DAY = 86_400_000
const MIN_SECRET_LENGTH = 32
// RFC 6265 token characters: what a cookie name may contain.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Path and domain attribute values may not contain ';' or control characters.
const ATTRIBUTE = /^[\x20-\x3A\x3C-\x7E]+$/

function fail (option: string, problem: string): never {
  throw tetherError('TETHER_ERR_INVALID_OPTION', `session option '${option}' ${problem}`)
}

function duration (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(option, `must be a positive number of milliseconds; got ${String(value)}`)
  return Math.floor(value)
}

/**
 * Validate user options and fill in defaults. Throws `TETHER_ERR_SECRET_TOO_SHORT` or
 * `TETHER_ERR_INVALID_OPTION` naming the option.
 *
 * @example
 * ```ts
 * const resolved = resolveOptions({ secret: 'x'.repeat(32) })
 * resolved.cookie.name // 'tether.sid'
 * ```
 */
export function resolveOptions (options: SessionOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options', 'must be an object')
  const secrets = typeof options.secret === 'string' ? [options.secret] : options.secret
  if (!Array.isArray(secrets) || secrets.length === 0) fail('secret', 'is required: a string of at least 32 characters, or an array of them')
  secrets.forEach((s: unknown, i: number) => {
    if (typeof s !== 'string') fail(`secret[${i}]`, 'must be a string')
    if (s.length < MIN_SECRET_LENGTH) {
      throw tetherError('TETHER_ERR_SECRET_TOO_SHORT', `session secret${secrets.length > 1 ? `[${i}]` : ''} is ${s.length} characters; use at least ${MIN_SECRET_LENGTH} (for example: node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))")`)
    }
  })

  const name = options.cookieName ?? 'tether.sid'
  if (typeof name !== 'string' || !TOKEN.test(name)) fail('cookieName', `must be a cookie token (letters, digits, !#$%&'*+-.^_\`|~); got ${JSON.stringify(name)}`)
  const c = options.cookie ?? {}
  const path = c.path ?? '/'
  if (typeof path !== 'string' || !ATTRIBUTE.test(path)) fail('cookie.path', `must be printable ASCII without ';'; got ${JSON.stringify(path)}`)
  if (c.domain !== undefined && (typeof c.domain !== 'string' || !ATTRIBUTE.test(c.domain))) fail('cookie.domain', `must be printable ASCII without ';'; got ${JSON.stringify(c.domain)}`)
  const secure = c.secure ?? 'auto'
  if (secure !== 'auto' && typeof secure !== 'boolean') fail('cookie.secure', `must be true, false or 'auto'; got ${JSON.stringify(secure)}`)
  const sameSite = c.sameSite ?? 'lax'
  if (sameSite !== false && sameSite !== 'lax' && sameSite !== 'strict' && sameSite !== 'none') fail('cookie.sameSite', `must be 'lax', 'strict', 'none' or false; got ${JSON.stringify(sameSite)}`)
  if (sameSite === 'none' && secure === false) fail('cookie.sameSite', "is 'none', which browsers accept only with a Secure cookie; set cookie.secure to true or 'auto'")
  const partitioned = c.partitioned ?? false
  if (partitioned && secure === false) fail('cookie.partitioned', 'requires a Secure cookie; set cookie.secure to true or \'auto\'')
  const maxAge = c.maxAge === undefined ? undefined : duration('cookie.maxAge', c.maxAge, 0)

  const idleTimeout = duration('idleTimeout', options.idleTimeout, DAY)
  const absoluteTimeout = duration('absoluteTimeout', options.absoluteTimeout, 7 * DAY)
  if (absoluteTimeout < idleTimeout) fail('absoluteTimeout', `(${absoluteTimeout} ms) must not be shorter than idleTimeout (${idleTimeout} ms)`)
  const touchAfter = duration('touchAfter', options.touchAfter, Math.max(1, Math.floor(idleTimeout / 10)))
  if (touchAfter > idleTimeout) fail('touchAfter', `(${touchAfter} ms) must not exceed idleTimeout (${idleTimeout} ms)`)

  const mode = options.mode ?? 'merge'
  if (mode !== 'merge' && mode !== 'lock') fail('mode', `must be 'merge' or 'lock'; got ${JSON.stringify(mode)}`)

  if (options.owner !== undefined && (typeof options.owner !== 'string' || options.owner === '')) fail('owner', `must be a non-empty session key; got ${JSON.stringify(options.owner)}`)

  return {
    secrets,
    cookie: { name, path, domain: c.domain, httpOnly: c.httpOnly ?? true, secure, sameSite, partitioned, maxAge },
    idleTimeout,
    absoluteTimeout,
    refreshBelow: idleTimeout - touchAfter,
    saveUninitialized: options.saveUninitialized ?? false,
    mode,
    lockLease: duration('lock.lease', options.lock?.lease, 10_000),
    lockWait: duration('lock.wait', options.lock?.wait, 10_000),
    owner: options.owner
  }
}
