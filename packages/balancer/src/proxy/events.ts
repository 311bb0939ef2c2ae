/**
 * What the proxy reports while it works, through an interface it declares and the metrics
 * implement (`admin/metrics.ts`): the request path knows nothing of Prometheus, and a status
 * page with per-node rates can implement the same interface (or wrap the metrics) without
 * touching the proxy.
 */
import type { ErrorCode } from '../errors.js'
import type { NodeStats } from '../pool/node.js'

/**
 * How a request found its node: the value of `x-tether-route`, the balancer's wire contract
 * with the app (see `routing.ts`).
 *
 * @example
 * ```ts
 * const route = req.headers['x-tether-route'] as Route // in the app behind the balancer
 * ```
 */
export type Route = 'sticky' | 'new' | 'moved'

/**
 * Why a request with a valid sticky cookie went to another node: its node was `down` (health),
 * in `maint`, draining (`drain`), `removed` from the configuration, a `backup` node whose
 * primaries are back, or `failed` the attempt and the request was retried elsewhere.
 *
 * @example
 * ```ts
 * const cause: MoveCause = 'maint'
 * ```
 */
export type MoveCause = 'down' | 'maint' | 'drain' | 'removed' | 'backup' | 'failed'

/**
 * A request that is done, as the status page counts it.
 *
 * @example
 * ```ts
 * const done: FinishedRequest = { node: 'app1', status: 200, bytesOut: 512, ownError: false, cache: 'hit' }
 * ```
 */
export interface FinishedRequest {
  /** The node of the last attempt, or null when none was tried. */
  readonly node: string | null
  /** The status sent to the client (0 when the client went away before any). */
  readonly status: number
  /** Response body bytes sent to the client. */
  readonly bytesOut: number
  /** The answer was the balancer's own error (502, 503, 504), not the node's. */
  readonly ownError: boolean
  /** The node's near-cache report (`x-tether-cache`): hit, miss, or null for none. */
  readonly cache: 'hit' | 'miss' | null
}

/**
 * The proxy's reports. Called on the request path: implementations must be cheap and must not throw.
 *
 * @example
 * ```ts
 * const events: ProxyEvents = { routed () {}, retried () {}, perTryTimedOut () {}, errorAnswered () {}, responseHead () {}, moved () {}, finished () {} }
 * ```
 */
export interface ProxyEvents {
  /** A request got its answer, or an upgrade its 101 or answer, by `route`. */
  routed (route: Route): void
  /** A safe-to-retry failure: the request is sent to another node. */
  retried (): void
  /** An attempt on `node` had no response head within `timeouts.perTry` and was abandoned. */
  perTryTimedOut (node: NodeStats): void
  /** The balancer answered a client with an error of its own. */
  errorAnswered (code: ErrorCode): void
  /** A node's response head arrived `ms` after its attempt began. */
  responseHead (node: NodeStats, ms: number): void
  /** A request with a valid sticky cookie left its node, for `cause`. */
  moved (cause: MoveCause): void
  /** An HTTP request is done (answered, failed or abandoned by its client). */
  finished (request: FinishedRequest): void
}

/**
 * One `ProxyEvents` that reports to several (the metrics and the status page's timeline).
 *
 * @example
 * ```ts
 * const events = combineEvents(metrics, timeline)
 * ```
 */
export function combineEvents (...all: ProxyEvents[]): ProxyEvents {
  return {
    routed (route) { for (const e of all) e.routed(route) },
    retried () { for (const e of all) e.retried() },
    perTryTimedOut (node) { for (const e of all) e.perTryTimedOut(node) },
    errorAnswered (code) { for (const e of all) e.errorAnswered(code) },
    responseHead (node, ms) { for (const e of all) e.responseHead(node, ms) },
    moved (cause) { for (const e of all) e.moved(cause) },
    finished (request) { for (const e of all) e.finished(request) }
  }
}
