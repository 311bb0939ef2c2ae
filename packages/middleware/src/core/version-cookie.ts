/**
 * The version cookie of the near-cache: each client carries the highest version of its session
 * it has seen (written, or read from the store), and a node serves it a cached copy only when
 * the copy is at least that version. That is what gives each client read-your-writes and
 * monotonic reads while another node's invalidation is still on its way (Terry et al.'s session
 * guarantees, carried by the client).
 *
 * Value: `<tag>.<version>`, where the tag is 8 characters of SHA-256 of the session id, so a
 * version seen of one session never constrains another (after a regenerate, a new login). The
 * cookie is not signed, and needs not be: a forged higher version only makes its sender's
 * reads go to the store; a forged lower one only weakens its sender's own guarantee. It can
 * never make anyone see a destroyed session (the store's invalidation drops that copy).
 */
import { createHash } from 'node:crypto'
import type { CookieSettings } from '../cookie.js'

/**
 * @example
 * ```ts
 * const vc = new VersionCookie(settings)
 * const seen = vc.read(req.headers.cookie, id)              // 0 when absent or for another id
 * res.appendHeader('set-cookie', vc.serialize(id, 7, false, undefined))
 * ```
 */
export class VersionCookie {
  readonly #prefix: string
  readonly #attributes: string
  readonly #secure: boolean | 'auto'

  constructor (settings: CookieSettings) {
    this.#prefix = `${settings.name}.v=`
    let attrs = `; Path=${settings.path}`
    if (settings.domain !== undefined) attrs += `; Domain=${settings.domain}`
    if (settings.httpOnly) attrs += '; HttpOnly'
    if (settings.sameSite !== false) attrs += `; SameSite=${settings.sameSite[0]!.toUpperCase()}${settings.sameSite.slice(1)}`
    if (settings.partitioned) attrs += '; Partitioned'
    this.#attributes = attrs
    this.#secure = settings.secure
  }

  /** The version the client presents for session `id`; 0 when it presents none for it. */
  read (header: string | undefined, id: string): number {
    if (header === undefined) return 0
    let at = header.indexOf(this.#prefix)
    while (at > 0 && header[at - 1] !== ' ' && header[at - 1] !== ';') at = header.indexOf(this.#prefix, at + 1)
    if (at === -1) return 0
    const start = at + this.#prefix.length
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    const value = header.slice(start, end).trim()
    const dot = value.indexOf('.')
    if (dot !== 8 || value.slice(0, 8) !== tag(id)) return 0
    const version = Number(value.slice(9))
    return Number.isSafeInteger(version) && version > 0 ? version : 0
  }

  /** A Set-Cookie value presenting `version` of session `id` from now on. */
  serialize (id: string, version: number, secure: boolean, maxAgeMs: number | undefined): string {
    let out = `${this.#prefix}${tag(id)}.${version}${this.#attributes}`
    if (maxAgeMs !== undefined) out += `; Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}`
    if (this.#secure === 'auto' ? secure : this.#secure) out += '; Secure'
    return out
  }
}

function tag (id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 8)
}
