/**
 * The http-proxy engine, with a keep-alive agent: the most used Node proxy library, kept
 * selectable as the baseline the other engines are measured against (docs/benchmarks.md).
 *
 * Two things http-proxy cannot do are done around it:
 * - It pipes the request body into the upstream request at once, so a connect failure would
 *   consume the body and rule out the retry. The body goes through a gate that opens only once
 *   the upstream socket is connected.
 * - Its `ws()` writes the 101 itself, so it can neither add the sticky cookie nor let the
 *   balancer retry after a connect failure. Upgrades therefore use `node:http` directly, as
 *   http-proxy does internally.
 *
 * It also leaks the upstream request when the client aborts (a documented bug); `abort()`
 * destroys it explicitly.
 *
 * And its `deleteLength` pass sets `content-length: 0` (and drops `transfer-encoding`) on every
 * DELETE and OPTIONS without a Content-Length, then still pipes the body: a chunked DELETE's
 * body reached the node as bytes after a complete request, which the node read as the next
 * request (request smuggling, found by test/fuzz-requests.test.ts). The pass is removed, and a
 * chunked body is declared chunked explicitly (Node's client would otherwise send a DELETE or
 * OPTIONS body with no framing at all).
 */
import { Agent, request as httpRequest, type ClientRequest, type IncomingMessage, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import httpProxy from 'http-proxy'
import type { Engine, EngineOptions, ForwardRequest, ResponseSink, UpgradeSink, UpstreamExchange, UpstreamTarget } from './engine.js'
import { UpstreamError } from './failure.js'
import { DeclinedBody, declinedTooLarge, engineClosed } from './wire.js'
import { isTlsFailure, tlsFailure, tlsOptions } from './tls.js'

/** Flat header list to the object node:http and http-proxy take (repeated names joined). */
function toObject (flat: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {}
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase()
    const value = flat[i + 1] as string
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (name === 'cookie') out[name] = `${prev as string}; ${value}`
    else out[name] = Array.isArray(prev) ? [...prev, value] : [prev, value]
  }
  return out
}

/** A node:http error in the engines' vocabulary. */
function classify (err: NodeJS.ErrnoException, target: UpstreamTarget, connected: boolean, responded: boolean, timedOut: boolean): UpstreamError {
  const message = `${target.name}: ${err.message}`
  if (!connected && isTlsFailure(err.code)) return tlsFailure(target.name, err)
  if (!connected) return new UpstreamError(message, 'connect', 'connect', timedOut ? 'connect timeout' : err.code)
  if (timedOut) return new UpstreamError(message, 'timeout', responded ? 'response' : 'timeout')
  if (err.code?.startsWith('HPE_') === true) return new UpstreamError(message, 'protocol', 'response', err.code)
  return new UpstreamError(message, 'reset', responded ? 'response' : 'request', err.code)
}

/** State of one forwarded request. */
class Attempt implements UpstreamExchange {
  proxyReq: ClientRequest | null = null
  proxyRes: IncomingMessage | null = null
  connected = false
  responded = false
  timedOut = false
  done = false
  timer: NodeJS.Timeout | null = null
  /** The body's way into http-proxy, opened once connected; null without a body. */
  gate: PassThrough | null = null

  constructor (readonly target: UpstreamTarget, readonly request: ForwardRequest, readonly sink: ResponseSink) {}

  abort (): void {
    if (this.done) return
    this.done = true
    this.clearTimer()
    this.proxyReq?.destroy()
    this.proxyRes?.destroy()
  }

  resume (): void { this.proxyRes?.resume() }

  clearTimer (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  fail (err: NodeJS.ErrnoException | UpstreamError): void {
    if (this.done) return
    this.done = true
    this.clearTimer()
    this.sink.onError(err instanceof UpstreamError ? err : classify(err, this.target, this.connected, this.responded, this.timedOut))
  }
}

/**
 * The http-proxy engine.
 *
 * @example
 * ```ts
 * const engine = new HttpProxyEngine({ connectTimeout: 3000, responseTimeout: 60000, maxIdle: 128, keepAliveTimeout: 4000 })
 * ```
 */
export class HttpProxyEngine implements Engine {
  readonly name = 'http-proxy' as const
  readonly #options: EngineOptions
  readonly #agent: Agent
  /** One agent per https:// node: an agent's own TLS options (CA, SNI name) apply to its every connection. */
  readonly #tlsAgents = new Map<UpstreamTarget, HttpsAgent>()
  readonly #proxy: httpProxy
  readonly #attempts = new WeakMap<IncomingMessage, Attempt>()
  #closed = false

  constructor (options: EngineOptions) {
    this.#options = options
    this.#agent = new Agent({ keepAlive: true, maxFreeSockets: options.maxIdle, timeout: options.keepAliveTimeout, scheduling: 'lifo' })
    this.#proxy = httpProxy.createProxyServer({ agent: this.#agent, selfHandleResponse: true, xfwd: false, prependPath: false })
    const withPasses = this.#proxy as unknown as { webPasses: Array<{ name: string }> }
    withPasses.webPasses = withPasses.webPasses.filter((pass) => pass.name !== 'deleteLength')
    this.#proxy.on('proxyReq', (proxyReq, req) => this.#onProxyReq(proxyReq, req))
    this.#proxy.on('proxyRes', (proxyRes, req) => this.#onProxyRes(proxyRes, req))
    // Errors arrive through the per-call callback; keep the emitter from throwing.
    this.#proxy.on('error', () => {})
  }

  request (target: UpstreamTarget, request: ForwardRequest, sink: ResponseSink): UpstreamExchange {
    const attempt = new Attempt(target, request, sink)
    if (this.#closed) {
      queueMicrotask(() => attempt.fail(engineClosed()))
      return attempt
    }
    const req = request.body
    this.#attempts.set(req, attempt)
    // http-proxy copies req.headers into the upstream request: hand it exactly ours.
    const headers = toObject(request.headers)
    if (request.bodyKind === 'chunked') headers['transfer-encoding'] = 'chunked'
    req.headers = headers
    if (request.bodyKind !== 'none') attempt.gate = new PassThrough()
    // With selfHandleResponse http-proxy never writes to the response; the sink gets it instead.
    const detached = { finished: false } as unknown as ServerResponse
    const tls = target.tls ?? null
    const where = tls === null
      ? { target: `http://${target.authority}` }
      : { target: `https://${target.authority}`, agent: this.#tlsAgent(target), secure: tls.verify }
    this.#proxy.web(req, detached, { ...where, buffer: attempt.gate ?? undefined }, (err) => attempt.fail(err as NodeJS.ErrnoException))
    return attempt
  }

  #tlsAgent (target: UpstreamTarget): HttpsAgent {
    let agent = this.#tlsAgents.get(target)
    if (agent === undefined) {
      const o = this.#options
      agent = new HttpsAgent({ keepAlive: true, maxFreeSockets: o.maxIdle, timeout: o.keepAliveTimeout, scheduling: 'lifo', ...tlsOptions(target.tls ?? { caFile: null, ca: null, servername: null, verify: true }) })
      this.#tlsAgents.set(target, agent)
    }
    return agent
  }

  #onProxyReq (proxyReq: ClientRequest, req: IncomingMessage): void {
    const attempt = this.#attempts.get(req)
    if (attempt === undefined) return
    attempt.proxyReq = proxyReq
    if (attempt.done) { proxyReq.destroy(); return }
    const socket = proxyReq.socket as Socket | null
    const armResponseTimer = (): void => {
      attempt.connected = true
      attempt.clearTimer()
      attempt.timer = setTimeout(() => { attempt.timedOut = true; proxyReq.destroy(new Error('response timeout')) }, this.#options.responseTimeout)
      if (attempt.gate !== null && !attempt.done) req.pipe(attempt.gate)
    }
    const tls = attempt.target.tls != null
    // A TLS socket is usable once its handshake is done; a reused one is past it.
    if (socket !== null && (socket.connecting || (tls && !(socket as Socket & { encrypted?: boolean, _secureEstablished?: boolean })._secureEstablished))) {
      attempt.timer = setTimeout(() => { attempt.timedOut = true; proxyReq.destroy(new Error('connect timeout')) }, this.#options.connectTimeout)
      socket.once(tls ? 'secureConnect' : 'connect', armResponseTimer)
    } else {
      armResponseTimer()
    }
  }

  #onProxyRes (proxyRes: IncomingMessage, req: IncomingMessage): void {
    const attempt = this.#attempts.get(req)
    if (attempt === undefined || attempt.done) { proxyRes.destroy(); return }
    this.#attempts.delete(req)
    attempt.proxyRes = proxyRes
    attempt.responded = true
    const sink = attempt.sink
    sink.onHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage ?? '', proxyRes.rawHeaders)
    // The response timeout now bounds idleness between body reads.
    attempt.clearTimer()
    const timer = setTimeout(() => { attempt.timedOut = true; proxyRes.destroy(new Error('body timeout')) }, this.#options.responseTimeout)
    attempt.timer = timer
    proxyRes.on('data', (chunk: Buffer) => {
      if (attempt.done) return
      timer.refresh()
      if (!sink.onData(chunk)) proxyRes.pause()
    })
    proxyRes.on('end', () => {
      if (attempt.done) return
      attempt.done = true
      attempt.clearTimer()
      sink.onEnd()
    })
    proxyRes.on('error', (err: NodeJS.ErrnoException) => attempt.fail(err))
    proxyRes.on('aborted', () => attempt.fail(new UpstreamError(`${attempt.target.name} aborted the response`, 'reset', 'response')))
  }

  upgrade (target: UpstreamTarget, request: ForwardRequest, protocol: string, sink: UpgradeSink): void {
    let connected = false
    let done = false
    const finish = (err: NodeJS.ErrnoException | UpstreamError | null, timedOut = false): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err !== null) sink.onError(err instanceof UpstreamError ? err : classify(err, target, connected, false, timedOut))
    }
    const headers = toObject(request.headers)
    headers.connection = 'upgrade'
    headers.upgrade = protocol
    const tls = target.tls ?? null
    const options = { host: target.host, port: target.port, method: request.method, path: request.path, headers, agent: false as const }
    const req = tls === null ? httpRequest(options) : httpsRequest({ ...options, ...tlsOptions(tls) })
    let timer = setTimeout(() => { req.destroy(); finish(new Error('connect timeout'), true) }, this.#options.connectTimeout)
    req.on('socket', (socket: Socket) => {
      socket.once(tls === null ? 'connect' : 'secureConnect', () => {
        connected = true
        clearTimeout(timer)
        timer = setTimeout(() => { req.destroy(); finish(new Error('upgrade timeout'), true) }, this.#options.responseTimeout)
      })
    })
    req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      if (done) { socket.destroy(); return }
      finish(null)
      sink.onUpgrade(res.statusMessage ?? 'Switching Protocols', res.rawHeaders, socket, head)
    })
    req.on('response', (res: IncomingMessage) => {
      const body = new DeclinedBody()
      res.on('data', (chunk: Buffer) => { body.add(chunk) })
      res.on('end', () => {
        if (done) return
        req.destroy()
        if (body.tooLarge) { finish(declinedTooLarge(target)); return }
        finish(null)
        sink.onResponse(res.statusCode ?? 502, res.statusMessage ?? '', res.rawHeaders, body.bytes())
      })
      res.on('error', (err: NodeJS.ErrnoException) => finish(err))
    })
    req.on('error', (err: NodeJS.ErrnoException) => finish(err))
    req.end()
  }

  release (target: UpstreamTarget): void {
    // The agents keep idle sockets per host:port and time them out on their own; busy ones
    // finish. An https:// node's own agent is dropped so that a new node gets a new one.
    this.#tlsAgents.delete(target)
  }

  retire (graceMs: number): void {
    setTimeout(() => { this.close().catch(() => {}) }, graceMs).unref()
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#agent.destroy()
    for (const agent of this.#tlsAgents.values()) agent.destroy()
    this.#tlsAgents.clear()
    this.#proxy.close()
  }
}
