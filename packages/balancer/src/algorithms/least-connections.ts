/**
 * Weighted least-connections, nginx's `least_conn`: the node with the fewest in-flight requests
 * per unit of weight wins; ties are broken by smooth weighted round-robin among the tied nodes,
 * so with no load at all it behaves exactly like weighted round-robin.
 */
import type { Algorithm, Candidate, PickContext } from './algorithm.js'
import { pickSmooth } from './weighted-round-robin.js'

/**
 * Weighted least-connections.
 *
 * @example
 * ```ts
 * const lc = new LeastConnections()
 * lc.reset([{ name: 'a', weight: 1, active: 4 }, { name: 'b', weight: 1, active: 1 }])
 * lc.pick({ clientKey: '' })?.name // 'b'
 * ```
 */
export class LeastConnections<N extends Candidate = Candidate> implements Algorithm<N> {
  readonly name = 'least-connections' as const
  #nodes: readonly N[] = []
  #current = new Float64Array(0)
  #tied = new Uint8Array(0)

  reset (nodes: readonly N[]): void {
    this.#nodes = nodes
    this.#current = new Float64Array(nodes.length)
    this.#tied = new Uint8Array(nodes.length)
  }

  pick (_ctx: PickContext, avoid?: ReadonlySet<N> | null): N | undefined {
    const nodes = this.#nodes
    const tied = this.#tied
    let best: N | undefined
    let ties = 0
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as N
      tied[i] = 0
      if (avoid != null && avoid.has(node)) continue
      // Compare active/weight without division: a.active * b.weight vs b.active * a.weight.
      const cmp = best === undefined ? -1 : node.active * best.weight - best.active * node.weight
      if (cmp < 0) {
        best = node
        for (let j = 0; j < i; j++) tied[j] = 0
        tied[i] = 1
        ties = 1
      } else if (cmp === 0) {
        tied[i] = 1
        ties++
      }
    }
    if (ties <= 1) return best
    return pickSmooth(nodes, this.#current, avoid, tied)
  }
}
