/**
 * One upstream node: its configuration, administrative state, health and counters, all private.
 * Everything outside `pool/` reads a node through its getters (algorithms as a `Candidate`,
 * engines as an `UpstreamTarget`, metrics as a `NodeStats`); the methods that change it are
 * called by the pool's own modules only: `pool.ts` (membership, state, weight, eligibility,
 * health) and `lease.ts` (the counts of work in flight).
 */
import type { Candidate } from '../algorithms/algorithm.js'
import type { ResolvedUpstream, ResolvedUpstreamTls } from '../config/types.js'
import type { NodeState } from '../config/types.js'
import type { UpstreamTarget } from '../engines/engine.js'
import type { CheckResult } from '../health/active.js'
import { recordLatency, resetRecent, type LatencyState } from '../health/latency.js'
import { clearPassive, eject, ejectionMs, recordFailure, type PassiveState } from '../health/passive.js'

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

/**
 * What the metrics read of a node.
 *
 * @example
 * ```ts
 * const stats: NodeStats = pool.nodes[0]
 * ```
 */
export interface NodeStats extends Candidate {
  /** Label set for per-node metrics, made once so the request path allocates none. */
  readonly labels: { readonly node: string }
  readonly state: NodeState
  readonly requests: number
  readonly errors: number
  health (now: number): NodeHealth
}

/** An upstream node as the pool keeps it. */
export class UpstreamNode implements NodeStats, UpstreamTarget {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly authority: string
  readonly url: string
  readonly tls: ResolvedUpstreamTls | null
  readonly labels: { readonly node: string }
  #config: ResolvedUpstream
  #weight: number
  #state: NodeState
  #backup: boolean

  // Work: requests and tunnels in flight, attempts sent, attempts failed. Changed by leases.
  #active = 0
  #requests = 0
  #errors = 0
  /** Times this node's health or state changed. */
  #transitions = 0

  // Health. Active checks say up (or are off); passive failures count in a window.
  #checkedUp = true
  #checkSuccesses = 0
  #checkFailures = 0
  #lastCheck: CheckResult | null = null
  readonly #passive: PassiveState = { fails: 0, failWindowStart: 0, downUntil: 0, ejections: 0, ejectedAt: 0 }
  readonly #latency: LatencyState = { samples: 0, recent: 0, baseline: 0 }
  /** The current passive hold is for latency: a health check that passes does not end it. */
  #slowHold = false

  // Derived by the pool on every change so the request path reads plain booleans.
  #acceptsNew = true
  #acceptsSticky = true
  #setCookie = ''
  #removed = false

  constructor (config: ResolvedUpstream) {
    this.#config = config
    this.name = config.name
    this.host = config.host
    this.port = config.port
    this.authority = config.authority
    this.url = config.url
    this.tls = config.tls
    this.#weight = config.weight
    this.#state = config.state
    this.#backup = config.backup
    this.labels = { node: config.name }
  }

  get weight (): number { return this.#weight }
  get state (): NodeState { return this.#state }
  get backup (): boolean { return this.#backup }
  get maxFails (): number { return this.#config.maxFails }
  get failTimeout (): number { return this.#config.failTimeout }
  /** Requests and tunnels in flight at most; 0: no limit. */
  get maxConn (): number { return this.#config.maxConn }
  /** At its `maxConn`: a new attempt must wait for a slot. */
  get full (): boolean {
    const max = this.#config.maxConn
    return max !== 0 && this.#active >= max
  }

  /** Requests and tunnels in flight. */
  get active (): number { return this.#active }
  /** Attempts sent to this node. */
  get requests (): number { return this.#requests }
  /** Attempts that failed: connect, reset, timeout, invalid response. */
  get errors (): number { return this.#errors }
  get transitions (): number { return this.#transitions }
  get lastCheck (): CheckResult | null { return this.#lastCheck }
  /** Until when (monotonic ms) the passive check keeps it out; 0 or past when it does not. */
  get downUntil (): number { return this.#passive.downUntil }
  /** How long the current (or last) passive ejection lasts (ms): grows on repeats. */
  get ejectionMs (): number { return ejectionMs(this.#passive, this.#config.failTimeout) }
  /** Consecutive passive ejections (the back-off multiplier). */
  get ejections (): number { return this.#passive.ejections }
  get checkedUp (): boolean { return this.#checkedUp }
  /** Latency outlier detection's counters (read-only outside this class). */
  get latency (): Readonly<LatencyState> { return this.#latency }
  /** May take new clients: healthy, active, and still configured. */
  get acceptsNew (): boolean { return this.#acceptsNew }
  /** May keep its sticky clients: healthy, not in maint, and still configured. */
  get acceptsSticky (): boolean { return this.#acceptsSticky }
  /** The `Set-Cookie` value that routes a client here; '' when sticky is off. */
  get setCookie (): string { return this.#setCookie }
  /** Taken out of the configuration by a reload; finishing its in-flight work. */
  get removed (): boolean { return this.#removed }

  /** Health: down when an active check or the passive check says so. */
  health (now: number): NodeHealth {
    return this.#checkedUp && this.#passive.downUntil <= now ? 'up' : 'down'
  }

  /** One-word status for logs, the admin API and the status page. */
  status (now: number): NodeStatus {
    if (this.#state === 'maint') return 'maint'
    if (this.health(now) === 'down') return 'down'
    return this.#state === 'drain' ? 'drain' : 'up'
  }

  // ---- changed by the pool (pool.ts) ----------------------------------------------------

  /** A reload kept this node: new settings (passive limits, backup); weight and state are set apart. */
  reconfigure (config: ResolvedUpstream): void {
    this.#config = config
    this.#backup = config.backup
  }

  /** Returns the previous weight. */
  setWeight (weight: number): number {
    const from = this.#weight
    this.#weight = weight
    return from
  }

  /** Returns the previous state; a change counts as a transition. */
  setState (state: NodeState): NodeState {
    const from = this.#state
    this.#state = state
    if (from !== state) this.#transitions++
    return from
  }

  /** Health changed (a transition). */
  healthChanged (): void { this.#transitions++ }

  /** What the pool derived from state, health and tier for the request path. */
  setEligibility (acceptsNew: boolean, acceptsSticky: boolean, setCookie: string): void {
    this.#acceptsNew = acceptsNew && !this.#removed
    this.#acceptsSticky = acceptsSticky && !this.#removed
    this.#setCookie = setCookie
  }

  /** A reload removed it: no new work; in-flight work finishes. */
  remove (): void {
    this.#removed = true
    this.#acceptsNew = false
    this.#acceptsSticky = false
  }

  /** Active checks are off: they cannot keep the node out. */
  uncheck (): void { this.#checkedUp = true }

  /**
   * Count a failed attempt for passive health at monotonic time `now`. Returns true when it
   * takes the node out (then good checks from before the failures no longer count).
   */
  recordFailure (now: number, mayEject = true): boolean {
    if (!recordFailure(this.#passive, now, this.#config.maxFails, this.#config.failTimeout, mayEject)) return false
    this.#checkSuccesses = 0
    this.#slowHold = false
    return true
  }

  /** Held out for `ms` from `now` by a passive verdict taken elsewhere (the cluster's supervisor). */
  holdFor (now: number, ms: number): void {
    this.#passive.downUntil = now + ms
    this.#passive.fails = 0
    this.#checkSuccesses = 0
    this.#slowHold = false
  }

  /** Count one response head's latency (ms). */
  recordLatency (ms: number): void { recordLatency(this.#latency, ms) }

  /** Eject the node as a latency outlier for `base` ms (or longer on a repeat). */
  ejectSlow (now: number, base: number): void {
    eject(this.#passive, now, base)
    this.#checkSuccesses = 0
    this.#slowHold = true
  }

  /** A passive hold ended: the node starts again from its baseline latency. */
  holdEnded (): void {
    if (this.#slowHold) resetRecent(this.#latency)
    this.#slowHold = false
  }

  /**
   * Record an active check. Returns 'up' when it brings the node back (`rise` successes, also
   * ending a passive hold), 'down' when it takes it out (`fall` failures), else null.
   */
  recordCheck (result: CheckResult, rise: number, fall: number, now: number): NodeHealth | null {
    this.#lastCheck = result
    if (result.ok) {
      this.#checkFailures = 0
      this.#checkSuccesses++
      // Up again after `rise` good checks: from an active `fall`, or early from a passive hold
      // (a node restarted before the checks saw it fail `fall` times is still checkedUp).
      const held = this.#passive.downUntil > now
      // A health check answers fast from a node whose requests are slow: a latency ejection
      // runs its course.
      if (held && this.#slowHold) return null
      if (this.#checkSuccesses < rise || (this.#checkedUp && !held)) return null
      this.#checkedUp = true
      clearPassive(this.#passive)
      this.holdEnded()
      return 'up'
    }
    this.#checkSuccesses = 0
    this.#checkFailures++
    if (!this.#checkedUp || this.#checkFailures < fall) return null
    this.#checkedUp = false
    return 'down'
  }

  // ---- changed by leases (lease.ts) -----------------------------------------------------

  /** An attempt (request or upgrade) starts on this node. */
  leased (): void {
    this.#active++
    this.#requests++
  }

  /** An attempt (or the tunnel it became) ended; `failed` when the node was at fault. */
  released (failed: boolean): void {
    this.#active--
    if (failed) this.#errors++
  }
}
