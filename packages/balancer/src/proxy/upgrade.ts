/**
 * WebSocket (and other HTTP/1.1 Upgrade) requests: routed and made sticky exactly like plain
 * requests, then, on 101, the two sockets are joined into a tunnel that the balancer tracks so
 * that shutdown can close it and least-connections can count it.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { STATUS_CODES } from 'node:http'
import type { FailurePhase, UpgradeSink } from '../engines/engine.js'
import type { ErrorCode } from '../errors.js'
import type { UpstreamNode } from '../pool/node.js'
import type { ProxyRuntime, ProxyShared } from './context.js'
import { filterResponseHeaders } from './headers.js'
import { respondErrorRaw } from './respond.js'
import { RoutedRequest } from './routing.js'

/** Open tunnels, closed by shutdown. */
export type TunnelSet = Set<Duplex>

// A header value written raw on the client socket must not be able to end the head early.
function safeForRawHead (headers: readonly string[]): boolean {
  for (const text of headers) {
    if (text.includes('\r') || text.includes('\n') || text.includes('\0')) return false
  }
  return true
}

function serialize (statusLine: string, headers: readonly string[]): string {
  let head = `${statusLine}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`
  return `${head}\r\n`
}

/** One upgrade request through the balancer. */
export class UpgradeExchange extends RoutedRequest implements UpgradeSink {
  #done = false

  constructor (
    rt: ProxyRuntime,
    shared: ProxyShared,
    req: IncomingMessage,
    readonly socket: Duplex,
    readonly clientHead: Buffer,
    readonly tunnels: TunnelSet
  ) {
    super(rt, shared, req)
    // Until the tunnel exists, a client error just ends the exchange.
    socket.on('error', () => socket.destroy())
  }

  start (): void {
    this.prepare()
    const node = this.chooseFirst()
    if (node === undefined) { this.#fail('TETHER_ERR_NO_UPSTREAM'); return }
    this.#attempt(node)
  }

  #attempt (node: UpstreamNode): void {
    this.enter(node)
    this.rt.engine.upgrade(node, this, this.upgrade ?? 'websocket', this)
  }

  onUpgrade (reason: string, raw: readonly string[], upstream: Duplex, upstreamHead: Buffer): void {
    const node = this.node
    const client = this.socket
    if (node === null || this.#done) { upstream.destroy(); return }
    const out: string[] = []
    filterResponseHeaders(raw, out, true)
    if (this.sendCookie) out.push('set-cookie', node.setCookie)
    if (!safeForRawHead(out) || !safeForRawHead([reason])) {
      upstream.destroy()
      this.leave()
      this.rt.pool.reportFailure(node, 'invalid header')
      this.#fail('TETHER_ERR_UPSTREAM_PROTOCOL')
      return
    }
    if (client.destroyed) { upstream.destroy(); this.leave(); this.#done = true; return }
    this.#done = true
    this.shared.metrics.routes[this.route]++
    client.write(serialize(`HTTP/1.1 101 ${reason === '' ? 'Switching Protocols' : reason}`, out))
    if (upstreamHead.length > 0) client.write(upstreamHead)
    if (this.clientHead.length > 0) upstream.write(this.clientHead)
    this.#tunnel(client, upstream, node)
  }

  onResponse (status: number, reason: string, raw: readonly string[], body: Buffer): void {
    const node = this.leave()
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
    this.shared.metrics.routes[this.route]++
    this.socket.end(Buffer.concat([Buffer.from(serialize(`HTTP/1.1 ${status} ${reason === '' ? STATUS_CODES[status] ?? '' : reason}`, out), 'latin1'), body]))
  }

  onError (error: Error, phase: FailurePhase): void {
    const node = this.leave()
    if (node === null || this.#done) return
    this.rt.pool.reportFailure(node, (error as Error & { code?: string }).code ?? 'ERROR')
    // An upgrade handshake is a GET without a body: retried after connect and request failures.
    if (this.attempts <= this.rt.retries && (phase === 'connect' || phase === 'request') && !this.socket.destroyed) {
      const next = this.chooseNext(node)
      if (next !== undefined) {
        this.shared.metrics.retries++
        this.shared.log.info({ node: node.name, next: next.name, phase, err: error.message }, 'retrying upgrade on another node')
        this.#attempt(next)
        return
      }
    }
    this.shared.log.warn({ node: node.name, phase, err: error.message }, 'upstream failed during upgrade')
    this.#fail(phase === 'connect' ? 'TETHER_ERR_UPSTREAM_CONNECT' : phase === 'timeout' ? 'TETHER_ERR_UPSTREAM_TIMEOUT' : 'TETHER_ERR_UPSTREAM_RESET')
  }

  #fail (code: ErrorCode): void {
    this.#done = true
    this.shared.metrics.errorResponse(code)
    if (code === 'TETHER_ERR_NO_UPSTREAM') this.shared.log.warn({ code, route: this.route }, 'no upstream node available')
    respondErrorRaw(this.socket, code)
  }

  /** Join the sockets. The node counts the tunnel as active until either side closes. */
  #tunnel (client: Duplex, upstream: Duplex, node: UpstreamNode): void {
    node.active++
    const tunnels = this.tunnels
    tunnels.add(client)
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      node.active--
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
    // The attempt's count moves to the tunnel's own.
    this.leave()
  }
}
