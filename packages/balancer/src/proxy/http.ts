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
import { isIdempotent, type FailurePhase, type ResponseSink, type UpstreamExchange } from '../engines/engine.js'
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

function errorFor (phase: FailurePhase, code: string): ErrorCode {
  switch (phase) {
    case 'connect': return 'TETHER_ERR_UPSTREAM_CONNECT'
    case 'timeout': return 'TETHER_ERR_UPSTREAM_TIMEOUT'
    case 'request': return 'TETHER_ERR_UPSTREAM_RESET'
    case 'response': return code === 'UPSTREAM_PROTOCOL' ? 'TETHER_ERR_UPSTREAM_PROTOCOL' : 'TETHER_ERR_UPSTREAM_RESET'
  }
}

/** One HTTP request through the balancer. */
export class HttpExchange extends RoutedRequest implements ResponseSink {
  readonly res: ProxyResponse
  upstream: UpstreamExchange | null = null
  settled = false
  status = 0
  #attemptStart = 0
  readonly #start: number

  constructor (rt: ProxyRuntime, shared: ProxyShared, req: IncomingMessage, res: ProxyResponse) {
    super(rt, shared, req)
    this.res = res
    this.#start = performance.now()
    res.exchange = this
    res.on('close', onResponseClose)
    shared.inFlight++
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
    this.#attemptStart = performance.now()
    this.upstream = this.rt.engine.request(node, this, this)
  }

  onHead (status: number, reason: string, raw: readonly string[]): void {
    const node = this.node
    if (node === null) return
    this.shared.metrics.observeLatency(node, performance.now() - this.#attemptStart)
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
      this.leave()
      this.rt.pool.reportFailure(node, 'invalid header')
      this.#fail('TETHER_ERR_UPSTREAM_PROTOCOL', node)
      return
    }
    this.status = status
  }

  onData (chunk: Buffer): boolean {
    const res = this.res
    if (res.write(chunk)) return true
    res.once('drain', onResponseDrain)
    return false
  }

  onEnd (): void {
    this.upstream = null
    this.leave()
    this.res.end()
    this.#settle()
  }

  onError (error: Error, phase: FailurePhase): void {
    this.upstream = null
    const node = this.leave()
    if (node === null || this.settled) return
    const code = (error as Error & { code?: string }).code ?? 'ERROR'
    const res = this.res
    // req.socket cannot tell: an engine may destroy the request stream it has read. The
    // response's socket is the client connection as long as the response is not done.
    const client = res.socket
    if (code === 'CLIENT_ABORTED' || client === null || client.destroyed) {
      // The client went away: not the node's fault, and nobody is left to answer.
      this.shared.log.debug({ node: node.name, code: 'TETHER_ERR_CLIENT_ABORTED' }, 'client went away')
      res.destroy()
      this.#settle()
      return
    }
    this.rt.pool.reportFailure(node, code)
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
        this.shared.metrics.retries++
        this.shared.log.info({ node: node.name, next: next.name, phase, err: error.message }, 'retrying on another node')
        this.#attempt(next)
        return
      }
    }
    this.shared.log.warn({ node: node.name, phase, err: error.message, attempts: this.attempts }, 'upstream failed')
    this.#fail(errorFor(phase, code), node)
  }

  /** The client connection closed: finished normally, or gone mid-way. */
  clientClosed (): void {
    if (this.settled) return
    const upstream = this.upstream
    this.upstream = null
    if (upstream !== null) upstream.abort()
    const node = this.leave()
    this.shared.log.debug({ node: node?.name, code: 'TETHER_ERR_CLIENT_ABORTED' }, 'client went away')
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
    this.shared.metrics.errorResponse(code)
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
    shared.metrics.routes[this.route]++
    shared.inFlight--
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
