/**
 * The plain HTTP/1.1 frontend: one `node:http` server. It wires requests and upgrades to the
 * proxy, answers malformed, oversized and too-slow requests with a coded error, enforces the
 * client timeouts on every connection, and closes connections in order at shutdown.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { Server as NetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ResolvedLimits, ResolvedListen, ResolvedTimeouts } from '../config/types.js'
import type { ErrorCode } from '../errors.js'
import { ProxyResponse } from '../proxy/http.js'
import type { ReverseProxy } from '../proxy/reverse-proxy.js'
import { listenOn, type Frontend } from './frontend.js'

/**
 * What Node's HTTP parser reports about a bad client, as the code the client is answered with.
 *
 * @example
 * ```ts
 * clientErrorCode(Object.assign(new Error('x'), { code: 'HPE_HEADER_OVERFLOW' })) // 'TETHER_ERR_CLIENT_HEADERS_TOO_LARGE'
 * ```
 */
export function clientErrorCode (err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'TETHER_ERR_CLIENT_HEADER_TIMEOUT'
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'TETHER_ERR_CLIENT_HEADERS_TOO_LARGE'
  return 'TETHER_ERR_CLIENT_BAD_REQUEST'
}

/**
 * Node keeps this many request header lines and drops the rest silently. One more than the
 * limit, so that a request over it is seen to be over it (and answered 431 by the proxy).
 */
export function maxHeadersCount (limits: ResolvedLimits): number {
  return limits.headerLines + 1
}

/** The global cap on client connections: Node closes the ones beyond it as they arrive. */
export function maxConnections (limits: ResolvedLimits): number {
  return limits.connections === 0 ? Infinity : limits.connections
}

/**
 * The HTTP/1.1 frontend.
 *
 * @example
 * ```ts
 * const frontend = new Http1Frontend(proxy, config.timeouts, config.limits)
 * const port = await frontend.listen(config.listen)
 * ```
 */
export class Http1Frontend implements Frontend {
  readonly #server: Server<typeof IncomingMessage, typeof ProxyResponse>

  constructor (proxy: ReverseProxy, timeouts: ResolvedTimeouts, limits: ResolvedLimits) {
    this.#server = createServer({
      ServerResponse: ProxyResponse,
      headersTimeout: timeouts.clientHeaders,
      requestTimeout: timeouts.clientRequest,
      keepAliveTimeout: timeouts.clientKeepAlive,
      // Node checks header and request deadlines on this period; default 30 s is too coarse.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(timeouts.clientHeaders / 4))),
      noDelay: true,
      // The proxy refuses a request without Host itself, with a code and a log line, and after
      // the header-line cap (see `RequestRouting.prepare`).
      requireHostHeader: false
    }, (req, res) => proxy.request(req, res as ProxyResponse))
    this.#server.maxHeadersCount = maxHeadersCount(limits)
    this.#server.maxConnections = maxConnections(limits)
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => proxy.upgrade(req, socket, head))
    // Node would answer an Expect other than 100-continue with its own bare 417.
    this.#server.on('checkExpectation', (req: IncomingMessage, res: ProxyResponse) => proxy.refuse(req, res, 'TETHER_ERR_CLIENT_EXPECTATION'))
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // A reset or a half-sent request from a client that left: nothing to answer, nothing to log.
      if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return }
      proxy.badClient(clientErrorCode(err), socket, { reason: err.code ?? err.message, peer: (socket as Socket).remoteAddress })
    })
  }

  listen (address: ResolvedListen): Promise<number> {
    return listenOn(this.#server, address)
  }

  configure (timeouts: ResolvedTimeouts, limits: ResolvedLimits): void {
    this.#server.maxHeadersCount = maxHeadersCount(limits)
    this.#server.maxConnections = maxConnections(limits)
    this.#server.headersTimeout = timeouts.clientHeaders
    this.#server.requestTimeout = timeouts.clientRequest
    this.#server.keepAliveTimeout = timeouts.clientKeepAlive
  }

  /**
   * Stop accepting, and let the open connections finish on their own. Idle keep-alive
   * connections are NOT closed here: closing one races with a client that is sending a request
   * on it at that moment, which then gets a reset. Instead a request that arrives on one during
   * the drain is served and answered with `Connection: close` (the proxy does that once it is
   * closing), and a connection that stays idle ends with its keep-alive timeout, a clean FIN.
   * `http.Server#close` would close every idle connection at once (Node ≥ 19), so only the
   * listening socket is closed here, through `net.Server#close`.
   */
  stop (): Promise<void> {
    const server = this.#server
    return new Promise<void>((resolve) => {
      if (!server.listening) { resolve(); return }
      NetServer.prototype.close.call(server, () => resolve())
    })
  }

  closeAll (): void {
    this.#server.closeAllConnections()
    // Now the http close: stops the connections-checking timer the net close left running.
    this.#server.close()
  }
}
