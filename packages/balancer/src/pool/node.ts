/**
 * One upstream node: its configuration, administrative state, health and counters. Plain data
 * with no behaviour of its own: the pool decides every change, so that health, draining,
 * connection counts and retries live in one place.
 */
import type { ResolvedUpstream } from '../config/resolve.js'
import type { NodeState } from '../config/types.js'
import type { Candidate } from '../algorithms/algorithm.js'
import type { PassiveState } from '../health/passive.js'
import type { UpstreamTarget } from '../engines/engine.js'

/** Result of the last active health check. */
export interface CheckResult {
  /** Wall-clock time of the check (ms since epoch). */
  readonly at: number
  readonly ok: boolean
  /** HTTP status, when one came back. */
  readonly status: number | null
  /** Why it failed, when it did. */
  readonly error: string | null
  readonly durationMs: number
}

/**
 * What a node is doing, as one word: `maint` and `down` win over `drain`.
 *
 * @example
 * ```ts
 * const busy: NodeStatus[] = balancer.nodes().map((n) => n.status)
 * ```
 */
export type NodeStatus = 'up' | 'drain' | 'down' | 'maint'

/**
 * Health from the balancer's point of view.
 *
 * @example
 * ```ts
 * const up = balancer.nodes().filter((n) => n.health === ('up' satisfies NodeHealth))
 * ```
 */
export type NodeHealth = 'up' | 'down'

/** An upstream node as the pool keeps it. */
export class UpstreamNode implements Candidate, UpstreamTarget, PassiveState {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly authority: string
  readonly url: string
  config: ResolvedUpstream

  weight: number
  state: NodeState
  backup: boolean

  /** Active checks say up (or are off). */
  checkedUp = true
  checkSuccesses = 0
  checkFailures = 0
  lastCheck: CheckResult | null = null

  fails = 0
  failWindowStart = 0
  downUntil = 0

  /** Requests and tunnels in flight. */
  active = 0
  /** Attempts sent to this node. */
  requests = 0
  /** Attempts that failed: connect, reset, timeout, invalid response. */
  errors = 0
  /** Times this node's health or state changed. */
  transitions = 0

  // Derived by the pool on every change so the request path reads plain booleans.
  acceptsNew = true
  acceptsSticky = true
  /** The `Set-Cookie` value that routes a client here; '' when sticky is off. */
  setCookie = ''
  /** Taken out of the configuration by a reload; finishing its in-flight work. */
  removed = false
  /** Label set for per-node metrics, made once so the request path allocates none. */
  readonly labels: { readonly node: string }

  constructor (config: ResolvedUpstream) {
    this.config = config
    this.name = config.name
    this.host = config.host
    this.port = config.port
    this.authority = config.authority
    this.url = config.url
    this.weight = config.weight
    this.state = config.state
    this.backup = config.backup
    this.labels = { node: config.name }
  }

  /** Health: down when an active check or the passive check says so. */
  health (now: number): NodeHealth {
    return this.checkedUp && this.downUntil <= now ? 'up' : 'down'
  }

  /** One-word status for logs, the admin API and the status page. */
  status (now: number): NodeStatus {
    if (this.state === 'maint') return 'maint'
    if (this.health(now) === 'down') return 'down'
    return this.state === 'drain' ? 'drain' : 'up'
  }
}
