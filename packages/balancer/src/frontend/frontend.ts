/**
 * A frontend owns the client side: listeners, client connections and their timeouts, and the
 * protocol-level errors of clients. It hands each request to the proxy (`ReverseProxy`). Plain
 * HTTP/1.1 is `http1.ts`; a TLS or HTTP/2 listener is another implementation of this interface.
 */
import type { Server } from 'node:net'
import type { ResolvedLimits, ResolvedListen, ResolvedTimeouts, ResolvedTls } from '../config/types.js'
import { TetherBalancerError } from '../errors.js'

/**
 * The balancer's handle on a frontend.
 *
 * @example
 * ```ts
 * const frontend: Frontend = new Http1Frontend(proxy, config.timeouts, config.limits)
 * const port = await frontend.listen({ host: '127.0.0.1', port: 0 })
 * ```
 */
export interface Frontend {
  /** Start accepting; resolves with the bound port. Rejects with `TETHER_ERR_LISTEN`. */
  listen (address: ResolvedListen): Promise<number>
  /**
   * Apply new client timeouts and limits (a reload); open connections get them too. A
   * frontend keeps at least `limits.headerLines + 1` header lines of a request (Node's
   * `maxHeadersCount`), so that the proxy can tell a request over the limit.
   */
  configure (timeouts: ResolvedTimeouts, limits: ResolvedLimits): void
  /**
   * TLS listeners: read the certificates again and use them for new handshakes. Returns false
   * (and logs `TETHER_ERR_TLS_CERT`) when they are unusable: the previous ones stay.
   */
  reloadTls? (tls: ResolvedTls): boolean
  /**
   * Stop accepting; resolves once every connection has closed. Idle HTTP/1.1 keep-alive
   * connections (plain or TLS) stay open until their keep-alive timeout: a request that arrives
   * on one is served (with `Connection: close`), never reset. h2 sessions get GOAWAY and close
   * once their streams in flight have finished.
   */
  stop (): Promise<void>
  /** Close the connections still open (requests in flight at the shutdown deadline). */
  closeAll (): void
}

/**
 * `host:port` for logs and errors, IPv6 in brackets, `*` for every interface.
 *
 * @example
 * ```ts
 * describeListen({ host: '::1', port: 8080 }) // '[::1]:8080'
 * ```
 */
export function describeListen (l: ResolvedListen): string {
  return `${l.host === undefined ? '*' : l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`
}

/**
 * Bind `server` to `address`; resolves with the bound port, rejects with `TETHER_ERR_LISTEN`
 * naming `what` and the address. Every listener (HTTP/1.1, TLS, the redirect) binds through it.
 *
 * @example
 * ```ts
 * const port = await listenOn(server, { host: '127.0.0.1', port: 0 }, 'HTTP redirect')
 * ```
 */
export function listenOn (server: Server, address: ResolvedListen, what?: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new TetherBalancerError('TETHER_ERR_LISTEN', `${what === undefined ? '' : `${what} `}cannot listen on ${describeListen(address)}: ${err.code ?? err.message}`, { cause: err }))
    }
    server.once('error', onError)
    server.listen(address.port, address.host, () => {
      server.off('error', onError)
      const bound = server.address()
      resolve(typeof bound === 'object' && bound !== null ? bound.port : address.port)
    })
  })
}
