/**
 * Passive health's decisions for the pool: count a failed attempt, take the node out for its
 * ejection time (within `maxEjectedPercent`), and let it back in when the hold ends unless
 * active checks keep it out. The counters are the node's (`health/passive.ts`); the pool
 * applies what changes.
 *
 * In a cluster worker the failures are not judged here: they go to the supervisor, which
 * judges them for every worker and sends back the holds it decides (`hold`). Latency (see
 * `answered`) is judged in each worker on the requests it forwards: every worker sees the same
 * slow node, but each ejects it on its own.
 */
import { performance } from 'node:perf_hooks'
import { isLatencyOutlier, type LatencyEjectionConfig } from '../health/latency.js'
import type { NodeHealth, UpstreamNode } from './node.js'

/**
 * What the pool gives passive health: its nodes, and how to change a node's health.
 *
 * @example
 * ```ts
 * const hooks: PassiveHooks = { nodes: () => nodes, changed: (node, from, to, reason) => log.info({ node: node.name, from, to, reason }), refresh: () => {} }
 * ```
 */
export interface PassiveHooks {
  nodes (): readonly UpstreamNode[]
  changed (node: UpstreamNode, from: NodeHealth, to: NodeHealth, reason: string): void
  refresh (): void
}

/**
 * Passive holds, one timer per node.
 *
 * @example
 * ```ts
 * const passive = new PassiveHolds({ nodes: () => pool.nodes, changed, refresh })
 * passive.failed(node, 'ECONNREFUSED')
 * ```
 */
export class PassiveHolds {
  readonly #hooks: PassiveHooks
  readonly #timers = new Map<UpstreamNode, NodeJS.Timeout>()
  #report: ((node: string, reason: string) => void) | null = null
  maxEjectedPercent = 100
  /** Latency outlier detection's settings (`latencyEjection`); off while `factor` is 0. */
  latency: LatencyEjectionConfig = { factor: 0, minExtra: 0, minRequests: 0, ejectionTime: 0 }

  constructor (hooks: PassiveHooks) {
    this.#hooks = hooks
  }

  /** From now on, send failures to `report` (the supervisor) instead of judging them. */
  reportTo (report: (node: string, reason: string) => void): void {
    this.#report = report
  }

  /** An attempt on `node` failed. */
  failed (node: UpstreamNode, reason: string): void {
    if (this.#report !== null) this.#report(node.name, reason)
    else this.observe(node, reason)
  }

  /** Count a failure, and take the node out when it reaches `maxFails`. */
  observe (node: UpstreamNode, reason: string): void {
    const t = performance.now()
    if (!node.recordFailure(t, this.#mayEject(t))) return
    // Good checks from before the failures do not vouch for the node now: with active checks
    // on, it takes `rise` fresh ones to bring it back early (HAProxy's observe + mark-down).
    const repeat = node.ejections > 1 ? ` (ejection ${node.ejections} in a row)` : ''
    this.#start(node, node.ejectionMs, `passive: ${node.maxFails} failure(s) within ${node.failTimeout} ms, last: ${reason}; ejected for ${node.ejectionMs} ms${repeat}`, 'fail timeout elapsed')
  }

  /** A response head came `ms` after its attempt began: eject a latency outlier. */
  answered (node: UpstreamNode, ms: number): void {
    const config = this.latency
    if (config.factor <= 0 || node.removed) return
    node.recordLatency(ms)
    const t = performance.now()
    if (node.health(t) !== 'up') return
    const peers: number[] = []
    for (const n of this.#hooks.nodes()) {
      if (n !== node && !n.removed && n.health(t) === 'up' && n.latency.samples >= config.minRequests) peers.push(n.latency.recent)
    }
    if (!isLatencyOutlier(node.latency, peers, config) || !this.#mayEject(t)) return
    const { recent, baseline } = node.latency
    node.ejectSlow(t, config.ejectionTime)
    const repeat = node.ejections > 1 ? ` (ejection ${node.ejections} in a row)` : ''
    this.#start(node, node.ejectionMs, `passive: latency ${Math.round(recent)} ms against its baseline ${Math.round(baseline)} ms and ${peers.map((p) => Math.round(p)).join('/')} ms on the other nodes; ejected for ${node.ejectionMs} ms${repeat}`, 'latency ejection elapsed')
  }

  /** Take `node` out for `ms`, as the supervisor decided. */
  hold (node: UpstreamNode, ms: number, reason: string): void {
    node.holdFor(performance.now(), ms)
    this.#start(node, ms, reason, 'fail timeout elapsed')
  }

  #start (node: UpstreamNode, ms: number, reason: string, back: string): void {
    this.#hooks.changed(node, 'up', 'down', reason)
    // Let it back in when the hold ends, unless an active check keeps it out.
    this.end(node)
    const timer = setTimeout(() => {
      this.#timers.delete(node)
      node.holdEnded()
      if (node.removed) return
      if (node.checkedUp) this.#hooks.changed(node, 'down', 'up', `passive: ${back}`)
      else this.#hooks.refresh()
    }, ms + 1)
    timer.unref()
    this.#timers.set(node, timer)
  }

  /** Forget `node`'s hold (it is back, or gone). */
  end (node: UpstreamNode): void {
    const timer = this.#timers.get(node)
    if (timer === undefined) return
    clearTimeout(timer)
    this.#timers.delete(node)
  }

  clear (): void {
    for (const timer of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
  }

  /**
   * Whether one more node may be held out by passive checks: at most `maxEjectedPercent` of the
   * nodes, but always one (Envoy's rule), so that a bad moment on every node cannot empty the pool.
   */
  #mayEject (t: number): boolean {
    if (this.maxEjectedPercent >= 100) return true
    const nodes = this.#hooks.nodes()
    const out = nodes.filter((n) => n.downUntil > t).length
    return out === 0 || (out + 1) * 100 <= this.maxEjectedPercent * nodes.length
  }
}
