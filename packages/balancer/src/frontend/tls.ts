/**
 * The TLS frontend: one `node:http2` secure server that offers `h2` and `http/1.1` by ALPN.
 * HTTP/1.1 connections (and WebSocket upgrades) are served by Node's HTTP/1.1 machinery with
 * the same response class, timeouts and client-error answers as the plain frontend; h2 streams
 * arrive through the compatibility API (see `h2.ts`). Either way the proxy sees one request.
 *
 * Certificates come from `certificates.ts`, chosen by SNI, and are swapped on reload with
 * `setSecureContext` (new handshakes get the new ones; open connections keep theirs). Session
 * tickets use a key that rotates (`tickets.ts`).
 */
import { createSecureServer, type Http2SecureServer, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2'
import { type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http'
import { Server as NetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { SecureContext, TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import type { ResolvedLimits, ResolvedListen, ResolvedTimeouts, ResolvedTls } from '../config/types.js'
import { TetherBalancerError } from '../errors.js'
import { ProxyResponse } from '../proxy/http.js'
import type { ReverseProxy } from '../proxy/reverse-proxy.js'
import { loadCertificates, type CertificateSet } from './certificates.js'
import { listenOn, type Frontend } from './frontend.js'
import { SessionGuard, TetherH2Request, TetherH2Response } from './h2.js'
import { clientErrorCode, maxConnections, maxHeadersCount } from './http1.js'
import { TicketKeys } from './tickets.js'

/** `Strict-Transport-Security` for a max-age in ms, or null. */
function hstsHeader (ms: number | null): string | null {
  return ms === null ? null : `max-age=${Math.floor(ms / 1000)}`
}

/** The HTTP/1.1 response on a TLS listener: the proxy's, plus HSTS when configured. */
class TlsProxyResponse extends ProxyResponse {
  static hsts: string | null = null

  override writeHead (status: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
    const list = typeof reason === 'string' || reason === undefined ? headers : reason
    const hsts = (this.constructor as typeof TlsProxyResponse).hsts
    if (hsts !== null && Array.isArray(list)) list.push('strict-transport-security', hsts)
    return typeof reason === 'string' ? super.writeHead(status, reason, list) : super.writeHead(status, list)
  }
}

/**
 * Options of the TLS frontend besides the configuration.
 *
 * @example
 * ```ts
 * const options: TlsFrontendOptions = { log, ticketSecret: Buffer.from(process.env.TICKET_SECRET ?? '', 'base64') }
 * ```
 */
export interface TlsFrontendOptions {
  readonly log: Logger
  /** Shared by processes that should resume one another's sessions; random when absent. */
  readonly ticketSecret?: Buffer
}

/**
 * The HTTPS (and HTTP/2) frontend.
 *
 * @example
 * ```ts
 * const frontend = new TlsFrontend(proxy, config.timeouts, config.limits, config.listen.tls, { log })
 * const port = await frontend.listen(config.listen)
 * ```
 */
export class TlsFrontend implements Frontend {
  readonly #server: Http2SecureServer
  readonly #log: Logger
  readonly #tickets: TicketKeys
  readonly #sockets = new Set<Socket>()
  readonly #sessions = new Set<ServerHttp2Session>()
  readonly #h1Response: typeof TlsProxyResponse
  readonly #h2Response: typeof TetherH2Response
  #certs: CertificateSet
  #tls: ResolvedTls
  #timeouts: ResolvedTimeouts

  /** Throws `TETHER_ERR_TLS_CERT` when a certificate or key is unreadable or invalid. */
  constructor (proxy: ReverseProxy, timeouts: ResolvedTimeouts, limits: ResolvedLimits, tls: ResolvedTls, options: TlsFrontendOptions) {
    this.#log = options.log
    this.#tls = tls
    this.#timeouts = timeouts
    this.#certs = loadCertificates(tls)
    // A class per frontend: its HSTS setting is this listener's, and a reload changes it.
    this.#h1Response = class extends TlsProxyResponse {}
    this.#h2Response = class extends TetherH2Response {}
    this.#h1Response.hsts = this.#h2Response.hsts = hstsHeader(tls.hsts)
    const h2 = tls.http2
    const server = createSecureServer({
      ...this.#certs.defaultOptions,
      allowHTTP1: true,
      // Without h2, answer ALPN with http/1.1 only (a client that offers only h2 is refused).
      ...(h2.enabled ? {} : { ALPNCallback: ({ protocols }: { protocols: string[] }) => protocols.includes('http/1.1') ? 'http/1.1' : undefined }),
      SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, this.#certs.lookup(servername)),
      handshakeTimeout: timeouts.clientHeaders,
      noDelay: true,
      settings: { maxConcurrentStreams: h2.maxConcurrentStreams, maxHeaderListSize: h2.maxHeaderListSize, enablePush: false },
      maxHeaderListPairs: 256,
      Http1ServerResponse: this.#h1Response,
      Http2ServerRequest: TetherH2Request,
      Http2ServerResponse: this.#h2Response as unknown as typeof Http2ServerResponse
    })
    this.#server = server
    this.#tickets = new TicketKeys(options.ticketSecret, tls.ticketRotation, (key) => server.setTicketKeys(key))
    this.configure(timeouts, limits)
    // Node's HTTP/1.1 machinery reads these off the server, as on an http.Server.
    const h1 = server as unknown as { connectionsCheckingInterval: number }
    h1.connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.floor(timeouts.clientHeaders / 4)))
    // The proxy refuses an HTTP/1.1 request without Host itself, typed and logged (see http1.ts).
    ;(server as unknown as { requireHostHeader: boolean }).requireHostHeader = false

    server.on('request', (req: IncomingMessage, res: ProxyResponse) => proxy.request(req, res))
    // Node would answer an Expect other than 100-continue with its own bare 417 (h1 and h2).
    server.on('checkExpectation', (req: IncomingMessage, res: ProxyResponse) => proxy.refuse(req, res, 'TETHER_ERR_CLIENT_EXPECTATION'))
    // HTTP/1.1 upgrades (WebSocket) reach the http2 server's HTTP/1.1 side as on an http.Server.
    server.on('upgrade' as 'request', (req: IncomingMessage, socket: Duplex, head: Buffer) => proxy.upgrade(req, socket, head))
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    // Node would turn a failed handshake into 'clientError' and answer it as HTTP; a client
    // that never completed TLS gets nothing but the close (and a debug line).
    server.removeAllListeners('tlsClientError')
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      this.#log.debug({ reason: err.code ?? err.message, peer: socket.remoteAddress }, 'TLS handshake failed')
      socket.destroy()
    })
    server.on('clientError' as 'request', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return }
      proxy.badClient(clientErrorCode(err), socket, { reason: err.code ?? err.message, peer: (socket as Socket).remoteAddress })
    })
    // Node creates the h2 session inside its own 'secureConnection' listener and emits
    // 'session' synchronously: a listener put before it knows which TLS socket that session has.
    let connecting: TLSSocket | undefined
    server.prependListener('secureConnection', (socket: TLSSocket) => { connecting = socket })
    server.on('session', (session: ServerHttp2Session) => {
      const socket = connecting
      connecting = undefined
      this.#sessions.add(session)
      session.once('close', () => this.#sessions.delete(session))
      // eslint-disable-next-line no-new -- the guard lives as long as the session's listeners
      new SessionGuard(session, socket, { idleMs: this.#timeouts.clientKeepAlive, maxResetsPerSecond: this.#tls.http2.maxResetsPerSecond }, this.#log)
      if (proxy.closing) session.close()
    })
    // A session error (a protocol violation) closes that session; nothing else is affected.
    server.on('sessionError', (err: Error) => { this.#log.debug({ reason: err.message }, 'HTTP/2 session error') })
  }

  /** The secret the ticket keys derive from, for worker processes to share. */
  get ticketSecret (): Buffer { return this.#tickets.secret }

  async listen (address: ResolvedListen): Promise<number> {
    const port = await listenOn(this.#server, address)
    this.#tickets.start()
    return port
  }

  configure (timeouts: ResolvedTimeouts, limits: ResolvedLimits): void {
    this.#timeouts = timeouts
    // The same header-line and connection caps as the HTTP/1.1 listener (an http2 server with
    // allowHTTP1 reads them off itself for its HTTP/1.1 side, as an http.Server does).
    const server = this.#server as unknown as { maxHeadersCount: number, maxConnections: number }
    server.maxHeadersCount = maxHeadersCount(limits)
    server.maxConnections = maxConnections(limits)
    const h1 = this.#server as unknown as { headersTimeout: number, requestTimeout: number, keepAliveTimeout: number }
    h1.headersTimeout = timeouts.clientHeaders
    h1.requestTimeout = timeouts.clientRequest
    h1.keepAliveTimeout = timeouts.clientKeepAlive
  }

  /**
   * A reload: read the certificates again (renewed files at the same paths are the common
   * case) and apply them to new handshakes. When any is unreadable or invalid, every previous
   * certificate stays in force and `TETHER_ERR_TLS_CERT` is logged. Returns whether they were swapped.
   */
  reloadTls (tls: ResolvedTls): boolean {
    let certs: CertificateSet
    try {
      certs = loadCertificates(tls)
    } catch (err) {
      const code = err instanceof TetherBalancerError ? err.code : 'TETHER_ERR_TLS_CERT'
      this.#log.error({ code, err: (err as Error).message }, 'TLS certificates not reloaded: the previous ones stay in force')
      return false
    }
    this.#server.setSecureContext(certs.defaultOptions)
    // A new default context has fresh ticket keys: put the rotating one back.
    this.#server.setTicketKeys(this.#tickets.current())
    this.#certs = certs
    this.#tls = tls
    this.#h1Response.hsts = this.#h2Response.hsts = hstsHeader(tls.hsts)
    this.#server.updateSettings({ maxConcurrentStreams: tls.http2.maxConcurrentStreams, maxHeaderListSize: tls.http2.maxHeaderListSize })
    this.#log.info({ certificates: certs.certificates.map((c) => ({ file: c.certFile, names: c.names, validTo: c.validTo.toISOString() })) }, 'TLS certificates reloaded')
    return true
  }

  /**
   * Stop accepting and drain, as the HTTP/1.1 listener does (see `Http1Frontend.stop`): idle
   * HTTP/1.1 keep-alive connections are NOT closed (closing one races with a client sending a
   * request on it, which would see a reset); a request on one during the drain is served with
   * `Connection: close`, and one that stays idle ends at its keep-alive timeout. Only the
   * listening socket is closed, through `net.Server#close`: the http2 server's own `close()`
   * would close every idle HTTP/1.1 connection at once. Each h2 session gets GOAWAY now (no new
   * stream) and closes once its streams in flight have finished.
   */
  stop (): Promise<void> {
    const server = this.#server
    this.#tickets.stop()
    const closed = new Promise<void>((resolve) => {
      if (!server.listening) { resolve(); return }
      NetServer.prototype.close.call(server, () => resolve())
    })
    for (const session of this.#sessions) session.close()
    return closed
  }

  closeAll (): void {
    for (const session of this.#sessions) session.destroy()
    for (const socket of this.#sockets) socket.destroy()
    // Now the http2 server's close: it stops the HTTP/1.1 connections-checking timer that the
    // net close left running.
    this.#server.close()
  }
}
