/**
 * The read-only view of the nodes for the admin API, the status page and `balancer.nodes()`:
 * plain objects, copied, with monotonic times turned into wall-clock ISO times.
 */
import type { NodeState } from '../config/types.js'
import type { NodeHealth, NodeStatus, UpstreamNode } from './node.js'

/**
 * A node as the admin API and `balancer.nodes()` report it.
 *
 * @example
 * ```ts
 * const [first] = balancer.nodes()
 * console.log(first.name, first.status, first.activeConnections)
 * ```
 */
export interface NodeSnapshot {
  readonly name: string
  readonly url: string
  readonly state: NodeState
  readonly weight: number
  readonly backup: boolean
  readonly health: NodeHealth
  /** One word: `maint` and `down` win over `drain`. */
  readonly status: NodeStatus
  readonly activeConnections: number
  /** Requests (and tunnels) in flight at most; 0: no limit. */
  readonly maxConn: number
  /** Requests waiting for a slot on this node (clients held here by their sticky cookie). */
  readonly queued: number
  readonly requests: number
  readonly errors: number
  readonly transitions: number
  /** When the passive check lets the node back in (ISO time), or null. */
  readonly passiveDownUntil: string | null
  readonly lastCheck: {
    readonly at: string
    readonly ok: boolean
    readonly status: number | null
    readonly error: string | null
    readonly durationMs: number
  } | null
}

/**
 * Snapshot one node at monotonic time `now` (wall clock `wall`).
 *
 * @example
 * ```ts
 * const view = snapshotNode(node, performance.now(), Date.now())
 * ```
 */
export function snapshotNode (n: UpstreamNode, now: number, wall: number, queued = 0): NodeSnapshot {
  const check = n.lastCheck
  return {
    name: n.name,
    url: n.url,
    state: n.state,
    weight: n.weight,
    backup: n.backup,
    health: n.health(now),
    status: n.status(now),
    activeConnections: n.active,
    maxConn: n.maxConn,
    queued,
    requests: n.requests,
    errors: n.errors,
    transitions: n.transitions,
    passiveDownUntil: n.downUntil > now ? new Date(wall + (n.downUntil - now)).toISOString() : null,
    lastCheck: check === null
      ? null
      : { at: new Date(check.at).toISOString(), ok: check.ok, status: check.status, error: check.error, durationMs: check.durationMs }
  }
}
