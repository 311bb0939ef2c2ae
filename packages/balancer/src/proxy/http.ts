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
  readonly #start: number

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
    this.prepare()
    const node = this.chooseFirst()
    if (node === undefined) { this.#fail('TETHER_ERR_NO_UPSTREAM', null); return }
    this.#attempt(node)
  }

  #attempt (node: UpstreamNode): void {
    this.enter(node)
    this.upstream = this.rt.engine.request(node, this, this)
  }

  onHead (status: number, reason: string, raw: readonly string[]): void {
    const lease = this.lease
    if (lease === null) return
    const node = lease.node
    this.shared.events.responseHead(node, performance.now() - lease.startedAt)
    const out: string[] = []
    filterResponseHeaders(raw, out, false)
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
    this.upstream = null
    const lease = this.lease
    if (lease === null) return
    const node = lease.node
    const res = this.res
    // req.socket cannot tell: an engine may destroy the request stream it has read. The
    // response's socket is the client connection as long as the response is not done.
    const client = res.socket
    if (this.settled || error.kind === 'aborted' || client === null || client.destroyed) {
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
        this.#attempt(next)
        return
      }
    }
    this.shared.log.warn({ node: node.name, phase, err: error.message, attempts: this.attempts }, 'upstream failed')
    this.#fail(FAILURE_CODES[error.kind], node)
  }

  /** The client connection closed: finished normally, or gone mid-way. */
  clientClosed (): void {
    if (this.settled) return
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
    respondError(this.res, code, this.shared.closing)
    if (node !== null) this.shared.log.debug({ node: node.name, code }, 'error answer sent')
    this.#settle()
  }

  #settle (): void {
    if (this.settled) return
    this.settled = true
    this.res.exchange = null
    const shared = this.shared
    shared.events.routed(this.route)
    shared.events.finished({ node: this.served ?? null, status: this.status, bytesOut: this.bytesOut, ownError: this.ownError })
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
