/**
 * The optional plain-HTTP listener of a TLS balancer (`listen.tls.redirectHttp`): it answers
 * every request with a 308 to the same host and path on `https://`, and forwards nothing. 308
 * rather than 301 keeps the method and body of a POST.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { ResolvedListen } from '../config/types.js'
import { listenOn } from './frontend.js'

// A host name, IPv4, or bracketed IPv6, with an optional port: anything else is not echoed.
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

/**
 * Where a plain-HTTP request should go on the HTTPS listener, or undefined when its Host is
 * missing or not a host name.
 *
 * @example
 * ```ts
 * httpsLocation('shop.example:80', '/cart?x=1', 443)  // 'https://shop.example/cart?x=1'
 * httpsLocation('shop.example', '/', 8443)            // 'https://shop.example:8443/'
 * ```
 */
export function httpsLocation (host: string | undefined, url: string | undefined, httpsPort: number): string | undefined {
  if (host === undefined || !HOST.test(host)) return undefined
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0] ?? host
  const path = url?.startsWith('/') === true ? url : '/'
  return `https://${name}${httpsPort === 443 ? '' : `:${httpsPort}`}${path}`
}

/**
 * The redirecting listener.
 *
 * @example
 * ```ts
 * const redirect = new HttpsRedirect(() => 443)
 * await redirect.listen({ host: undefined, port: 80 })
 * ```
 */
export class HttpsRedirect {
  readonly #server: Server

  /** `httpsPort`: the TLS listener's port, as clients reach it. */
  constructor (httpsPort: () => number) {
    this.#server = createServer({ headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 2000 }, (req: IncomingMessage, res: ServerResponse) => {
      const location = httpsLocation(req.headers.host, req.url, httpsPort())
      if (location === undefined) {
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
        res.end('400 Bad Request: a Host header is needed to redirect to https\n')
        return
      }
      // The request body, if any, is not read: the client sends it again to the new location.
      res.writeHead(308, { location, 'content-length': '0', connection: 'close' })
      res.end()
    })
  }

  listen (address: ResolvedListen): Promise<number> {
    return listenOn(this.#server, address, 'HTTP redirect')
  }

  close (): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) { resolve(); return }
      this.#server.close(() => resolve())
      this.#server.closeAllConnections()
    })
  }
}
