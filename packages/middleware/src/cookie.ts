/**
 * The session cookie: finding it in a Cookie header, verifying its signature, writing Set-Cookie.
 *
 * One format for every framework adapter: `<id>.<signature>`, where the signature is the
 * unpadded base64 HMAC-SHA256 of the id made by @fastify/cookie's signer (constant-time
 * comparison, key rotation). A cookie written by the Fastify plugin reads in the Express
 * middleware and the other way round because both go through this module.
 */
import { Signer } from '@fastify/cookie'
import { isWellFormedId } from './id.js'

/** Attributes of the session cookie, after defaults. */
export interface CookieSettings {
  readonly name: string
  readonly path: string
  readonly domain: string | undefined
  readonly httpOnly: boolean
  /** `'auto'`: Secure exactly when the request came over HTTPS. */
  readonly secure: boolean | 'auto'
  readonly sameSite: 'lax' | 'strict' | 'none' | false
  readonly partitioned: boolean
  /** Persistent cookie lifetime in ms; `undefined` makes a browser-session cookie. */
  readonly maxAge: number | undefined
}

/** What a Cookie header yielded for our cookie. */
export interface CookieRead {
  /** The verified id, or undefined when absent, malformed, forged or tampered. */
  readonly id: string | undefined
  /** A cookie with our name was present (even an invalid one): a reply may need to clear it. */
  readonly present: boolean
  /** The id verified with an older secret: re-sign it with the current one. */
  readonly resign: boolean
}

// <id 32 chars>.<sha256 HMAC, 43 chars of unpadded base64>: anything longer is refused before
// any HMAC is computed, which also bounds the work an oversized cookie can cause.
const SIGNED_LENGTH = 32 + 1 + 43
// Cookie values that verified recently. The HMAC is the largest fixed cost of a request that
// carries a session (about 2.3 µs here); a returning browser sends the same value every time.
// Only values that verified are kept, keyed by the whole signed value, so a forged cookie can
// never hit it, and a hit reveals nothing a valid cookie's holder does not already know.
const VERIFIED_MAX = 10_000

/**
 * Signs and verifies session ids, and reads and writes the session cookie.
 *
 * @example
 * ```ts
 * const jar = new CookieJar(['a-new-secret-of-at-least-32-chars!!', 'the-old-secret-still-verifies-ok!!'], settings)
 * const { id } = jar.read(req.headers.cookie)
 * res.setHeader('set-cookie', jar.serialize(jar.sign(id), { secure: true, maxAgeMs: undefined }))
 * ```
 */
export class CookieJar {
  readonly settings: CookieSettings
  readonly #signer: Signer
  readonly #prefix: string
  readonly #attributes: string
  readonly #verified = new Map<string, CookieRead>()

  constructor (secrets: readonly string[], settings: CookieSettings) {
    this.settings = settings
    this.#signer = new Signer([...secrets], 'sha256')
    this.#prefix = settings.name + '='
    let attrs = `; Path=${settings.path}`
    if (settings.domain !== undefined) attrs += `; Domain=${settings.domain}`
    if (settings.httpOnly) attrs += '; HttpOnly'
    if (settings.sameSite !== false) attrs += `; SameSite=${settings.sameSite[0]!.toUpperCase()}${settings.sameSite.slice(1)}`
    if (settings.partitioned) attrs += '; Partitioned'
    this.#attributes = attrs
  }

  /** Sign an id for the cookie value. */
  sign (id: string): string {
    return this.#signer.sign(id)
  }

  /**
   * Find and verify our cookie in a raw Cookie header. Every failure mode (no header, garbage,
   * wrong length, bad signature, several cookies of our name) ends as "no id", never a throw.
   */
  read (header: string | undefined): CookieRead {
    if (header === undefined || header.length === 0) return NO_COOKIE
    let present = false
    let from = 0
    // Browsers send several cookies of one name when paths or domains differ: the first that
    // verifies wins, like express-session's first-wins but without letting a junk one mask ours.
    for (;;) {
      const at = findCookie(header, this.#prefix, from)
      if (at === -1) break
      present = true
      const start = at + this.#prefix.length
      let end = header.indexOf(';', start)
      if (end === -1) end = header.length
      from = end
      let value = header.slice(start, end).trim()
      if (value.length > SIGNED_LENGTH * 3) continue
      if (value.includes('%')) {
        try { value = decodeURIComponent(value) } catch { continue }
      }
      if (value.length !== SIGNED_LENGTH) continue
      const known = this.#verified.get(value)
      if (known !== undefined) return known
      const result = this.#signer.unsign(value)
      if (!result.valid || result.value === null || !isWellFormedId(result.value)) continue
      const read: CookieRead = Object.freeze({ id: result.value, present: true, resign: result.renew })
      if (this.#verified.size >= VERIFIED_MAX) this.#verified.delete(this.#verified.keys().next().value!)
      this.#verified.set(value, read)
      return read
    }
    return present ? PRESENT_INVALID : NO_COOKIE
  }

  /**
   * Serialise a Set-Cookie value carrying `signed`.
   *
   * @param maxAgeMs lifetime to advertise; undefined for a browser-session cookie
   */
  serialize (signed: string, secure: boolean, maxAgeMs: number | undefined): string {
    let out = this.#prefix + signed + this.#attributes
    if (maxAgeMs !== undefined) {
      const seconds = Math.max(0, Math.floor(maxAgeMs / 1000))
      out += `; Max-Age=${seconds}; Expires=${new Date(Date.now() + seconds * 1000).toUTCString()}`
    }
    if (this.#isSecure(secure)) out += '; Secure'
    return out
  }

  /** A Set-Cookie value that makes the browser drop the cookie. */
  clear (secure: boolean): string {
    let out = this.#prefix + this.#attributes + '; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT'
    if (this.#isSecure(secure)) out += '; Secure'
    return out
  }

  #isSecure (requestIsSecure: boolean): boolean {
    return this.settings.secure === 'auto' ? requestIsSecure : this.settings.secure
  }
}

const NO_COOKIE: CookieRead = Object.freeze({ id: undefined, present: false, resign: false })
const PRESENT_INVALID: CookieRead = Object.freeze({ id: undefined, present: true, resign: false })

/** Index of `name=` at a cookie boundary in `header`, searching from `from`; -1 if none. */
function findCookie (header: string, prefix: string, from: number): number {
  let at = header.indexOf(prefix, from)
  while (at !== -1) {
    // A match must start the header or follow ';' (and optional spaces), so 'xtether.sid=' or a
    // value containing 'tether.sid=' is not mistaken for our cookie.
    let i = at - 1
    while (i >= 0 && (header.charCodeAt(i) === 32 || header.charCodeAt(i) === 9)) i--
    if (i < 0 || header.charCodeAt(i) === 59 /* ; */) return at
    at = header.indexOf(prefix, at + 1)
  }
  return -1
}
