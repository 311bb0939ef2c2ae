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
import { PassiveHolds } from './passive-holds.js'
import { UpstreamNode, type NodeHealth } from './node.js'
import { QueueEntry, WaitQueue, type QueueRefusal, type Waiter } from './queue.js'
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

/**
 * How a wait in a queue ended, and how long it took: for the metrics.
 *
 * @example
 * ```ts
 * const onWaited: (outcome: WaitOutcome, ms: number) => void = (outcome, ms) => histogram.observe({ outcome }, ms / 1000)
 * ```
 */
export type WaitOutcome = 'granted' | 'timeout'

/**
 * What `pool.admit` answers: a lease (a slot is free now), `queued` (the waiter will hear), a
 * refusal (the queue is full), or undefined (no node may take the request at all).
 *
 * @example
 * ```ts
 * const result: Admission = pool.admit(undefined, request, null, request)
 * ```
 */
export type Admission = Lease | 'queued' | QueueRefusal | undefined

export class Pool implements LeaseOwner {
  #nodes: UpstreamNode[] = []
  readonly #byName = new Map<string, UpstreamNode>()
  #primary: Algorithm<UpstreamNode>
  #backup: Algorithm<UpstreamNode>
  #algorithmName: AlgorithmName
  #balanceFactor: number
  #sticky: StickyCodec | null = null
  #rise: number
  #fall: number
  #previous: Map<string, ResolvedUpstream> = new Map()
  readonly #passive = new PassiveHolds({ nodes: () => this.#nodes, changed: (n, from, to, why) => this.#healthChanged(n, from, to, why), refresh: () => this.refresh() })
  /** Every node name ever configured: a cookie naming a removed node is valid, and moves. */
  readonly #known = new Set<string>()
  readonly #onTransition: (t: NodeTransition) => void
  /** Primaries eligible for new clients; when 0, backups take over. */
  #primaryUp = 0
  // Queues for nodes at their maxConn: one per node (sticky clients), one for the others.
  #queueSize = 0
  #queueTimeout = 0
  readonly #nodeQueues = new Map<UpstreamNode, WaitQueue>()
  readonly #poolQueue = new WaitQueue()
  readonly #waiting = new Map<Waiter, QueueEntry>()
  readonly #onWaited: (outcome: WaitOutcome, ms: number) => void

  constructor (config: ResolvedConfig, onTransition: (t: NodeTransition) => void, onWaited: (outcome: WaitOutcome, ms: number) => void = () => {}) {
    this.#onTransition = onTransition
    this.#onWaited = onWaited
    this.#algorithmName = config.algorithm
    this.#balanceFactor = config.hashBalanceFactor
    this.#primary = createAlgorithm(config.algorithm, { hashBalanceFactor: config.hashBalanceFactor / 100 })
    this.#backup = createAlgorithm(config.algorithm, { hashBalanceFactor: config.hashBalanceFactor / 100 })
    this.#rise = config.healthCheck.rise
    this.#fall = config.healthCheck.fall
    this.#passive.maxEjectedPercent = config.maxEjectedPercent
    this.#passive.latency = config.latencyEjection
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
    if (config.algorithm !== this.#algorithmName || config.hashBalanceFactor !== this.#balanceFactor) {
      this.#algorithmName = config.algorithm
      this.#balanceFactor = config.hashBalanceFactor
      this.#primary = createAlgorithm(config.algorithm, { hashBalanceFactor: config.hashBalanceFactor / 100 })
      this.#backup = createAlgorithm(config.algorithm, { hashBalanceFactor: config.hashBalanceFactor / 100 })
    }
    this.#rise = config.healthCheck.rise
    this.#fall = config.healthCheck.fall
    this.#passive.maxEjectedPercent = config.maxEjectedPercent
    this.#passive.latency = config.latencyEjection
    this.#queueSize = config.queue.size
    this.#queueTimeout = config.queue.timeout
    this.#sticky = sticky
    const next: UpstreamNode[] = []
    const kept = new Set<UpstreamNode>()
    for (const upstream of config.upstreams) {
      const existing = this.#byName.get(upstream.name)
      // A node whose TLS settings changed (a renewed CA file) is replaced too: its pooled
      // connections were verified against the old settings.
      if (existing !== undefined && existing.url === upstream.url && JSON.stringify(existing.tls) === JSON.stringify(upstream.tls)) {
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
      this.#passive.end(node)
      // Its sticky waiters may go elsewhere now: they join the others.
      const queue = this.#nodeQueues.get(node)
      this.#nodeQueues.delete(node)
      for (const entry of queue?.drain() ?? []) {
        const moved = new QueueEntry(entry.waiter, this.#poolQueue, null, entry.since)
        moved.timer = entry.timer
        this.#waiting.set(entry.waiter, moved)
        this.#poolQueue.add(moved)
      }
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
    // A node back up (or a new one) may take requests that wait.
    if (this.#waiting.size > 0) for (const node of this.#nodes) while (this.#handOff(node)) { /* one waiter per hand-off */ }
  }

  /**
   * Choose a node with a free slot for a client without a (usable) sticky cookie: primaries
   * first, backups only when no primary is left (including after `avoid` removed the ones
   * already tried). A node at its `maxConn` is passed over for the algorithm's next choice.
   */
  pick (ctx: PickContext, avoid: ReadonlySet<UpstreamNode> | null): UpstreamNode | undefined {
    return this.#choose(ctx, avoid).node
  }

  /**
   * A slot for a request: on `sticky` (the node its cookie holds it to), else on a node the
   * algorithm picks among those with a free slot. When every candidate is at its `maxConn`, the
   * request waits in a bounded queue (`queue.size`, `queue.timeout`) and `waiter` hears
   * `granted` or `refused`.
   */
  admit (sticky: UpstreamNode | undefined, ctx: PickContext, avoid: ReadonlySet<UpstreamNode> | null, waiter: Waiter): Admission {
    if (sticky !== undefined) {
      if (!sticky.full) return this.begin(sticky)
      let queue = this.#nodeQueues.get(sticky)
      if (queue === undefined) { queue = new WaitQueue(); this.#nodeQueues.set(sticky, queue) }
      return this.#enqueue(queue, waiter, null)
    }
    const { node, full } = this.#choose(ctx, avoid)
    if (node !== undefined) return this.begin(node)
    return full ? this.#enqueue(this.#poolQueue, waiter, avoid) : undefined
  }

  /** A waiter left before it got a slot (its client went away): forget it. */
  leaveQueue (waiter: Waiter): void {
    const entry = this.#waiting.get(waiter)
    if (entry === undefined) return
    this.#waiting.delete(waiter)
    clearTimeout(entry.timer)
    entry.queue.delete(entry)
  }

  /** Requests waiting for a slot on `node`; for `null`, those waiting for any node. */
  queued (node: UpstreamNode | null): number {
    return node === null ? this.#poolQueue.length : this.#nodeQueues.get(node)?.length ?? 0
  }

  #choose (ctx: PickContext, avoid: ReadonlySet<UpstreamNode> | null): { node: UpstreamNode | undefined, full: boolean } {
    const first = this.#pickIn(this.#primary, ctx, avoid)
    if (first.node !== undefined || first.full) return first
    return this.#pickIn(this.#backup, ctx, avoid)
  }

  #pickIn (algorithm: Algorithm<UpstreamNode>, ctx: PickContext, avoid: ReadonlySet<UpstreamNode> | null): { node: UpstreamNode | undefined, full: boolean } {
    let node = algorithm.pick(ctx, avoid)
    if (node === undefined || !node.full) return { node, full: false }
    // At its maxConn: the next choice, as HAProxy routes a request that has no server yet.
    const skip = new Set<UpstreamNode>(avoid ?? [])
    while (node !== undefined && node.full) {
      skip.add(node)
      node = algorithm.pick(ctx, skip)
    }
    return { node, full: node === undefined }
  }

  #enqueue (queue: WaitQueue, waiter: Waiter, avoid: ReadonlySet<UpstreamNode> | null): 'queued' | QueueRefusal {
    if (queue.length >= this.#queueSize) return 'TETHER_ERR_QUEUE_FULL'
    const entry = new QueueEntry(waiter, queue, avoid)
    entry.timer = setTimeout(() => this.#expire(entry), this.#queueTimeout)
    queue.add(entry)
    this.#waiting.set(waiter, entry)
    return 'queued'
  }

  #expire (entry: QueueEntry): void {
    if (this.#waiting.get(entry.waiter) !== entry) return
    this.#waiting.delete(entry.waiter)
    entry.queue.delete(entry)
    this.#onWaited('timeout', now() - entry.since)
    entry.waiter.refused('TETHER_ERR_QUEUE_TIMEOUT')
  }

  /**
   * A slot may be free on `node`: hand it to the first of its own waiters, else to the first
   * other waiter that may use it. Returns whether a waiter got it. The lease is taken now (the
   * slot is reserved); the waiter hears of it in a microtask, outside the lease that ended.
   */
  #handOff (node: UpstreamNode): boolean {
    if (this.#waiting.size === 0 || node.full || node.removed) return false
    let entry = node.acceptsSticky ? this.#nodeQueues.get(node)?.take(() => true) : undefined
    if (entry === undefined && node.acceptsNew && (!node.backup || this.#primaryUp === 0)) {
      entry = this.#poolQueue.take((e) => e.avoid === null || !e.avoid.has(node))
    }
    if (entry === undefined) return false
    clearTimeout(entry.timer)
    this.#waiting.delete(entry.waiter)
    this.#onWaited('granted', now() - entry.since)
    const lease = this.begin(node)
    const waiter = entry.waiter
    queueMicrotask(() => waiter.granted(lease))
    return true
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
    this.#handOff(node)
    if (outcome !== 'failed' || node.removed) return
    this.#passive.failed(node, reason)
  }

  /** In a cluster worker: failures go to `report` (the supervisor), which decides the holds. */
  reportFailuresTo (report: (node: string, reason: string) => void): void { this.#passive.reportTo(report) }

  /** Count a failed attempt towards passive health (the supervisor, for a worker's failure). */
  observeFailure (node: UpstreamNode, reason: string): void { this.#passive.observe(node, reason) }

  /** In a cluster worker: the supervisor took `name` out for `ms`. */
  hold (name: string, ms: number, reason: string): void {
    const node = this.#byName.get(name)
    if (node !== undefined && !node.removed) this.#passive.hold(node, ms, reason)
  }

  /**
   * A response head came `ms` after its attempt began (a request without a body): latency
   * outlier detection (`latencyEjection`) ejects a node that turned much slower than its own
   * baseline and than the other nodes.
   */
  answered (node: UpstreamNode, ms: number): void {
    this.#passive.answered(node, ms)
  }

  /** Record an active health check result and apply rise/fall. */
  reportCheck (node: UpstreamNode, result: CheckResult): void {
    const t = now()
    const wasUp = node.health(t) === 'up'
    const held = node.downUntil > t
    const change = node.recordCheck(result, this.#rise, this.#fall, t)
    if (change === null || node.removed) return
    if (change === 'up') {
      this.#passive.end(node)
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
    return this.#nodes.map((n) => snapshotNode(n, t, wall, this.queued(n)))
  }

  /** Stop the passive-recovery timers; requests still waiting are refused. */
  close (): void {
    for (const entry of [...this.#waiting.values()]) {
      this.leaveQueue(entry.waiter)
      entry.waiter.refused('TETHER_ERR_QUEUE_TIMEOUT')
    }
    this.#passive.clear()
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
