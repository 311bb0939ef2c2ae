/**
 * The sticky cookie, in the style of HAProxy's `cookie … insert`, but opaque and signed: its
 * value is `<id>.<mac>` where the id is an HMAC of the node name and the mac an HMAC of the id.
 * A client cannot learn a node's name or address from it, and cannot make one up: it can only
 * present a cookie the balancer gave out. Values are derived, not random, so they survive
 * restarts and reloads and agree across balancers sharing a secret.
 */
import { createHmac } from 'node:crypto'
import type { ResolvedSticky } from './config/types.js'

const ID_CHARS = 12 // 9 bytes of HMAC, base64url
const MAC_CHARS = 22 // 16 bytes of HMAC, base64url

interface Entry {
  readonly name: string
  readonly mac: string
  /** Signed with the current (first) secret; otherwise the cookie is re-issued. */
  readonly current: boolean
}

/**
 * A verified cookie.
 *
 * @example
 * ```ts
 * const match: StickyMatch | undefined = codec.verify(cookieValue)
 * const reissue = match !== undefined && !match.current // signed with an older secret
 * ```
 */
export interface StickyMatch {
  /** The node the cookie names. */
  readonly name: string
  /** False when it was signed with an older secret and should be re-issued. */
  readonly current: boolean
}

/**
 * Compare two strings in time that depends only on their length, never on where they differ,
 * so that response timing does not reveal how much of a guessed mac was right. A JS loop rather
 * than `crypto.timingSafeEqual` to avoid allocating two Buffers per request.
 */
export function constantTimeEqual (a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/**
 * Find one cookie's value in a Cookie header, without parsing the others.
 *
 * @example
 * ```ts
 * findCookie('a=1; tether_node=abc.def; b=2', 'tether_node') // 'abc.def'
 * ```
 */
export function findCookie (header: string, name: string): string | undefined {
  const needle = `${name}=`
  let from = 0
  for (;;) {
    const at = header.indexOf(needle, from)
    if (at === -1) return undefined
    const before = at === 0 ? 59 : header.charCodeAt(at - 1)
    // Only at the start of a cookie-pair: `xtether_node=` is another cookie.
    if (before === 59 /* ; */ || before === 32 /* space */ || before === 9 /* tab */) {
      const start = at + needle.length
      const end = header.indexOf(';', start)
      let value = (end === -1 ? header.slice(start) : header.slice(start, end)).trim()
      if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34) value = value.slice(1, -1)
      return value
    }
    from = at + 1
  }
}

/**
 * Issues and verifies sticky cookies for a set of node names.
 *
 * @example
 * ```ts
 * const codec = new StickyCodec(resolveConfig({ upstreams: ['http://127.0.0.1:3001'], sticky: { secret: 'at-least-16-characters' } }).sticky)
 * codec.index(['app-1'])
 * const value = codec.valueFor('app-1')
 * codec.verify(value) // { name: 'app-1', current: true }
 * codec.verify('forged.value') // undefined
 * ```
 */
export class StickyCodec {
  readonly settings: ResolvedSticky
  #byId = new Map<string, Entry>()
  #values = new Map<string, string>()
  readonly #attributes: string

  constructor (settings: ResolvedSticky) {
    this.settings = settings
    let attrs = `; Path=${settings.path}; HttpOnly; SameSite=${settings.sameSite}`
    if (settings.maxAgeSeconds !== null) attrs += `; Max-Age=${settings.maxAgeSeconds}`
    if (settings.domain !== null) attrs += `; Domain=${settings.domain}`
    if (settings.secure) attrs += '; Secure'
    this.#attributes = attrs
  }

  /**
   * Make `names` verifiable (and forget any others). The pool passes every name it ever had, so
   * that the cookie of a node removed by a reload still verifies and its client is `moved`.
   */
  index (names: Iterable<string>): void {
    const byId = new Map<string, Entry>()
    const values = new Map<string, string>()
    for (const name of names) {
      this.settings.secrets.forEach((secret, i) => {
        const id = hmac(secret, `tether-node-id\0${name}`).slice(0, ID_CHARS)
        const mac = hmac(secret, `tether-node-mac\0${id}`).slice(0, MAC_CHARS)
        byId.set(id, { name, mac, current: i === 0 })
        if (i === 0) values.set(name, `${id}.${mac}`)
      })
    }
    this.#byId = byId
    this.#values = values
  }

  /** The cookie value naming `name`, under the signing secret. */
  valueFor (name: string): string {
    const value = this.#values.get(name)
    if (value === undefined) throw new Error(`sticky: node ${name} is not indexed`)
    return value
  }

  /** The whole `Set-Cookie` header value that sends a client to `name`. */
  setCookieFor (name: string): string {
    return `${this.settings.cookie}=${this.valueFor(name)}${this.#attributes}`
  }

  /** The node a cookie value names, or `undefined` when it is malformed, forged or unknown. */
  verify (value: string): StickyMatch | undefined {
    if (value.length !== ID_CHARS + 1 + MAC_CHARS || value.charCodeAt(ID_CHARS) !== 46 /* . */) return undefined
    const entry = this.#byId.get(value.slice(0, ID_CHARS))
    if (entry === undefined) return undefined
    return constantTimeEqual(value.slice(ID_CHARS + 1), entry.mac) ? entry : undefined
  }
}

function hmac (secret: string, data: string): string {
  return createHmac('sha256', secret).update(data).digest('base64url')
}
