/**
 * WebSocket (and other HTTP/1.1 Upgrade) requests: routed and made sticky exactly like plain
 * requests, then, on 101, the two sockets are joined into a tunnel that the balancer tracks so
 * that shutdown can close it, and that keeps its lease on the node until it closes, so that
 * least-connections counts it.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { STATUS_CODES } from 'node:http'
import type { UpgradeSink } from '../engines/engine.js'
import { FAILURE_CODES, type UpstreamError } from '../engines/failure.js'
import { serializeHead } from '../engines/wire.js'
import type { ErrorCode } from '../errors.js'
import type { Lease } from '../pool/lease.js'
import type { UpstreamNode } from '../pool/node.js'
import type { ProxyRuntime, ProxyShared } from './context.js'
import { filterResponseHeaders } from './headers.js'
import { respondErrorRaw } from './respond.js'
import { RoutedRequest } from './routing.js'

// A header value written raw on the client socket must not be able to end the head early.
function safeForRawHead (headers: readonly string[]): boolean {
  for (const text of headers) {
    if (text.includes('\r') || text.includes('\n') || text.includes('\0')) return false
  }
  return true
}

/** One upgrade request through the balancer. */
export class UpgradeExchange extends RoutedRequest implements UpgradeSink {
  #done = false

  constructor (
    rt: ProxyRuntime,
    shared: ProxyShared,
    req: IncomingMessage,
    readonly socket: Duplex,
    readonly clientHead: Buffer
  ) {
    super(rt, shared, req)
    // Until the tunnel exists, a client error just ends the exchange.
    socket.on('error', () => socket.destroy())
  }

  start (): void {
    // The body of an Upgrade request would have to be forwarded before the tunnel opens and
    // nobody reads it: refuse it rather than hold both sides until the response timeout.
    const refused = this.prepare() ?? (this.hasLength || this.chunked ? 'TETHER_ERR_CLIENT_UPGRADE_BODY' : undefined)
    if (refused !== undefined) {
      this.shared.log.warn({ code: refused, peer: this.peer }, 'bad client request')
      this.#fail(refused)
      return
    }
    this.routeFirst()
  }

  protected send (node: UpstreamNode): void {
    this.rt.engine.upgrade(node, this, this.upgrade ?? 'websocket', this)
  }

  protected refuse (code: ErrorCode): void {
    this.#fail(code)
  }

  protected get finished (): boolean { return this.#done }

  onUpgrade (reason: string, raw: readonly string[], upstream: Duplex, upstreamHead: Buffer): void {
    const lease = this.lease
    const client = this.socket
    if (lease === null || this.#done) { upstream.destroy(); return }
    const node = lease.node
    const out: string[] = []
    filterResponseHeaders(raw, out, true)
    if (this.sendCookie) out.push('set-cookie', node.setCookie)
    if (!safeForRawHead(out) || !safeForRawHead([reason])) {
      upstream.destroy()
      this.leave('failed', 'invalid header')
      this.#fail('TETHER_ERR_UPSTREAM_PROTOCOL')
      return
    }
    if (client.destroyed) { upstream.destroy(); this.leave('cancelled'); this.#done = true; return }
    this.#done = true
    this.shared.events.routed(this.route)
    client.write(serializeHead(`HTTP/1.1 101 ${reason === '' ? 'Switching Protocols' : reason}`, out))
    if (upstreamHead.length > 0) client.write(upstreamHead)
    if (this.clientHead.length > 0) upstream.write(this.clientHead)
    // The attempt's lease becomes the tunnel's.
    this.lease = null
    this.#tunnel(client, upstream, lease)
  }

  onResponse (status: number, reason: string, raw: readonly string[], body: Buffer): void {
    const node = this.leave('done')
    if (this.#done) return
    this.#done = true
    const out: string[] = []
    filterResponseHeaders(raw, out, false)
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if ((out[i] as string).toLowerCase() === 'content-length') out.splice(i, 2)
    }
    if (this.sendCookie && node !== null) out.push('set-cookie', node.setCookie)
    out.push('content-length', String(body.length), 'connection', 'close')
    if (!safeForRawHead(out) || !safeForRawHead([reason])) { this.#fail('TETHER_ERR_UPSTREAM_PROTOCOL'); return }
    this.shared.events.routed(this.route)
    this.socket.end(Buffer.concat([Buffer.from(serializeHead(`HTTP/1.1 ${status} ${reason === '' ? STATUS_CODES[status] ?? '' : reason}`, out), 'latin1'), body]))
  }

  onError (error: UpstreamError): void {
    const lease = this.lease
    if (lease === null) return
    if (this.#done || error.kind === 'aborted') { this.leave('cancelled'); return }
    const node = lease.node
    this.leave('failed', error.code)
    const phase = error.phase
    // An upgrade handshake is a GET without a body: retried after connect and request failures.
    if (this.attempts <= this.rt.retries && (phase === 'connect' || phase === 'request') && !this.socket.destroyed) {
      const next = this.chooseNext(node)
      if (next !== undefined) {
        this.shared.events.retried()
        this.shared.log.info({ node: node.name, next: next.name, phase, err: error.message }, 'retrying upgrade on another node')
        this.enter(next)
        return
      }
    }
    this.shared.log.warn({ node: node.name, phase, err: error.message }, 'upstream failed during upgrade')
    this.#fail(FAILURE_CODES[error.kind])
  }

  #fail (code: ErrorCode): void {
    this.#done = true
    this.shared.events.errorAnswered(code)
    if (code === 'TETHER_ERR_NO_UPSTREAM') this.shared.log.warn({ code, route: this.route }, 'no upstream node available')
    respondErrorRaw(this.socket, code)
  }

  /** Join the sockets. The tunnel holds the attempt's lease until either side closes. */
  #tunnel (client: Duplex, upstream: Duplex, lease: Lease): void {
    const tunnels = this.shared.tunnels
    tunnels.add(client)
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      lease.end('done')
      tunnels.delete(client)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close)
    upstream.on('error', close)
    client.on('close', close)
    upstream.on('close', close)
    client.pipe(upstream)
    upstream.pipe(client)
  }
}
