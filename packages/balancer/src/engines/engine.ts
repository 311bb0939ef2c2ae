/**
 * The forwarding interface. An engine moves one request to one upstream node and its response
 * back; it knows nothing of nodes' health, stickiness or retries (the proxy decides those), only
 * of connections and HTTP framing. Every engine runs the same proxy test suite.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { EngineName, ResolvedUpstreamTls } from '../config/types.js'
import type { UpstreamError } from './failure.js'

/**
 * Where to send: the parts of a node an engine needs.
 *
 * @example
 * ```ts
 * const target: UpstreamTarget = { name: 'app-1', host: '::1', port: 3001, authority: '[::1]:3001' }
 * ```
 */
export interface UpstreamTarget {
  readonly name: string
  /** For `net.connect`: IPv6 without brackets. */
  readonly host: string
  readonly port: number
  /** `host:port` as in a Host header. */
  readonly authority: string
  /** TLS settings of an `https://` node; absent or null: plain HTTP. */
  readonly tls?: ResolvedUpstreamTls | null
}

/**
 * How the request body is framed towards the upstream: `none` (no body), `length`
 * (Content-Length, among `headers`; bytes streamed as they come) or `chunked` (length unknown:
 * the client sent chunked, and the engine frames it with chunked encoding).
 *
 * @example
 * ```ts
 * const kind: BodyKind = req.headers['transfer-encoding'] !== undefined ? 'chunked' : 'length'
 * ```
 */
export type BodyKind = 'none' | 'length' | 'chunked'

/**
 * One attempt at forwarding a request.
 *
 * @example
 * ```ts
 * const request: ForwardRequest = { method: 'GET', path: '/', headers: ['host', 'shop.example'], bodyKind: 'none', body: req, isHead: false }
 * ```
 */
export interface ForwardRequest {
  readonly method: string
  /** Request target as received (origin-form). */
  readonly path: string
  /**
   * Headers to send, flat: `[name, value, name, value, …]`, already stripped of hop-by-hop
   * headers and with the X-Forwarded-* and x-tether-* headers set. Engines add only framing
   * (`connection`, `transfer-encoding`, `upgrade`).
   */
  readonly headers: readonly string[]
  readonly bodyKind: BodyKind
  /** The client request, read only when there is a body and only once connected. */
  readonly body: IncomingMessage
  /** HEAD: the response has no body whatever its headers say. */
  readonly isHead: boolean
}

/**
 * Receives one response. Engines call these in order: head, data*, end; or error at any point.
 *
 * @example
 * ```ts
 * const sink: ResponseSink = { onHead (s, r, h) {}, onData () { return true }, onEnd () {}, onError (err) {} }
 * ```
 */
export interface ResponseSink {
  /** `headers` flat, as received (hop-by-hop included; the proxy strips them). */
  onHead (status: number, reason: string, headers: readonly string[]): void
  /** Return false to ask the engine to pause until `UpstreamExchange.resume()`. */
  onData (chunk: Buffer): boolean
  onEnd (): void
  /** The attempt failed; `error.phase` says whether it may be retried, `error.kind` how to answer. */
  onError (error: UpstreamError): void
}

/**
 * Handle on one in-flight attempt.
 *
 * @example
 * ```ts
 * const exchange: UpstreamExchange = engine.request(target, request, sink)
 * res.on('close', () => exchange.abort())
 * ```
 */
export interface UpstreamExchange {
  /** Stop the attempt and free its connection (the client went away). Idempotent. */
  abort (): void
  /** Resume delivering data after `onData` returned false. */
  resume (): void
}

/**
 * Receives the outcome of an upgrade (WebSocket) attempt.
 *
 * @example
 * ```ts
 * const sink: UpgradeSink = { onUpgrade (reason, headers, socket, head) { client.pipe(socket).pipe(client) }, onResponse () {}, onError () {} }
 * ```
 */
export interface UpgradeSink {
  /** 101: both sides now speak the upgraded protocol over `socket`; `head` is data already read. */
  onUpgrade (reason: string, headers: readonly string[], socket: Duplex, head: Buffer): void
  /** The upstream declined with an ordinary response, fully read (bounded). */
  onResponse (status: number, reason: string, headers: readonly string[], body: Buffer): void
  onError (error: UpstreamError): void
}

/**
 * Connection timeouts and pooling settings an engine honours.
 *
 * @example
 * ```ts
 * const options: EngineOptions = { connectTimeout: 3000, responseTimeout: 60000, maxIdle: 128, keepAliveTimeout: 4000 }
 * ```
 */
export interface EngineOptions {
  /** Connect timeout (ms). */
  readonly connectTimeout: number
  /** Response headers timeout and body idle timeout (ms). */
  readonly responseTimeout: number
  /** Idle upstream connections kept per node. */
  readonly maxIdle: number
  /** How long an idle upstream connection is kept (ms). */
  readonly keepAliveTimeout: number
}

/**
 * A forwarding engine.
 *
 * @example
 * ```ts
 * const engine = createEngine('h1', { connectTimeout: 3000, responseTimeout: 60000, maxIdle: 128, keepAliveTimeout: 4000 })
 * ```
 */
export interface Engine {
  readonly name: EngineName
  /** Start one attempt. Never throws: failures arrive through `sink.onError`. */
  request (target: UpstreamTarget, request: ForwardRequest, sink: ResponseSink): UpstreamExchange
  /** Start one upgrade attempt. `request.headers` hold no Connection/Upgrade; `protocol` is the Upgrade value. */
  upgrade (target: UpstreamTarget, request: ForwardRequest, protocol: string, sink: UpgradeSink): void
  /** Close idle connections to a node that left the configuration; busy ones close when done. */
  release (target: UpstreamTarget): void
  /**
   * Replaced by a reload: take no more work, let in-flight attempts finish, close each
   * connection as it frees up, and close whatever is left after `graceMs`.
   */
  retire (graceMs: number): void
  /** Close every connection. In-flight attempts fail. */
  close (): Promise<void>
}
