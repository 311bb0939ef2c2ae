/**
 * The undici engine: one undici `Pool` per node, driven through `dispatch` with a raw handler
 * (no `request()` promise, no response stream), which is the fastest way to use undici as a
 * proxy client. Kept selectable as a maintained, well-tested alternative to h1.
 */
import { Pool, errors } from 'undici'
import type { Duplex } from 'node:stream'
import type { Engine, EngineOptions, ForwardRequest, ResponseSink, UpgradeSink, UpstreamExchange, UpstreamTarget } from './engine.js'
import { UpstreamError } from './failure.js'
import { DeclinedBody, clientAborted, declinedTooLarge, engineClosed } from './wire.js'
import { isTlsFailure, tlsFailure, tlsOptions } from './tls.js'

function toStrings (raw: Buffer[] | string[] | null): string[] {
  if (raw === null) return []
  const out = new Array<string>(raw.length)
  for (let i = 0; i < raw.length; i++) {
    const item = raw[i] as Buffer | string
    out[i] = typeof item === 'string' ? item : item.toString('latin1')
  }
  return out
}

/**
 * An undici error in the engines' vocabulary. A parser error (llhttp's `HPE_*`) means response
 * bytes arrived and were invalid: `protocol`, in the `response` phase (never retried), as h1
 * and http-proxy report them.
 */
function classify (err: Error & { code?: string }, target: UpstreamTarget, connected: boolean, headers: boolean): UpstreamError {
  const message = `${target.name}: ${err.message}`
  if (!connected && isTlsFailure(err.code)) return tlsFailure(target.name, err)
  if (!connected) return new UpstreamError(message, 'connect', 'connect', err.code)
  if (err.code === 'UND_ERR_HEADERS_TIMEOUT') return new UpstreamError(message, 'timeout', 'timeout', err.code)
  if (err.code === 'UND_ERR_BODY_TIMEOUT') return new UpstreamError(message, 'timeout', 'response', err.code)
  if (err instanceof errors.HTTPParserError) return new UpstreamError(message, 'protocol', 'response', err.code)
  return new UpstreamError(message, 'reset', headers ? 'response' : 'request', err.code)
}

/** Handler for one dispatched request (undici's classic handler interface). */
class Handler implements UpstreamExchange {
  #abort: ((err?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #connected = false
  #headers = false
  #done = false

  constructor (readonly target: UpstreamTarget, readonly sink: ResponseSink) {}

  abort (): void {
    if (this.#done) return
    this.#done = true
    this.#abort?.(clientAborted())
  }

  resume (): void { this.#resume?.() }

  onConnect (abort: (err?: Error) => void): void {
    this.#abort = abort
    this.#connected = true
    if (this.#done) abort(clientAborted())
  }

  onHeaders (status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200 || this.#done) return true
    this.#resume = resume
    this.#headers = true
    this.sink.onHead(status, statusText, toStrings(raw))
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#done) return true
    return this.sink.onData(chunk)
  }

  onComplete (): void {
    if (this.#done) return
    this.#done = true
    this.sink.onEnd()
  }

  onError (err: Error & { code?: string }): void {
    this.fail(classify(err, this.target, this.#connected, this.#headers))
  }

  fail (error: UpstreamError): void {
    if (this.#done) return
    this.#done = true
    this.sink.onError(error)
  }
}

/** Handler for an upgrade: 101 → onUpgrade, anything else is collected and passed on. */
class UpgradeHandler {
  #connected = false
  #status = 0
  #reason = ''
  #headers: string[] = []
  readonly #body = new DeclinedBody()
  #done = false

  constructor (readonly target: UpstreamTarget, readonly sink: UpgradeSink) {}

  onConnect (): void { this.#connected = true }

  onUpgrade (_status: number, raw: Buffer[] | string[] | null, socket: Duplex): void {
    if (this.#done) { socket.destroy(); return }
    this.#done = true
    this.sink.onUpgrade('Switching Protocols', toStrings(raw), socket, Buffer.alloc(0))
  }

  onHeaders (status: number, raw: Buffer[], _resume: () => void, statusText: string): boolean {
    if (status >= 200) {
      this.#status = status
      this.#reason = statusText
      this.#headers = toStrings(raw)
    }
    return true
  }

  onData (chunk: Buffer): boolean {
    this.#body.add(chunk)
    return true
  }

  onComplete (): void {
    if (this.#done) return
    this.#done = true
    if (this.#body.tooLarge) this.sink.onError(declinedTooLarge(this.target))
    else this.sink.onResponse(this.#status, this.#reason, this.#headers, this.#body.bytes())
  }

  onError (err: Error & { code?: string }): void {
    if (this.#done) return
    this.#done = true
    this.sink.onError(classify(err, this.target, this.#connected, this.#status !== 0))
  }
}

/**
 * The undici engine.
 *
 * @example
 * ```ts
 * const engine = new UndiciEngine({ connectTimeout: 3000, responseTimeout: 60000, maxIdle: 128, keepAliveTimeout: 4000 })
 * ```
 */
export class UndiciEngine implements Engine {
  readonly name = 'undici' as const
  readonly #options: EngineOptions
  readonly #pools = new Map<UpstreamTarget, Pool>()
  #closed = false

  constructor (options: EngineOptions) {
    this.#options = options
  }

  #pool (target: UpstreamTarget): Pool {
    let pool = this.#pools.get(target)
    if (pool === undefined) {
      const o = this.#options
      const tls = target.tls ?? null
      pool = new Pool(`${tls === null ? 'http' : 'https'}://${target.authority}`, {
        ...(tls === null ? {} : { connect: tlsOptions(tls) }),
        connections: null,
        pipelining: 1,
        connectTimeout: o.connectTimeout,
        headersTimeout: o.responseTimeout,
        bodyTimeout: o.responseTimeout,
        keepAliveTimeout: o.keepAliveTimeout,
        keepAliveMaxTimeout: o.keepAliveTimeout
      })
      // Connection errors reach each request's handler; the pool's own event needs a listener.
      pool.on('connectionError', () => {})
      this.#pools.set(target, pool)
    }
    return pool
  }

  request (target: UpstreamTarget, request: ForwardRequest, sink: ResponseSink): UpstreamExchange {
    const handler = new Handler(target, sink)
    if (this.#closed) {
      queueMicrotask(() => handler.fail(engineClosed()))
      return handler
    }
    this.#pool(target).dispatch({
      path: request.path,
      method: request.method,
      headers: request.headers as string[],
      body: request.bodyKind === 'none' ? null : request.body,
      reset: false
    }, handler)
    return handler
  }

  upgrade (target: UpstreamTarget, request: ForwardRequest, protocol: string, sink: UpgradeSink): void {
    this.#pool(target).dispatch({
      path: request.path,
      method: request.method,
      headers: request.headers as string[],
      upgrade: protocol
    }, new UpgradeHandler(target, sink))
  }

  release (target: UpstreamTarget): void {
    const pool = this.#pools.get(target)
    if (pool === undefined) return
    this.#pools.delete(target)
    // close() lets in-flight requests finish, then closes the connections.
    pool.close().catch(() => {})
  }

  retire (graceMs: number): void {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    for (const pool of pools) pool.close().catch(() => {})
    setTimeout(() => { for (const pool of pools) pool.destroy().catch(() => {}) }, graceMs).unref()
  }

  async close (): Promise<void> {
    this.#closed = true
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})))
  }
}
