/**
 * What the request path needs from the balancer, gathered in one object that a reload swaps
 * whole: requests in flight keep the runtime they started with.
 */
import type { Logger } from 'pino'
import type { Engine } from '../engines/engine.js'
import type { TrustedProxies } from '../net/address.js'
import type { Pool } from '../pool/pool.js'
import type { StickyCodec } from '../sticky.js'
import type { BalancerMetrics } from '../admin/metrics.js'

export interface ProxyRuntime {
  readonly pool: Pool
  readonly engine: Engine
  /** null when sticky cookies are off. */
  readonly sticky: StickyCodec | null
  /** The sticky cookie's name, or '' when sticky cookies are off. */
  readonly cookieName: string
  readonly trusted: TrustedProxies
  /** Further nodes tried after a retryable failure. */
  readonly retries: number
  readonly accessLog: boolean
  /** Hash client addresses only when the algorithm uses them. */
  readonly hashesClients: boolean
}

/** Balancer-wide state that outlives reloads. */
export interface ProxyShared {
  readonly log: Logger
  readonly metrics: BalancerMetrics
  /** Set once shutdown begins: responses then close their connections. */
  closing: boolean
  /** HTTP exchanges in flight (tunnels are counted apart). */
  inFlight: number
  /** Called each time an exchange settles, so shutdown can notice the last one. */
  settled (): void
}
