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
 * The proxy's reports. Called on the request path: implementations must be cheap and must not throw.
 *
 * @example
 * ```ts
 * const events: ProxyEvents = { routed () {}, retried () {}, perTryTimedOut () {}, errorAnswered () {}, responseHead () {} }
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
}
