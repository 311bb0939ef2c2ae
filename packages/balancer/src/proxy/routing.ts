/**
 * Per-request routing shared by HTTP requests and upgrades: the header pass, the client's
 * address, the sticky decision, retries' choice of the next node, and the x-tether-* contract
 * with the session middleware:
 *
 * - `x-tether-route: sticky` — a valid sticky cookie routed the request to its node;
 * - `x-tether-route: new` — no valid sticky cookie, the algorithm chose;
 * - `x-tether-route: moved` + `x-tether-moved: 1` — a valid cookie named a node that is down,
 *   in maint or gone, and the request was rerouted (the cookie is rewritten);
 * - `x-tether-node: <name>` — the node serving the request.
 *
 * Client-sent `x-tether-*` headers never reach the app.
 */
import type { IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { PickContext } from '../algorithms/algorithm.js'
import type { BodyKind, ForwardRequest } from '../engines/engine.js'
import { hashKeyForAddress, normalizeAddress } from '../net/address.js'
import type { Lease, LeaseOutcome } from '../pool/lease.js'
import type { QueueRefusal, Waiter } from '../pool/queue.js'
import type { UpstreamNode } from '../pool/node.js'
import { findCookie } from '../sticky.js'
import type { ProxyRuntime, ProxyShared } from './context.js'
import type { MoveCause, Route } from './events.js'
import type { ErrorCode } from '../errors.js'
import { isValidHost, scanRequestHeaders, type RequestFacts } from './headers.js'

/**
 * The request target in origin-form. A client may send absolute-form (`GET http://host/p`,
 * RFC 9112 §3.2.2); apps behind a reverse proxy expect `/p`, as nginx and HAProxy send.
 */
export function originForm (target: string): string {
  if (target.charCodeAt(0) === 47 /* / */ || target === '*') return target
  const scheme = target.indexOf('://')
  if (scheme === -1) return target
  const slash = target.indexOf('/', scheme + 3)
  const query = target.indexOf('?', scheme + 3)
  if (slash === -1 || (query !== -1 && query < slash)) return query === -1 ? '/' : `/${target.slice(query)}`
  return target.slice(slash)
}

/** Why the sticky node of a valid cookie may not keep the request. */
function moveCause (node: UpstreamNode | undefined): MoveCause {
  if (node === undefined || node.removed) return 'removed'
  const status = node.status(performance.now())
  return status === 'up' ? 'backup' : status
}

/** State common to an HTTP exchange and an upgrade; one object per request, no other allocation. */
export abstract class RoutedRequest implements RequestFacts, PickContext, ForwardRequest, Waiter {
  // RequestFacts
  clientHeaders: string[] = []
  stickyValue: string | undefined = undefined
  hasLength = false
  chunked = false
  upgrade: string | undefined = undefined
  forwardedFor: string | undefined = undefined
  forwardedProto: string | undefined = undefined
  forwardedHost: string | undefined = undefined
  host: string | undefined = undefined
  hostCount = 0
  // ForwardRequest
  /** What the current attempt sends: the balancer's own headers first, then the client's. */
  headers: readonly string[] = []
  readonly method: string
  readonly path: string
  readonly body: IncomingMessage
  readonly isHead: boolean
  bodyKind: BodyKind = 'none'
  // PickContext
  clientKey = ''

  /** The peer's address (normalised). */
  readonly peer: string
  /** The pool's lease on the node of the current attempt. */
  lease: Lease | null = null
  route: Route = 'new'
  /** Send a Set-Cookie for the node (new client, moved, or a cookie signed with an old secret). */
  sendCookie = false
  attempts = 0
  /** Name of the node of the latest attempt (for logs). */
  served: string | undefined = undefined
  tried: Set<UpstreamNode> | null = null
  /** X-Forwarded-*, set once per request. */
  readonly #forwarded: string[] = []

  constructor (readonly rt: ProxyRuntime, readonly shared: ProxyShared, req: IncomingMessage) {
    this.body = req
    this.method = req.method ?? 'GET'
    this.path = originForm(req.url ?? '/')
    this.isHead = this.method === 'HEAD'
    this.peer = normalizeAddress(req.socket.remoteAddress ?? '')
  }

  /**
   * Read the request's headers and set the forwarding headers. Returns the code to refuse the
   * request with when it must not be forwarded at all:
   * - more header lines than `limits.headerLines`: Node keeps at most `maxHeadersCount` lines
   *   and drops the rest without a word, so a request at the cap may have lost a line (a
   *   Content-Length, a Transfer-Encoding) and is refused rather than forwarded half-read.
   *   Below the cap `rawHeaders` is whole, so the body framing read from it is what Node
   *   parsed;
   * - an HTTP/1.1 request without Host, two Host headers, or a Host that is not `host[:port]`
   *   (RFC 9112 §3.2: 400). Node's own check for a missing Host is off (`requireHostHeader`):
   *   it answered an untyped 400 without a log line, and before the header-line cap, so that a
   *   Host pushed past the cap by junk lines got that 400 instead of the 431 it is.
   */
  prepare (): ErrorCode | undefined {
    const rt = this.rt
    const raw = this.body.rawHeaders
    if (raw.length > rt.maxHeaderLines * 2) return 'TETHER_ERR_CLIENT_HEADERS_TOO_LARGE'
    const trusted = !rt.trusted.empty && rt.trusted.has(this.peer)
    scanRequestHeaders(raw, trusted, rt.cookieName, findCookie, this)
    if (this.hostCount > 1 || (this.host !== undefined && !isValidHost(this.host))) return 'TETHER_ERR_CLIENT_BAD_HOST'
    if (this.hostCount === 0 && this.body.httpVersion === '1.1') return 'TETHER_ERR_CLIENT_BAD_HOST'
    this.bodyKind = this.chunked ? 'chunked' : this.hasLength ? 'length' : 'none'
    const f = this.#forwarded
    const xff = this.forwardedFor
    f.push('x-forwarded-for', xff === undefined ? this.peer : `${xff}, ${this.peer}`)
    // `encrypted` is set on TLS sockets (for h2 streams, on the session's socket).
    f.push('x-forwarded-proto', this.forwardedProto ?? ((this.body.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http'))
    const fwdHost = this.forwardedHost ?? this.host
    if (fwdHost !== undefined) f.push('x-forwarded-host', fwdHost)
    if (rt.hashesClients) {
      this.clientKey = hashKeyForAddress(trusted && xff !== undefined ? rt.trusted.clientAddress(this.peer, xff) : this.peer)
    }
    return undefined
  }

  /** Waiting in the pool's queue for a slot. */
  queued = false

  /** Send the current attempt to `node` (the lease is taken). */
  protected abstract send (node: UpstreamNode): void
  /** Answer the client with an error of the balancer's own. */
  protected abstract refuse (code: ErrorCode): void
  /** The exchange has its answer (or its client left): a slot granted now is given back. */
  protected abstract get finished (): boolean

  /**
   * Route the request and start its first attempt: on its sticky node when the cookie is valid
   * and the node may keep it, else on the algorithm's choice. A node at its `maxConn` makes
   * the request wait in the pool's queue; the attempt starts when a slot is granted.
   */
  routeFirst (): void {
    const sticky = this.#stickyNode()
    const admission = this.rt.pool.admit(sticky, this, null, this)
    if (admission === 'queued') { this.queued = true; return }
    if (admission === undefined) { this.refuse('TETHER_ERR_NO_UPSTREAM'); return }
    if (typeof admission === 'string') { this.refuse(admission); return }
    this.#begin(admission)
  }

  granted (lease: Lease): void {
    this.queued = false
    if (this.finished) { lease.end('cancelled'); return }
    this.#begin(lease)
  }

  refused (code: QueueRefusal): void {
    this.queued = false
    if (!this.finished) this.refuse(code)
  }

  /** The sticky node when the cookie is valid and the node may keep it (sets route and cookie). */
  #stickyNode (): UpstreamNode | undefined {
    const { pool, sticky } = this.rt
    if (sticky !== null) {
      if (this.stickyValue !== undefined) {
        const match = sticky.verify(this.stickyValue)
        if (match !== undefined) {
          const node = pool.get(match.name)
          if (node !== undefined && pool.stickyAllowed(node)) {
            this.route = 'sticky'
            this.sendCookie = !match.current
            return node
          }
          this.route = 'moved'
          this.shared.events.moved(moveCause(node))
        } else {
          this.shared.log.debug({ peer: this.peer }, 'sticky cookie ignored: not one this balancer issued')
        }
      }
      this.sendCookie = true
    }
    return undefined
  }

  /** After a retryable failure on `failed`: the next node, never one already tried. */
  chooseNext (failed: UpstreamNode): UpstreamNode | undefined {
    if (this.tried === null) this.tried = new Set()
    this.tried.add(failed)
    if (this.route === 'sticky') {
      this.route = 'moved'
      this.shared.events.moved('failed')
    }
    this.sendCookie = this.rt.sticky !== null
    return this.rt.pool.pick(this, this.tried)
  }

  /**
   * Begin an attempt on `node`: take a lease from the pool and build the headers. The
   * balancer's own come first: an app whose server keeps only the first N header lines (Node
   * keeps 1000) still sees them, whatever the client sent after.
   */
  enter (node: UpstreamNode): void {
    this.#begin(this.rt.pool.begin(node))
  }

  #begin (lease: Lease): void {
    const node = lease.node
    this.lease = lease
    this.served = node.name
    this.attempts++
    const h: string[] = ['x-tether-route', this.route, 'x-tether-node', node.name]
    if (this.route === 'moved') h.push('x-tether-moved', '1')
    for (const x of this.#forwarded) h.push(x)
    if (this.host === undefined) h.push('host', node.authority)
    for (const x of this.clientHeaders) h.push(x)
    this.headers = h
    this.send(node)
  }

  /** End the current attempt's lease with `outcome`; returns its node (null without one). */
  leave (outcome: LeaseOutcome, reason?: string): UpstreamNode | null {
    const lease = this.lease
    if (lease === null) return null
    this.lease = null
    lease.end(outcome, reason)
    return lease.node
  }
}
