/**
 * A lease: one attempt's hold on a node, from `pool.begin(node)` to `lease.end(outcome)`. The
 * counts of work in flight (active, requests, errors) and passive health change here and in
 * the pool, nowhere else. An upgrade that becomes a WebSocket tunnel keeps its lease until the
 * tunnel closes, so least-connections and `active_connections` count tunnels too.
 *
 * This is also where a per-node connection limit with a bounded queue plugs in: `begin` would
 * wait for (or refuse) a free slot, and `end` would hand the slot to the next waiter.
 */
import { performance } from 'node:perf_hooks'
import type { UpstreamNode } from './node.js'

/**
 * How an attempt ended, from the node's side: `done` (it answered, whatever the status, or the
 * tunnel closed), `failed` (connect, reset, timeout or invalid response: counts against the
 * node's passive health), `cancelled` (the client left, or the balancer stopped it: neutral).
 *
 * @example
 * ```ts
 * lease.end(error.kind === 'aborted' ? 'cancelled' : 'failed', error.code)
 * ```
 */
export type LeaseOutcome = 'done' | 'failed' | 'cancelled'

/** What a lease reports to when it ends (the pool). */
export interface LeaseOwner {
  settle (node: UpstreamNode, outcome: LeaseOutcome, reason: string): void
  /** The node's response head came `ms` after the attempt began (latency outlier detection). */
  answered (node: UpstreamNode, ms: number): void
}

/**
 * One attempt's hold on a node. One small object per attempt, no closures.
 *
 * @example
 * ```ts
 * const lease = pool.begin(node)
 * engine.request(lease.node, request, sink)
 * // later, exactly once (further calls do nothing):
 * lease.end('done')
 * ```
 */
export class Lease {
  readonly node: UpstreamNode
  /** When the attempt started (performance.now(), ms). */
  readonly startedAt: number
  #owner: LeaseOwner | null

  constructor (owner: LeaseOwner, node: UpstreamNode) {
    this.#owner = owner
    this.node = node
    this.startedAt = performance.now()
    node.leased()
  }

  /** Whether `end` has not been called yet. */
  get open (): boolean { return this.#owner !== null }

  /**
   * The response head arrived: its latency counts towards the node's latency outlier
   * detection. Call it for requests without a body only (an upload's time is the client's).
   */
  answered (): void {
    this.#owner?.answered(this.node, performance.now() - this.startedAt)
  }

  /** Close the lease. Idempotent: only the first call counts. */
  end (outcome: LeaseOutcome, reason: string = outcome): void {
    const owner = this.#owner
    if (owner === null) return
    this.#owner = null
    this.node.released(outcome === 'failed')
    owner.settle(this.node, outcome, reason)
  }
}
