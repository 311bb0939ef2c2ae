/**
 * The proxy's entry points for the frontend, and the state every exchange shares across
 * reloads: the runtime in force (a reload swaps it; exchanges keep the one they started with),
 * the count of HTTP exchanges in flight, the open tunnels, and shutdown.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { ErrorCode } from '../errors.js'
import type { ProxyRuntime, ProxyShared } from './context.js'
import type { ProxyEvents } from './events.js'
import { HttpExchange, type ProxyResponse } from './http.js'
import { respondError, respondErrorRaw } from './respond.js'
import { UpgradeExchange } from './upgrade.js'

/**
 * Routes and forwards what a frontend receives.
 *
 * @example
 * ```ts
 * const proxy = new ReverseProxy(runtime, log, metrics)
 * server.on('request', (req, res) => proxy.request(req, res))
 * ```
 */
export class ReverseProxy implements ProxyShared {
  #runtime: ProxyRuntime
  readonly log: Logger
  readonly events: ProxyEvents
  readonly tunnels = new Set<Duplex>()
  #closing = false
  #inFlight = 0
  #onDrained: (() => void) | null = null

  constructor (runtime: ProxyRuntime, log: Logger, events: ProxyEvents) {
    this.#runtime = runtime
    this.log = log
    this.events = events
  }

  get runtime (): ProxyRuntime { return this.#runtime }
  /** A reload: new requests use `runtime`, those in flight finish on theirs. */
  set runtime (runtime: ProxyRuntime) { this.#runtime = runtime }

  get closing (): boolean { return this.#closing }
  /** HTTP exchanges in flight (tunnels are counted apart). */
  get inFlight (): number { return this.#inFlight }

  /** One HTTP request. */
  request (req: IncomingMessage, res: ProxyResponse): void {
    new HttpExchange(this.#runtime, this, req, res).start()
  }

  /** One upgrade request (WebSocket handshake); refused once shutdown began. */
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#closing) { respondErrorRaw(socket, 'TETHER_ERR_NO_UPSTREAM'); return }
    new UpgradeExchange(this.#runtime, this, req, socket, head).start()
  }

  /**
   * A request the frontend parsed but must not pass on (an Expect other than 100-continue):
   * answered through its response, so that it stays in order behind pipelined ones, with the
   * code and a log line, and its connection closed.
   */
  refuse (req: IncomingMessage, res: ProxyResponse, code: ErrorCode): void {
    this.log.warn({ code, method: req.method, url: req.url, peer: req.socket?.remoteAddress }, 'bad client request')
    this.events.errorAnswered(code)
    req.resume()
    respondError(res, code, true)
  }

  /** A client sent something that is not a request the frontend can pass on: answer it. */
  badClient (code: ErrorCode, socket: Duplex, details: { reason: string, peer: string | undefined }): void {
    this.log.warn({ code, ...details }, 'bad client request')
    this.events.errorAnswered(code)
    respondErrorRaw(socket, code)
  }

  started (): void {
    this.#inFlight++
  }

  settled (): void {
    this.#inFlight--
    if (this.#closing && this.#inFlight === 0 && this.#onDrained !== null) this.#onDrained()
  }

  /** Shutdown begins: responses from now on close their connections. */
  shutdown (): void {
    this.#closing = true
  }

  /** Resolves when no HTTP exchange is in flight, or after `graceMs` (logged). */
  drained (graceMs: number): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.log.warn({ inFlight: this.#inFlight }, 'shutdown timeout: closing connections with requests in flight')
        resolve()
      }, graceMs)
      timer.unref()
      this.#onDrained = () => { clearTimeout(timer); resolve() }
    })
  }

  /** Close every open tunnel. */
  closeTunnels (): void {
    for (const tunnel of this.tunnels) tunnel.destroy()
    this.tunnels.clear()
  }
}
