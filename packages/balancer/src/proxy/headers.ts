/**
 * Header rewriting on the request path, in one pass over `rawHeaders`: hop-by-hop headers out
 * (RFC 9110 §7.6.1, plus whatever Connection lists), client-sent `x-tether-*` out, X-Forwarded-*
 * replaced unless the peer is a trusted proxy, and the facts the proxy needs (sticky cookie,
 * body framing, upgrade) picked up on the way. No regexes and no lower-casing of every name:
 * names are told apart by length first, then compared case-insensitively in place.
 */

/**
 * ASCII case-insensitive equality against a literal made of lower-case letters, digits and '-'
 * (characters whose 0x20 bit is set, so that OR-ing it in is the identity on them).
 */
export function lowerEquals (name: string, lower: string): boolean {
  if (name.length !== lower.length) return false
  for (let i = 0; i < lower.length; i++) {
    // OR-ing 0x20 folds A-Z onto a-z; for the token characters a header name may hold it
    // produces a letter only from that letter's upper case, and '-' stays '-'.
    if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  }
  return true
}

const TETHER_PREFIX = 'x-tether-'

function hasTetherPrefix (name: string): boolean {
  if (name.length < TETHER_PREFIX.length || (name.charCodeAt(0) | 0x20) !== 120 /* x */) return false
  for (let i = 1; i < TETHER_PREFIX.length; i++) {
    if ((name.charCodeAt(i) | 0x20) !== TETHER_PREFIX.charCodeAt(i)) return false
  }
  return true
}

// What a request header is to the proxy.
const KEEP = 0
const DROP = 1
const HOST = 2
const COOKIE = 3
const CONTENT_LENGTH = 4
const TRANSFER_ENCODING = 5
const CONNECTION = 6
const UPGRADE = 7
const XFF = 8
const XFP = 9
const XFH = 10
const UNTRUSTED_ONLY = 11 // Forwarded, X-Real-IP: believed only from trusted proxies

function classifyRequestHeader (name: string): number {
  switch (name.length) {
    case 2: if (lowerEquals(name, 'te')) return DROP; break
    case 4: if (lowerEquals(name, 'host')) return HOST; break
    case 6:
      if (lowerEquals(name, 'cookie')) return COOKIE
      // Node already answered `100 Continue` to the client; the body is on its way.
      if (lowerEquals(name, 'expect')) return DROP
      break
    case 7:
      if (lowerEquals(name, 'upgrade')) return UPGRADE
      if (lowerEquals(name, 'trailer')) return DROP
      break
    case 9:
      if (lowerEquals(name, 'forwarded') || lowerEquals(name, 'x-real-ip')) return UNTRUSTED_ONLY
      break
    case 10:
      if (lowerEquals(name, 'connection')) return CONNECTION
      if (lowerEquals(name, 'keep-alive')) return DROP
      break
    case 14: if (lowerEquals(name, 'content-length')) return CONTENT_LENGTH; break
    case 15: if (lowerEquals(name, 'x-forwarded-for')) return XFF; break
    case 16:
      if (lowerEquals(name, 'x-forwarded-host')) return XFH
      if (lowerEquals(name, 'proxy-connection')) return DROP
      break
    case 17:
      if (lowerEquals(name, 'transfer-encoding')) return TRANSFER_ENCODING
      if (lowerEquals(name, 'x-forwarded-proto')) return XFP
      break
    case 19: if (lowerEquals(name, 'proxy-authorization')) return DROP; break
  }
  return hasTetherPrefix(name) ? DROP : KEEP
}

/** What the header pass learns about a request. Filled in place to avoid an allocation. */
export interface RequestFacts {
  /** The client's headers to forward, flat; the balancer's own (X-Forwarded-*, x-tether-*) go before them. */
  clientHeaders: string[]
  /** The sticky cookie's value, when a Cookie header carries it. */
  stickyValue: string | undefined
  /** Content-Length seen (and not zero). */
  hasLength: boolean
  /** Transfer-Encoding seen (Node has de-chunked the body). */
  chunked: boolean
  /** The Upgrade header's value. */
  upgrade: string | undefined
  /** Client-sent X-Forwarded-For (kept only from trusted peers). */
  forwardedFor: string | undefined
  forwardedProto: string | undefined
  forwardedHost: string | undefined
  host: string | undefined
  /** Host headers seen: more than one is a 400 (RFC 9112 §3.2). */
  hostCount: number
}

/**
 * One pass over `raw` (a request's `rawHeaders`), filling `facts`.
 *
 * @param raw `req.rawHeaders`
 * @param trusted the peer is a trusted proxy: keep its X-Forwarded-*, Forwarded and X-Real-IP
 * @param cookieName the sticky cookie's name, or '' when sticky is off
 * @param findCookie extracts a cookie value from a Cookie header
 */
export function scanRequestHeaders (
  raw: readonly string[],
  trusted: boolean,
  cookieName: string,
  findCookie: (header: string, name: string) => string | undefined,
  facts: RequestFacts
): void {
  const out = facts.clientHeaders
  let connectionTokens: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    switch (classifyRequestHeader(name)) {
      case KEEP: out.push(name, value); break
      case DROP: break
      case HOST: facts.host = value; facts.hostCount++; out.push(name, value); break
      case COOKIE:
        if (cookieName !== '' && facts.stickyValue === undefined) facts.stickyValue = findCookie(value, cookieName)
        out.push(name, value)
        break
      case CONTENT_LENGTH:
        if (value !== '0') facts.hasLength = true
        out.push(name, value)
        break
      case TRANSFER_ENCODING: facts.chunked = true; break
      case CONNECTION:
        if (!lowerEquals(value, 'keep-alive') && !lowerEquals(value, 'close')) connectionTokens = connectionTokens === undefined ? value : `${connectionTokens},${value}`
        break
      case UPGRADE: facts.upgrade = value; break
      case XFF: if (trusted) facts.forwardedFor = facts.forwardedFor === undefined ? value : `${facts.forwardedFor}, ${value}`; break
      case XFP: if (trusted && facts.forwardedProto === undefined) facts.forwardedProto = value; break
      case XFH: if (trusted && facts.forwardedHost === undefined) facts.forwardedHost = value; break
      case UNTRUSTED_ONLY: if (trusted) out.push(name, value); break
    }
  }
  if (connectionTokens !== undefined) removeListed(out, connectionTokens)
}

/**
 * What an app node's session middleware reported in `x-tether-cache`: its near-cache served the
 * session (`hit`) or read the store (`miss`); null when it sent nothing (no near-cache, no
 * session, or not a Tether app).
 *
 * @example
 * ```ts
 * const cache: CacheReport = filterResponseHeaders(raw, out, false)
 * ```
 */
export type CacheReport = 'hit' | 'miss' | null

/**
 * Strip a response's hop-by-hop headers, appending the rest to `out`. When the upstream framed
 * the body with Transfer-Encoding, its Content-Length (if any) is dropped too (RFC 9112 §6.3):
 * Node re-frames the body towards the client. `x-tether-cache` is the app's report to the
 * balancer, not to the client: it is taken out and returned.
 */
export function filterResponseHeaders (raw: readonly string[], out: string[], keepUpgrade: boolean): CacheReport {
  let connectionTokens: string | undefined
  let transferEncoding = false
  let cache: CacheReport = null
  const start = out.length
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    switch (name.length) {
      case 2: if (lowerEquals(name, 'te')) continue; break
      case 7:
        if (lowerEquals(name, 'trailer')) continue
        if (!keepUpgrade && lowerEquals(name, 'upgrade')) continue
        break
      case 10:
        if (lowerEquals(name, 'connection')) {
          // The usual values list no other header: skip the token pass for them.
          if (!lowerEquals(value, 'keep-alive') && !lowerEquals(value, 'close')) {
            connectionTokens = connectionTokens === undefined ? value : `${connectionTokens},${value}`
          }
          if (!keepUpgrade) continue
        }
        if (lowerEquals(name, 'keep-alive')) continue
        break
      case 14:
        if (lowerEquals(name, 'x-tether-cache')) {
          cache = value === 'hit' ? 'hit' : value === 'miss' ? 'miss' : cache
          continue
        }
        break
      case 16: if (lowerEquals(name, 'proxy-connection')) continue; break
      case 17: if (lowerEquals(name, 'transfer-encoding')) { transferEncoding = true; continue } break
      case 18: if (lowerEquals(name, 'proxy-authenticate')) continue; break
    }
    out.push(name, value)
  }
  if (transferEncoding) removeNamed(out, start, 'content-length')
  if (connectionTokens !== undefined && !keepUpgrade) removeListed(out, connectionTokens, start)
  return cache
}

/**
 * Remove every header named in a Connection value (other than the usual tokens), in one pass
 * over the tokens and one over the headers: a request with thousands of tokens and headers
 * costs their sum, not their product.
 */
function removeListed (headers: string[], tokens: string, start = 0): void {
  const listed = new Set<string>()
  for (const token of tokens.split(',')) {
    const name = token.trim().toLowerCase()
    if (name === '' || name === 'close' || name === 'keep-alive' || name === 'upgrade') continue
    // Never let a client strip what the proxy itself relies on.
    if (name === 'host' || name === 'cookie' || name === 'content-length') continue
    listed.add(name)
  }
  if (listed.size > 0) compact(headers, start, (lower) => listed.has(lower))
}

function removeNamed (headers: string[], start: number, lower: string): void {
  compact(headers, start, (name) => name === lower)
}

/** Drop, in place and in one pass, the pairs from `start` on whose lower-cased name `drop` matches. */
function compact (headers: string[], start: number, drop: (lowerName: string) => boolean): void {
  let w = start
  for (let r = start; r < headers.length; r += 2) {
    const name = headers[r] as string
    // Arbitrary token: a plain toLowerCase, since lowerEquals assumes a letters-only literal.
    if (drop(name.toLowerCase())) continue
    if (w !== r) { headers[w] = name; headers[w + 1] = headers[r + 1] as string }
    w += 2
  }
  headers.length = w
}

/**
 * Whether a Host value is `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): an IP
 * literal in brackets, or a reg-name of unreserved, percent-encoded and sub-delim characters.
 * Anything else (`a@evil.example/x`, spaces, a path) is refused rather than passed to apps
 * that build URLs from it. Empty is allowed, as RFC 9112 §3.2 allows it.
 *
 * @example
 * ```ts
 * isValidHost('shop.example:8080') // true
 * isValidHost('a@evil.example/x') // false
 * ```
 */
export function isValidHost (value: string): boolean {
  let i = 0
  const n = value.length
  if (n > 0 && value.charCodeAt(0) === 91 /* [ */) {
    i = 1
    while (i < n) {
      const c = value.charCodeAt(i)
      if (c === 93 /* ] */) break
      if (!(isHex(c) || c === 58 /* : */ || c === 46 /* . */)) return false
      i++
    }
    if (i === n || i === 1) return false
    i++
  } else {
    while (i < n) {
      const c = value.charCodeAt(i)
      if (c === 58 /* : */) break
      if (c === 37 /* % */) {
        if (i + 2 >= n || !isHex(value.charCodeAt(i + 1)) || !isHex(value.charCodeAt(i + 2))) return false
        i += 3
        continue
      }
      if (!isRegNameChar(c)) return false
      i++
    }
  }
  if (i === n) return true
  if (value.charCodeAt(i) !== 58 /* : */) return false
  for (i++; i < n; i++) {
    const c = value.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

function isHex (c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102)
}

// unreserved (ALPHA DIGIT - . _ ~) and sub-delims (! $ & ' ( ) * + , ; =).
function isRegNameChar (c: number): boolean {
  if ((c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122)) return true
  switch (c) {
    case 45: case 46: case 95: case 126:
    case 33: case 36: case 38: case 39: case 40: case 41: case 42: case 43: case 44: case 59: case 61:
      return true
    default: return false
  }
}
