/**
 * The supervisor's copy of the nodes, the one owner of what every worker must agree on: the
 * active health checks run here, once for the whole balancer (not once per worker); the
 * workers' failed attempts are judged here (passive health: `maxFails` counts failures across
 * every worker); admin changes are validated and applied here first. Each decision is then sent to every worker.
 * This pool carries no traffic: its counters stay at zero, the workers' are added for the
 * admin API (`merge.ts`).
 */
import { performance } from 'node:perf_hooks'
import { parseNodeUpdate } from '../config/resolve.js'
import type { NodeUpdate, ResolvedConfig } from '../config/types.js'
import { TetherBalancerError } from '../errors.js'
import { ActiveHealthChecker, type CheckResult } from '../health/active.js'
import type { UpstreamNode } from '../pool/node.js'
import { Pool, type NodeTransition } from '../pool/pool.js'
import type { NodeSnapshot } from '../pool/snapshot.js'

/**
 * What the shared state tells the workers.
 *
 * @example
 * ```ts
 * const out: StateListener = { verdict: (node, result) => broadcast({ t: 'tether:check', node, result }), changed: (node, update) => {}, transition: (t) => log.info(t) }
 * ```
 */
export interface StateListener {
  /** A node's health flipped, by this check result. */
  verdict (node: string, result: CheckResult): void
  /** Passive health took a node out for `ms`. */
  held (node: string, ms: number, reason: string): void
  /** An admin change was applied. */
  changed (node: string, update: NodeUpdate): void
  /** For the log. */
  transition (t: NodeTransition): void
}

/**
 * The supervisor's nodes and health checks.
 *
 * @example
 * ```ts
 * const state = new SharedState(config, listener)
 * state.start()
 * state.setNode('app-1', { state: 'drain' })
 * ```
 */
export class SharedState {
  readonly #pool: Pool
  readonly #health: ActiveHealthChecker<UpstreamNode>
  readonly #out: StateListener

  constructor (config: ResolvedConfig, out: StateListener) {
    this.#out = out
    this.#pool = new Pool(config, (t) => {
      out.transition(t)
      if (t.field !== 'health') return
      const node = this.#pool.get(t.node)
      if (node === undefined) return
      // A passive ejection is sent as a hold; its end, each worker times itself. An active
      // verdict is sent as the check result that decided it.
      if (t.reason.startsWith('passive:')) {
        if (t.to === 'down') out.held(t.node, node.ejectionMs, t.reason)
        return
      }
      if (node.lastCheck !== null) out.verdict(t.node, node.lastCheck)
    })
    this.#health = new ActiveHealthChecker<UpstreamNode>(config.healthCheck, (node, result) => this.#pool.reportCheck(node, result))
    this.#config = config
  }

  #config: ResolvedConfig

  /** Start the health checks. */
  start (): void {
    this.#health.sync(this.#pool.nodes, this.#config.healthCheck)
  }

  /** A reloaded configuration (already validated). */
  apply (config: ResolvedConfig): void {
    this.#config = config
    this.#pool.apply(config, null)
    this.#health.sync(this.#pool.nodes, config.healthCheck)
  }

  /** A worker's failed attempt on `name`: judged here, for every worker. */
  observeFailure (name: string, reason: string): void {
    const node = this.#pool.get(name)
    if (node !== undefined && !node.removed) this.#pool.observeFailure(node, reason)
  }

  /** Validate and apply an admin change; throws `TETHER_ERR_UNKNOWN_NODE` or `TETHER_ERR_INVALID_NODE_UPDATE`. */
  setNode (name: string, update: NodeUpdate): NodeSnapshot {
    if (this.#pool.get(name) === undefined) throw new TetherBalancerError('TETHER_ERR_UNKNOWN_NODE', `no upstream node is named ${JSON.stringify(name)}`)
    const parsed = parseNodeUpdate(update)
    if (parsed.state !== undefined) this.#pool.setState(name, parsed.state, 'admin')
    if (parsed.weight !== undefined) this.#pool.setWeight(name, parsed.weight, 'admin')
    this.#out.changed(name, parsed)
    const snapshot = this.snapshot().find((n) => n.name === name)
    if (snapshot === undefined) throw new TetherBalancerError('TETHER_ERR_UNKNOWN_NODE')
    return snapshot
  }

  /**
   * What a worker that starts now must be told to agree with the others: each node's state
   * and weight, and the failing check of each node that is down.
   */
  catchUp (): { changes: Array<{ node: string, update: NodeUpdate }>, down: Array<{ node: string, result: CheckResult }>, held: Array<{ node: string, ms: number }> } {
    const changes = this.#pool.nodes.map((n) => ({ node: n.name, update: { state: n.state, weight: n.weight } }))
    const down: Array<{ node: string, result: CheckResult }> = []
    for (const n of this.#pool.nodes) if (!n.checkedUp && n.lastCheck !== null) down.push({ node: n.name, result: n.lastCheck })
    const t = performance.now()
    const held = this.#pool.nodes.filter((n) => n.downUntil > t).map((n) => ({ node: n.name, ms: Math.ceil(n.downUntil - t) }))
    return { changes, down, held }
  }

  snapshot (): NodeSnapshot[] {
    return this.#pool.snapshot()
  }

  stop (): void {
    this.#health.stop()
    this.#pool.close()
  }
}
