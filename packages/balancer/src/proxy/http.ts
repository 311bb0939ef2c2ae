/**
 * One proxied HTTP request, from the client's request to the last byte of the response:
 * routing, attempts, the retry policy, and the translation of failures into 502/503/504.
 *
 * Retry policy (never duplicate a write):
 * - a `connect` failure (nothing sent) is retried on another node whatever the method, since
 *   engines read a request body only once connected;
 * - a `request` failure (the connection broke before any response byte) is retried only for
 *   idempotent methods whose body was not consumed;
 * - `timeout` and `response` failures are never retried;
 * - with `timeouts.perTry` set, an idempotent request without a body that has no response
 *   head within it is abandoned and retried on another node (a hung node must not hold its
 *   clients for the whole response timeout); the abandoned attempt counts as a failure;
 * - at most `retries` further nodes, each tried once.
 */
import { ServerResponse, type IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { ResponseSink, UpstreamExchange } from '../engines/engine.js'
import { FAILURE_CODES, type FailurePhase, type UpstreamError } from '../engines/failure.js'
import { errorCodes, type ErrorCode } from '../errors.js'
import type { UpstreamNode } from '../pool/node.js'
import type { ProxyRuntime, ProxyShared } from './context.js'
import { filterResponseHeaders } from './headers.js'
import type { CacheReport } from './headers.js'
import { respondError } from './respond.js'
import { RoutedRequest } from './routing.js'

/**
 * Node's ServerResponse with a slot for its exchange, so that the response's own events reach
 * the exchange through module-level listeners instead of a closure per request.
 */
export class ProxyResponse extends ServerResponse<IncomingMessage> {
  exchange: HttpExchange | null = null
}

function onResponseClose (this: ProxyResponse): void {
  this.exchange?.clientClosed()
}

function onResponseDrain (this: ProxyResponse): void {
  this.exchange?.upstream?.resume()
}

function onPerTryTimeout (this: HttpExchange): void {
  this.perTryExpired()
}

/** Requests idempotent by RFC 9110 §9.2.2, which may be retried after a `request`-phase failure. */
export function isIdempotent (method: string): boolean {
  switch (method) {
    case 'GET': case 'HEAD': case 'OPTIONS': case 'TRACE': case 'PUT': case 'DELETE': return true
    default: return false
  }
}

/** One HTTP request through the balancer. */
export class HttpExchange extends RoutedRequest implements ResponseSink {
  readonly res: ProxyResponse
  upstream: UpstreamExchange | null = null
  settled = false
  status = 0
  /** Response body bytes handed to the client. */
  bytesOut = 0
  /** The answer is the balancer's own error. */
  ownError = false
  /** The node's near-cache report on its response head. */
  cache: CacheReport = null
  readonly #start: number
  /** The per-try deadline of the current attempt, when one applies. */
  #perTry: NodeJS.Timeout | null = null

  constructor (rt: ProxyRuntime, shared: ProxyShared, req: IncomingMessage, res: ProxyResponse) {
    super(rt, shared, req)
    this.res = res
    this.#start = performance.now()
    res.exchange = this
    res.on('close', onResponseClose)
    shared.started()
  }

  /** Route the request and send the first attempt. */
  start (): void {
    if (this.shared.closing) this.res.shouldKeepAlive = false
    const refused = this.prepare()
    if (refused !== undefined) {
      this.shared.log.warn({ code: refused, peer: this.peer }, 'bad client request')
      // The connection is not trusted with another request.
      this.res.shouldKeepAlive = false
      this.#fail(refused, null)
      return
    }
    this.routeFirst()
  }

  protected send (node: UpstreamNode): void {
    const perTry = this.rt.perTryTimeout
    if (perTry > 0 && this.bodyKind === 'none' && isIdempotent(this.method)) {
      this.#perTry = setTimeout(onPerTryTimeout.bind(this), perTry)
    }
    this.upstream = this.rt.engine.request(node, this, this)
  }

  protected refuse (code: ErrorCode): void {
    this.#fail(code, null)
  }

  protected get finished (): boolean { return this.settled }

  #clearPerTry (): void {
    if (this.#perTry === null) return
    clearTimeout(this.#perTry)
    this.#perTry = null
  }

  /** No response head within `timeouts.perTry`: give up on this node, try another. */
  perTryExpired (): void {
    this.#perTry = null
    const upstream = this.upstream
    const lease = this.lease
    if (this.settled || lease === null || upstream === null || this.res.headersSent) return
    this.upstream = null
    upstream.abort()
    const node = lease.node
    this.leave('failed', `per-try timeout (${this.rt.perTryTimeout} ms)`)
    this.shared.events.perTryTimedOut(node)
    if (this.attempts <= this.rt.retries) {
      const next = this.chooseNext(node)
      if (next !== undefined) {
        this.shared.events.retried()
        this.shared.log.info({ node: node.name, next: next.name, phase: 'timeout', err: 'per-try timeout' }, 'retrying on another node')
        this.enter(next)
        return
      }
    }
    this.shared.log.warn({ node: node.name, phase: 'timeout', err: 'per-try timeout', attempts: this.attempts }, 'upstream failed')
    this.#fail(FAILURE_CODES.timeout, node)
  }

  onHead (status: number, reason: string, raw: readonly string[]): void {
    this.#clearPerTry()
    const lease = this.lease
    if (lease === null) return
    const node = lease.node
    this.shared.events.responseHead(node, performance.now() - lease.startedAt)
    // Latency outlier detection counts requests without a body: an upload's time is the client's.
    if (this.bodyKind === 'none') lease.answered()
    const out: string[] = []
    this.cache = filterResponseHeaders(raw, out, false)
    if (this.sendCookie) out.push('set-cookie', node.setCookie)
    const res = this.res
    if (this.shared.closing) res.shouldKeepAlive = false
    try {
      res.writeHead(status, reason === '' ? undefined : reason, out)
    } catch (err) {
      // Node refused a header the upstream sent (invalid name or value): never pass it on.
      this.shared.log.warn({ node: node.name, err: (err as Error).message }, 'invalid response header from upstream')
      this.upstream?.abort()
      this.upstream = null
      this.leave('failed', 'invalid header')
      this.#fail('TETHER_ERR_UPSTREAM_PROTOCOL', node)
      return
    }
    this.status = status
  }

  onData (chunk: Buffer): boolean {
    this.bytesOut += chunk.length
    const res = this.res
    if (res.write(chunk)) return true
    res.once('drain', onResponseDrain)
    return false
  }

  onEnd (): void {
    this.upstream = null
    this.leave('done')
    this.res.end()
    this.#settle()
  }

  onError (error: UpstreamError): void {
    this.#clearPerTry()
    this.upstream = null
    const lease = this.lease
    if (lease === null) return
    const node = lease.node
    const res = this.res
    // req.socket cannot tell: an engine may destroy the request stream it has read. The
    // response's socket is the client connection as long as the response is not done.
    const client = res.socket
    // (An h2 stream's response has no socket, undefined rather than null, once the stream closed.)
    if (this.settled || error.kind === 'aborted' || client == null || client.destroyed) {
      // The client went away: not the node's fault, and nobody is left to answer.
      this.leave('cancelled')
      if (this.settled) return
      this.shared.log.debug({ node: node.name, code: FAILURE_CODES.aborted }, 'client went away')
      res.destroy()
      this.#settle()
      return
    }
    const phase = error.phase
    this.leave('failed', error.code)
    if (res.headersSent) {
      // Part of the response is out: the only honest thing left is to cut the connection.
      this.shared.log.warn({ node: node.name, phase, err: error.message }, 'upstream failed mid-response')
      res.destroy()
      this.#settle()
      return
    }
    if (this.attempts <= this.rt.retries && this.#retryable(phase)) {
      const next = this.chooseNext(node)
      if (next !== undefined) {
        this.shared.events.retried()
        this.shared.log.info({ node: node.name, next: next.name, phase, err: error.message }, 'retrying on another node')
        this.enter(next)
        return
      }
    }
    this.shared.log.warn({ node: node.name, phase, err: error.message, attempts: this.attempts }, 'upstream failed')
    this.#fail(FAILURE_CODES[error.kind], node)
  }

  /** The client connection closed: finished normally, or gone mid-way. */
  clientClosed (): void {
    this.#clearPerTry()
    if (this.settled) return
    if (this.queued) { this.queued = false; this.rt.pool.leaveQueue(this) }
    const upstream = this.upstream
    this.upstream = null
    if (upstream !== null) upstream.abort()
    const node = this.leave('cancelled')
    this.shared.log.debug({ node: node?.name, code: FAILURE_CODES.aborted }, 'client went away')
    this.#settle()
  }

  #retryable (phase: FailurePhase): boolean {
    // `readableDidRead`: no byte of the body has been handed to anyone, so it can be sent again.
    const bodyIntact = this.bodyKind === 'none' || !this.body.readableDidRead
    if (phase === 'connect') return bodyIntact
    if (phase === 'request') return bodyIntact && isIdempotent(this.method)
    return false
  }

  #fail (code: ErrorCode, node: UpstreamNode | null): void {
    this.shared.events.errorAnswered(code)
    this.ownError = true
    if (code === 'TETHER_ERR_NO_UPSTREAM') this.shared.log.warn({ code, route: this.route }, 'no upstream node available')
    if (!this.res.headersSent) this.status = errorCodes[code].status ?? 502
    respondError(this.res, code, this.shared.closing || !this.res.shouldKeepAlive)
    if (node !== null) this.shared.log.debug({ node: node.name, code }, 'error answer sent')
    this.#settle()
  }

  #settle (): void {
    this.#clearPerTry()
    if (this.settled) return
    this.settled = true
    this.res.exchange = null
    const shared = this.shared
    shared.events.routed(this.route)
    shared.events.finished({ node: this.served ?? null, status: this.status, bytesOut: this.bytesOut, ownError: this.ownError, cache: this.cache })
    if (this.rt.accessLog) {
      shared.log.info({
        access: true,
        method: this.method,
        url: this.path,
        status: this.status,
        route: this.route,
        node: this.served,
        attempts: this.attempts,
        client: this.peer,
        ms: Math.round((performance.now() - this.#start) * 10) / 10
      }, 'request')
    }
    shared.settled()
  }
}
