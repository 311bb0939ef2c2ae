/**
 * What the request path needs from the balancer: the runtime, gathered in one object that a
 * reload swaps whole (requests in flight keep the runtime they started with), and the state
 * shared by every exchange across reloads.
 */
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { Engine } from '../engines/engine.js'
import type { TrustedProxies } from '../net/address.js'
import type { Pool } from '../pool/pool.js'
import type { StickyCodec } from '../sticky.js'
import type { ProxyEvents } from './events.js'

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
  /** Per-attempt deadline for response headers of idempotent bodiless requests (ms); 0: off. */
  readonly perTryTimeout: number
  readonly accessLog: boolean
  /** Hash client addresses only when the algorithm uses them. */
  readonly hashesClients: boolean
  /** More request header lines than this: 431 (`limits.headerLines`). */
  readonly maxHeaderLines: number
}

/** Balancer-wide state that outlives reloads. */
export interface ProxyShared {
  readonly log: Logger
  readonly events: ProxyEvents
  /** Open WebSocket (upgrade) tunnels' client sockets, closed by shutdown. */
  readonly tunnels: Set<Duplex>
  /** Set once shutdown begins: responses then close their connections. */
  readonly closing: boolean
  /** An HTTP exchange began (tunnels are counted apart). */
  started (): void
  /** An HTTP exchange settled, so that shutdown can notice the last one. */
  settled (): void
}
