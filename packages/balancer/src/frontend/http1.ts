/**
 * The plain HTTP/1.1 frontend: one `node:http` server. It wires requests and upgrades to the
 * proxy, answers malformed, oversized and too-slow requests with a coded error, enforces the
 * client timeouts on every connection, and closes connections in order at shutdown.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ResolvedListen, ResolvedTimeouts } from '../config/types.js'
import { TetherBalancerError, type ErrorCode } from '../errors.js'
import { ProxyResponse } from '../proxy/http.js'
import type { ReverseProxy } from '../proxy/reverse-proxy.js'
import { describeListen, type Frontend } from './frontend.js'

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
 * The HTTP/1.1 frontend.
 *
 * @example
 * ```ts
 * const frontend = new Http1Frontend(proxy, config.timeouts)
 * const port = await frontend.listen(config.listen)
 * ```
 */
export class Http1Frontend implements Frontend {
  readonly #server: Server<typeof IncomingMessage, typeof ProxyResponse>

  constructor (proxy: ReverseProxy, timeouts: ResolvedTimeouts) {
    this.#server = createServer({
      ServerResponse: ProxyResponse,
      headersTimeout: timeouts.clientHeaders,
      requestTimeout: timeouts.clientRequest,
      keepAliveTimeout: timeouts.clientKeepAlive,
      // Node checks header and request deadlines on this period; default 30 s is too coarse.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(timeouts.clientHeaders / 4))),
      noDelay: true
    }, (req, res) => proxy.request(req, res as ProxyResponse))
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => proxy.upgrade(req, socket, head))
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // A reset or a half-sent request from a client that left: nothing to answer, nothing to log.
      if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return }
      proxy.badClient(clientErrorCode(err), socket, { reason: err.code ?? err.message, peer: (socket as Socket).remoteAddress })
    })
  }

  listen (address: ResolvedListen): Promise<number> {
    const server = this.#server
    return new Promise<number>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new TetherBalancerError('TETHER_ERR_LISTEN', `cannot listen on ${describeListen(address)}: ${err.code ?? err.message}`, { cause: err }))
      }
      server.once('error', onError)
      server.listen(address.port, address.host, () => {
        server.off('error', onError)
        const bound = server.address()
        resolve(typeof bound === 'object' && bound !== null ? bound.port : address.port)
      })
    })
  }

  configure (timeouts: ResolvedTimeouts): void {
    this.#server.headersTimeout = timeouts.clientHeaders
    this.#server.requestTimeout = timeouts.clientRequest
    this.#server.keepAliveTimeout = timeouts.clientKeepAlive
  }

  stop (): Promise<void> {
    const server = this.#server
    const closed = new Promise<void>((resolve) => {
      if (!server.listening) { resolve(); return }
      server.close(() => resolve())
    })
    server.closeIdleConnections()
    return closed
  }

  closeAll (): void {
    this.#server.closeAllConnections()
  }
}
