/**
 * The one small interface every load-balancing algorithm implements, in the style of HAProxy's
 * `lb_ops` and undici's pools: the pool owns nodes, health, draining and retries; an algorithm
 * only chooses. Algorithms do no I/O, hold no sockets and never see a request.
 */
import type { AlgorithmName } from '../config/types.js'

/**
 * What an algorithm may know about a node. The pool's nodes satisfy it.
 *
 * @example
 * ```ts
 * const node: Candidate = { name: 'app-1', weight: 3, active: 0 }
 * ```
 */
export interface Candidate {
  /** Stable name; ip-hash derives each node's hash seed from it. */
  readonly name: string
  /** Integer weight, at least 1. */
  readonly weight: number
  /** Requests and tunnels in flight to this node right now. */
  readonly active: number
}

/**
 * Per-request facts an algorithm may use.
 *
 * @example
 * ```ts
 * ipHash.pick({ clientKey: hashKeyForAddress('2001:db8::7') } satisfies PickContext)
 * ```
 */
export interface PickContext {
  /** The client's address as ip-hash should hash it (see `hashKeyForAddress`). */
  readonly clientKey: string
}

/**
 * A load-balancing algorithm over one tier of nodes (primaries, or backups).
 *
 * @example
 * ```ts
 * const wrr = createAlgorithm('weighted-round-robin')
 * wrr.reset([{ name: 'a', weight: 5, active: 0 }, { name: 'b', weight: 1, active: 0 }])
 * wrr.pick({ clientKey: '203.0.113.9' })?.name // 'a'
 * ```
 */
export interface Algorithm<N extends Candidate = Candidate> {
  readonly name: AlgorithmName
  /**
   * Set the nodes to choose among: those eligible for new clients, in a stable order. Called
   * when membership, health, state or weight changes, never per request.
   */
  reset (nodes: readonly N[]): void
  /**
   * Choose a node, skipping those in `avoid` (already tried by this request).
   * Returns `undefined` when every node is avoided or there are none.
   */
  pick (ctx: PickContext, avoid?: ReadonlySet<N> | null): N | undefined
}
