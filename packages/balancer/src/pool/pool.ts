/**
 * The pool owns the nodes' lifecycle: membership (and reloads), administrative state, active
 * and passive health, the leases of work in flight, and which nodes each request may use.
 * Algorithms only choose among the nodes the pool hands them; engines only move bytes.
 *
 * Eligibility is computed when something changes, not per request: the request path reads two
 * booleans on the node and asks one algorithm for a pick.
 */
import { performance } from 'node:perf_hooks'
import { createAlgorithm, type Algorithm, type PickContext } from '../algorithms/index.js'
import type { ResolvedConfig, ResolvedUpstream } from '../config/types.js'
import type { AlgorithmName, NodeState } from '../config/types.js'
import type { CheckResult } from '../health/active.js'
import type { StickyCodec } from '../sticky.js'
import { Lease, type LeaseOutcome, type LeaseOwner } from './lease.js'
import { UpstreamNode, type NodeHealth } from './node.js'
import { snapshotNode, type NodeSnapshot } from './snapshot.js'

/**
 * What changed on a node, for logs and metrics.
 *
 * @example
 * ```ts
 * const t: NodeTransition = { node: 'app-1', field: 'health', from: 'up', to: 'down', reason: 'active: 3 failed check(s)' }
 * ```
 */
export interface NodeTransition {
  readonly node: string
  readonly field: 'health' | 'state' | 'weight' | 'membership'
  readonly from: string
  readonly to: string
  readonly reason: string
}

/** Monotonic milliseconds: passive windows must not jump with the wall clock. */
const now = (): number => performance.now()

export class Pool implements LeaseOwner {
  #nodes: UpstreamNode[] = []
  readonly #byName = new Map<string, UpstreamNode>()
  #primary: Algorithm<UpstreamNode>
  #backup: Algorithm<UpstreamNode>
  #algorithmName: AlgorithmName
  #sticky: StickyCodec | null = null
  #rise: number
  #fall: number
  #maxEjectedPercent: number
  #previous: Map<string, ResolvedUpstream> = new Map()
  /** Passive holds: when each ends, the node is let back in (unless active checks keep it out). */
  readonly #holds = new Map<UpstreamNode, NodeJS.Timeout>()
  /** Every node name ever configured: a cookie naming a removed node is valid, and moves. */
  readonly #known = new Set<string>()
  readonly #onTransition: (t: NodeTransition) => void
  /** Primaries eligible for new clients; when 0, backups take over. */
  #primaryUp = 0

  constructor (config: ResolvedConfig, onTransition: (t: NodeTransition) => void) {
    this.#onTransition = onTransition
    this.#algorithmName = config.algorithm
    this.#primary = createAlgorithm(config.algorithm)
    this.#backup = createAlgorithm(config.algorithm)
    this.#rise = config.healthCheck.rise
    this.#fall = config.healthCheck.fall
    this.#maxEjectedPercent = config.maxEjectedPercent
    this.apply(config, null)
  }

  /** Every configured node, in configuration order. */
  get nodes (): readonly UpstreamNode[] { return this.#nodes }

  get (name: string): UpstreamNode | undefined { return this.#byName.get(name) }

  /**
   * Apply a (re)loaded configuration. Nodes are matched by name and keep their counters,
   * health and in-flight work; a node whose URL changed is replaced. A runtime change of state
   * or weight (admin API) survives a reload unless the file changed that very field.
   * Returns the nodes that left, so their connections can be released.
   */
  apply (config: ResolvedConfig, sticky: StickyCodec | null): UpstreamNode[] {
    if (config.algorithm !== this.#algorithmName) {
      this.#algorithmName = config.algorithm
      this.#primary = createAlgorithm(config.algorithm)
      this.#backup = createAlgorithm(config.algorithm)
    }
    this.#rise = config.healthCheck.rise
    this.#fall = config.healthCheck.fall
    this.#maxEjectedPercent = config.maxEjectedPercent
    this.#sticky = sticky
    const next: UpstreamNode[] = []
    const kept = new Set<UpstreamNode>()
    for (const upstream of config.upstreams) {
      const existing = this.#byName.get(upstream.name)
      if (existing !== undefined && existing.url === upstream.url) {
        const before = this.#previous.get(upstream.name)
        if (before === undefined || before.weight !== upstream.weight) this.#setWeight(existing, upstream.weight, 'reload')
        if (before === undefined || before.state !== upstream.state) this.#setState(existing, upstream.state, 'reload')
        existing.reconfigure(upstream)
        if (!config.healthCheck.enabled) existing.uncheck()
        next.push(existing)
        kept.add(existing)
      } else {
        const node = new UpstreamNode(upstream)
        next.push(node)
        if (this.#previous.size > 0) this.#onTransition({ node: node.name, field: 'membership', from: 'absent', to: 'present', reason: 'reload' })
      }
    }
    const gone = this.#nodes.filter((n) => !kept.has(n))
    for (const node of gone) {
      node.remove()
      this.#endHold(node)
      if (next.every((n) => n.name !== node.name)) this.#onTransition({ node: node.name, field: 'membership', from: 'present', to: 'absent', reason: 'reload' })
    }
    this.#nodes = next
    this.#byName.clear()
    for (const node of next) this.#byName.set(node.name, node)
    this.#previous = new Map(config.upstreams.map((u) => [u.name, u]))
    for (const node of next) this.#known.add(node.name)
    sticky?.index(this.#known)
    this.refresh()
    return gone
  }

  /** Recompute eligibility after any change, and hand each tier's eligible nodes to its algorithm. */
  refresh (): void {
    const t = now()
    const primaries: UpstreamNode[] = []
    const backups: UpstreamNode[] = []
    for (const node of this.#nodes) {
      const healthy = node.health(t) === 'up'
      node.setEligibility(healthy && node.state === 'active', healthy && node.state !== 'maint', this.#sticky === null ? '' : this.#sticky.setCookieFor(node.name))
      if (node.acceptsNew) (node.backup ? backups : primaries).push(node)
    }
    this.#primaryUp = primaries.length
    this.#primary.reset(primaries)
    this.#backup.reset(backups)
  }

  /**
   * Choose a node for a client without a (usable) sticky cookie: primaries first, backups only
   * when no primary is left (including after `avoid` removed the ones already tried).
   */
  pick (ctx: PickContext, avoid: ReadonlySet<UpstreamNode> | null): UpstreamNode | undefined {
    return this.#primary.pick(ctx, avoid) ?? this.#backup.pick(ctx, avoid)
  }

  /**
   * Whether a sticky client may stay on `node`: it is up and not in maint (drain is fine), and
   * it is a primary, or a backup while no primary is up. Backups hand clients back when the
   * primaries return, as nginx and HAProxy users expect of `backup`.
   */
  stickyAllowed (node: UpstreamNode): boolean {
    return node.acceptsSticky && (!node.backup || this.#primaryUp === 0)
  }

  /** Start an attempt on `node`: the lease counts it until `lease.end(outcome)`. */
  begin (node: UpstreamNode): Lease {
    return new Lease(this, node)
  }

  /** A lease ended (called by `Lease.end` only). A failure counts towards passive health. */
  settle (node: UpstreamNode, outcome: LeaseOutcome, reason: string): void {
    if (outcome !== 'failed' || node.removed) return
    const t = now()
    if (!node.recordFailure(t, this.#mayEject(t))) return
    // Good checks from before the failures do not vouch for the node now: with active checks
    // on, it takes `rise` fresh ones to bring it back early (HAProxy's observe + mark-down).
    const repeat = node.ejections > 1 ? ` (ejection ${node.ejections} in a row)` : ''
    this.#healthChanged(node, 'up', 'down', `passive: ${node.maxFails} failure(s) within ${node.failTimeout} ms, last: ${reason}; ejected for ${node.ejectionMs} ms${repeat}`)
    // Let it back in when failTimeout ends, unless an active check keeps it out.
    this.#endHold(node)
    const timer = setTimeout(() => {
      this.#holds.delete(node)
      if (node.removed) return
      if (node.checkedUp) this.#healthChanged(node, 'down', 'up', 'passive: fail timeout elapsed')
      else this.refresh()
    }, node.ejectionMs + 1)
    timer.unref()
    this.#holds.set(node, timer)
  }

  /** Record an active health check result and apply rise/fall. */
  reportCheck (node: UpstreamNode, result: CheckResult): void {
    const t = now()
    const wasUp = node.health(t) === 'up'
    const held = node.downUntil > t
    const change = node.recordCheck(result, this.#rise, this.#fall, t)
    if (change === null || node.removed) return
    if (change === 'up') {
      this.#endHold(node)
      this.#healthChanged(node, 'down', 'up', `active: ${this.#rise} successful check(s)${held ? ', passive failures cleared' : ''}`)
    } else if (wasUp) {
      this.#healthChanged(node, 'up', 'down', `active: ${this.#fall} failed check(s), last: ${result.error ?? `status ${String(result.status)}`}`)
    } else {
      this.refresh()
    }
  }

  /** Set a node's administrative state (admin API). Returns false for an unknown node. */
  setState (name: string, state: NodeState, reason: string): boolean {
    const node = this.#byName.get(name)
    if (node === undefined) return false
    this.#setState(node, state, reason)
    this.refresh()
    return true
  }

  /** Set a node's weight (admin API). Returns false for an unknown node. */
  setWeight (name: string, weight: number, reason: string): boolean {
    const node = this.#byName.get(name)
    if (node === undefined) return false
    this.#setWeight(node, weight, reason)
    this.refresh()
    return true
  }

  /** Snapshot of every node, for the admin API and `balancer.nodes()`. */
  snapshot (): NodeSnapshot[] {
    const t = now()
    const wall = Date.now()
    return this.#nodes.map((n) => snapshotNode(n, t, wall))
  }

  /** Stop the passive-recovery timers. */
  close (): void {
    for (const timer of this.#holds.values()) clearTimeout(timer)
    this.#holds.clear()
  }

  /**
   * Whether one more node may be held out by passive checks: at most `maxEjectedPercent` of the
   * nodes, but always one (Envoy's rule), so that a bad moment on every node cannot empty the pool.
   */
  #mayEject (t: number): boolean {
    if (this.#maxEjectedPercent >= 100) return true
    const out = this.#nodes.filter((n) => n.downUntil > t).length
    return out === 0 || (out + 1) * 100 <= this.#maxEjectedPercent * this.#nodes.length
  }

  #endHold (node: UpstreamNode): void {
    const timer = this.#holds.get(node)
    if (timer === undefined) return
    clearTimeout(timer)
    this.#holds.delete(node)
  }

  #setState (node: UpstreamNode, state: NodeState, reason: string): void {
    const from = node.setState(state)
    if (from !== state) this.#onTransition({ node: node.name, field: 'state', from, to: state, reason })
  }

  #setWeight (node: UpstreamNode, weight: number, reason: string): void {
    const from = node.setWeight(weight)
    if (from !== weight) this.#onTransition({ node: node.name, field: 'weight', from: String(from), to: String(weight), reason })
  }

  #healthChanged (node: UpstreamNode, from: NodeHealth, to: NodeHealth, reason: string): void {
    node.healthChanged()
    this.refresh()
    this.#onTransition({ node: node.name, field: 'health', from, to, reason })
  }
}
