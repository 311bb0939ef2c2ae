/**
 * HTTP/2 streams as the proxy's requests. Node's compatibility API already gives each stream
 * a request and a response with the shape of `node:http`'s; two subclasses close the gaps so
 * that the proxy forwards an h2 stream exactly as an HTTP/1.1 request (same routing,
 * stickiness, retries, timeouts and header rules):
 *
 * - the request's `rawHeaders` become HTTP/1.1 headers: pseudo-headers out, `:authority` as
 *   Host, the cookie crumbs of RFC 9113 §8.2.3 joined into one Cookie header, and a body of
 *   unknown length marked as chunked (an h2 request may carry DATA without Content-Length);
 * - the response takes the proxy's exchange slot and drops the reason phrase, which h2 lacks.
 *
 * The session guard bounds what one connection may cost: idle sessions close, and a client
 * that cancels streams faster than allowed (the rapid-reset pattern) is sent GOAWAY.
 */
import { Http2ServerRequest, Http2ServerResponse, constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { HttpExchange } from '../proxy/http.js'

/**
 * Translate an h2 request's raw headers into HTTP/1.1 ones.
 *
 * @param bodyFollows the stream did not end with its HEADERS frame
 *
 * @example
 * ```ts
 * h1HeadersOf([':method', 'GET', ':authority', 'shop.example', ':path', '/', 'cookie', 'a=1', 'cookie', 'b=2'], false)
 * // ['cookie', 'a=1; b=2', 'host', 'shop.example']
 * ```
 */
export function h1HeadersOf (raw: readonly string[], bodyFollows: boolean): string[] {
  const out: string[] = []
  let authority: string | undefined
  let hasHost = false
  let hasLength = false
  let cookieAt = -1
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = value
      continue
    }
    // h2 header names are lower case by the protocol (nghttp2 rejects others).
    if (name === 'cookie') {
      if (cookieAt === -1) { cookieAt = out.length + 1; out.push(name, value) } else out[cookieAt] = `${out[cookieAt] as string}; ${value}`
      continue
    }
    if (name === 'host') hasHost = true
    else if (name === 'content-length') hasLength = true
    out.push(name, value)
  }
  if (!hasHost && authority !== undefined) out.push('host', authority)
  // The proxy frames a body of unknown length with chunked encoding towards the node.
  if (bodyFollows && !hasLength) out.push('transfer-encoding', 'chunked')
  return out
}

/**
 * An h2 stream's request, with HTTP/1.1 raw headers.
 *
 * @example
 * ```ts
 * createSecureServer({ Http2ServerRequest: TetherH2Request, Http2ServerResponse: TetherH2Response })
 * ```
 */
export class TetherH2Request extends Http2ServerRequest {}

// Node declares `rawHeaders` an accessor, @types/node a property: the override goes on the
// prototype, computed once per request from Node's own getter.
const h2RawHeaders = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'rawHeaders')?.get
const H1_HEADERS = Symbol('tether.h1Headers')
const h2Headers = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'headers')?.get
const OWN_HEADERS = Symbol('tether.ownHeaders')
// The http-proxy engine hands the library its headers by assigning `req.headers`, which Node
// defines read-only on an h2 request: give it a slot.
Object.defineProperty(TetherH2Request.prototype, 'headers', {
  get (this: TetherH2Request & { [OWN_HEADERS]?: unknown }): unknown {
    return this[OWN_HEADERS] ?? h2Headers?.call(this)
  },
  set (this: TetherH2Request & { [OWN_HEADERS]?: unknown }, value: unknown) {
    this[OWN_HEADERS] = value
  }
})
Object.defineProperty(TetherH2Request.prototype, 'rawHeaders', {
  get (this: TetherH2Request & { [H1_HEADERS]?: string[] }): string[] {
    let h1 = this[H1_HEADERS]
    if (h1 === undefined) {
      h1 = h1HeadersOf((h2RawHeaders?.call(this) ?? []) as string[], !this.stream.endAfterHeaders)
      this[H1_HEADERS] = h1
    }
    return h1
  }
})

/**
 * An h2 stream's response, with the slot `ProxyResponse` has for its exchange.
 *
 * @example
 * ```ts
 * createSecureServer({ Http2ServerRequest: TetherH2Request, Http2ServerResponse: TetherH2Response })
 * ```
 */
export class TetherH2Response extends Http2ServerResponse {
  exchange: HttpExchange | null = null
  /** Asked for by the proxy at shutdown; h2 closes sessions with GOAWAY instead. */
  shouldKeepAlive = true
  /** `Strict-Transport-Security`, when the listener sends it. */
  static hsts: string | null = null

  // The proxy calls writeHead(status, reason, flatHeaders): HTTP/2 has no reason phrase
  // (Node warns when given one), so it is dropped.
  override writeHead (status: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
    const list = typeof reason === 'string' || reason === undefined ? headers : reason
    const hsts = (this.constructor as typeof TetherH2Response).hsts
    if (hsts !== null && Array.isArray(list)) list.push('strict-transport-security', hsts)
    return list === undefined ? super.writeHead(status) : super.writeHead(status, list as OutgoingHttpHeaders)
  }
}

/**
 * The limits one h2 connection lives under.
 *
 * @example
 * ```ts
 * const limits: SessionLimits = { idleMs: 5000, maxResetsPerSecond: 100 }
 * ```
 */
export interface SessionLimits {
  /** Close a session with no open stream after this long without a frame. */
  readonly idleMs: number
  /** Cancelled streams allowed per second, averaged over {@link RESET_WINDOW_S} seconds. */
  readonly maxResetsPerSecond: number
}

/** The rapid-reset budget holds this many seconds' worth of cancels (a burst allowance). */
export const RESET_WINDOW_S = 10

/**
 * Watches one session: counts its open streams, closes it when idle, and closes it with
 * GOAWAY (ENHANCE_YOUR_CALM) when its client cancels streams faster than allowed. The budget is
 * a token bucket: `RESET_WINDOW_S × maxResetsPerSecond` cancels, refilled at
 * `maxResetsPerSecond`, so memory per session is a few numbers whatever the client does.
 *
 * @example
 * ```ts
 * server.on('session', (session) => new SessionGuard(session, tlsSocket, limits, log))
 * ```
 */
export class SessionGuard {
  #open = 0
  #tokens: number
  #refilledAt = performance.now()
  #closed = false

  /** `socket`: the session's TLS socket, cut when the session is closed for abuse. */
  constructor (readonly session: ServerHttp2Session, readonly socket: Duplex | undefined, readonly limits: SessionLimits, readonly log: Logger) {
    this.#tokens = limits.maxResetsPerSecond * RESET_WINDOW_S
    session.on('stream', (stream: ServerHttp2Stream) => this.#onStream(stream))
    session.on('timeout', () => {
      if (this.#open === 0) session.close()
      else session.setTimeout(limits.idleMs)
    })
    session.setTimeout(limits.idleMs)
  }

  #onStream (stream: ServerHttp2Stream): void {
    this.#open++
    stream.once('close', () => {
      this.#open--
      // `aborted`: the client reset the stream before it was done with it (RST_STREAM from the
      // peer, whatever the code). That is what a rapid-reset attack repeats.
      if (stream.aborted) this.#cancelled()
    })
  }

  #cancelled (): void {
    if (this.#closed) return
    const now = performance.now()
    const rate = this.limits.maxResetsPerSecond
    this.#tokens = Math.min(rate * RESET_WINDOW_S, this.#tokens + ((now - this.#refilledAt) / 1000) * rate)
    this.#refilledAt = now
    this.#tokens -= 1
    if (this.#tokens >= 0) return
    this.#closed = true
    this.log.warn({ code: 'TETHER_ERR_CLIENT_RAPID_RESET', peer: this.session.socket?.remoteAddress, limit: rate }, 'HTTP/2 client cancels streams too fast: closing its connection')
    this.session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM)
    // Do not wait for its streams: they are what it abuses. Node's session.destroy() only ends
    // the socket gracefully, which a client that keeps writing can hold open: cut it once the
    // GOAWAY had its chance to go out.
    this.session.destroy()
    const socket = this.socket
    if (socket !== undefined) setImmediate(() => socket.destroy())
  }

  /** Open streams now. */
  get open (): number { return this.#open }
}
