/**
 * `req.session.cookie`: express-session's per-session cookie object, reduced to what Tether
 * can honour. The lifetime (`maxAge` / `expires`) is per session: set it in a login handler
 * ("remember me") and it is saved with the session, sent in the Set-Cookie, and used as this
 * session's idle TTL in the store, always within the absolute timeout. The other attributes
 * are the middleware's options, readable here.
 */
import { tetherError } from '../errors.js'
import type { CookieSettings } from '../cookie.js'

/**
 * What the cookie view needs of the session state.
 *
 * @example
 * ```ts
 * class SessionState implements LifetimeHolder { lifetime = undefined; … }
 * ```
 */
export interface LifetimeHolder {
  /** This session's lifetime: ms, `null` for a browser-session cookie, undefined for the option's. */
  readonly lifetime: number | null | undefined
  /** The absolute deadline (epoch ms); 0 while a new session has none yet. */
  readonly absoluteExpiry: number
  /** The lifetime in effect: this session's, else the `cookie.maxAge` option; undefined for none. */
  cookieLifetime (): number | undefined
  setLifetime (lifetime: number | null): void
}

/**
 * The cookie of one session, as `req.session.cookie` shows it.
 *
 * @example
 * ```ts
 * app.post('/login', (req, res) => {
 *   if (req.body.remember) req.session.cookie.maxAge = 30 * 86_400_000 // this session only
 *   res.redirect('/')
 * })
 * ```
 */
export class SessionCookie {
  readonly #holder: LifetimeHolder
  readonly #settings: CookieSettings

  constructor (holder: LifetimeHolder, settings: CookieSettings) {
    this.#holder = holder
    this.#settings = settings
  }

  /** The lifetime the cookie was given (ms), or null for a browser-session cookie. */
  get originalMaxAge (): number | null {
    return this.#holder.cookieLifetime() ?? null
  }

  /**
   * What is left of the cookie's life if it were sent now (ms): the lifetime, cut at the
   * absolute deadline; null for a browser-session cookie. Setting it sets this session's
   * lifetime (`null`: a browser-session cookie).
   */
  get maxAge (): number | null {
    const lifetime = this.#holder.cookieLifetime()
    if (lifetime === undefined) return null
    const deadline = this.#holder.absoluteExpiry
    return deadline === 0 ? lifetime : Math.max(0, Math.min(lifetime, deadline - Date.now()))
  }

  set maxAge (ms: number | null) {
    if (ms !== null && (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 1000)) {
      throw tetherError('TETHER_ERR_INVALID_COOKIE_LIFETIME', `req.session.cookie.maxAge must be a number of milliseconds (at least 1000) or null; got ${String(ms)}`)
    }
    this.#holder.setLifetime(ms === null ? null : Math.floor(ms))
  }

  /**
   * When the cookie would expire if sent now; null for a browser-session cookie. Setting a
   * date sets the lifetime to the time left until it (Tether's lifetimes slide: each refresh
   * of the session starts that lifetime again).
   */
  get expires (): Date | null {
    const left = this.maxAge
    return left === null ? null : new Date(Date.now() + left)
  }

  set expires (date: Date | null) {
    if (date === null) {
      this.maxAge = null
      return
    }
    if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
      throw tetherError('TETHER_ERR_INVALID_COOKIE_LIFETIME', `req.session.cookie.expires must be a Date or null; got ${String(date)}`)
    }
    this.maxAge = date.getTime() - Date.now()
  }

  get path (): string { return this.#settings.path }
  get domain (): string | undefined { return this.#settings.domain }
  get httpOnly (): boolean { return this.#settings.httpOnly }
  get secure (): boolean | 'auto' { return this.#settings.secure }
  get sameSite (): 'lax' | 'strict' | 'none' | false { return this.#settings.sameSite }
  get partitioned (): boolean { return this.#settings.partitioned }

  toJSON (): Record<string, unknown> {
    return { originalMaxAge: this.originalMaxAge, expires: this.expires, path: this.path, domain: this.domain, httpOnly: this.httpOnly, secure: this.secure, sameSite: this.sameSite }
  }
}

/** The stored form of a lifetime: the `cookie` field, JSON; undefined when the option applies. */
export function encodeLifetime (lifetime: number | null | undefined): string | undefined {
  return lifetime === undefined ? undefined : JSON.stringify({ maxAge: lifetime })
}

/** Read the stored `cookie` field back; anything unexpected counts as "the option applies". */
export function decodeLifetime (json: string | undefined): number | null | undefined {
  if (json === undefined) return undefined
  try {
    const maxAge = (JSON.parse(json) as { maxAge?: unknown } | null)?.maxAge
    if (maxAge === null) return null
    return typeof maxAge === 'number' && Number.isFinite(maxAge) && maxAge > 0 ? maxAge : undefined
  } catch {
    return undefined
  }
}
