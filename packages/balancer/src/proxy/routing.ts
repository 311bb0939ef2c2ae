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
import type { UpstreamNode } from '../pool/node.js'
import { findCookie } from '../sticky.js'
import type { ProxyRuntime, ProxyShared } from './context.js'
import type { MoveCause, Route } from './events.js'
import { scanRequestHeaders, type RequestFacts } from './headers.js'

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
export abstract class RoutedRequest implements RequestFacts, PickContext, ForwardRequest {
  // RequestFacts
  headers: string[] = []
  stickyValue: string | undefined = undefined
  hasLength = false
  chunked = false
  upgrade: string | undefined = undefined
  forwardedFor: string | undefined = undefined
  forwardedProto: string | undefined = undefined
  forwardedHost: string | undefined = undefined
  host: string | undefined = undefined
  // ForwardRequest
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
  /** Length of `headers` before the per-attempt x-tether-* headers. */
  #base = 0

  constructor (readonly rt: ProxyRuntime, readonly shared: ProxyShared, req: IncomingMessage) {
    this.body = req
    this.method = req.method ?? 'GET'
    this.path = originForm(req.url ?? '/')
    this.isHead = this.method === 'HEAD'
    this.peer = normalizeAddress(req.socket.remoteAddress ?? '')
  }

  /** Read the request's headers and set the forwarding headers. */
  prepare (): void {
    const rt = this.rt
    const trusted = !rt.trusted.empty && rt.trusted.has(this.peer)
    scanRequestHeaders(this.body.rawHeaders, trusted, rt.cookieName, findCookie, this)
    this.bodyKind = this.chunked ? 'chunked' : this.hasLength ? 'length' : 'none'
    const h = this.headers
    const xff = this.forwardedFor
    h.push('x-forwarded-for', xff === undefined ? this.peer : `${xff}, ${this.peer}`)
    h.push('x-forwarded-proto', this.forwardedProto ?? 'http')
    const fwdHost = this.forwardedHost ?? this.host
    if (fwdHost !== undefined) h.push('x-forwarded-host', fwdHost)
    if (rt.hashesClients) {
      this.clientKey = hashKeyForAddress(trusted && xff !== undefined ? rt.trusted.clientAddress(this.peer, xff) : this.peer)
    }
    this.#base = h.length
  }

  /** The first node: the sticky one when the cookie is valid and the node may keep it. */
  chooseFirst (): UpstreamNode | undefined {
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
    return pool.pick(this, null)
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

  /** Begin an attempt on `node`: take a lease from the pool and set the per-attempt headers. */
  enter (node: UpstreamNode): void {
    this.lease = this.rt.pool.begin(node)
    this.served = node.name
    this.attempts++
    const h = this.headers
    h.length = this.#base
    if (this.host === undefined) h.push('host', node.authority)
    h.push('x-tether-route', this.route, 'x-tether-node', node.name)
    if (this.route === 'moved') h.push('x-tether-moved', '1')
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
