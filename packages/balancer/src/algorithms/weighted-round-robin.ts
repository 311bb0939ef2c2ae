/**
 * Smooth weighted round-robin, nginx's algorithm (`ngx_http_upstream_get_peer`): every pick adds
 * each node's weight to its running score, takes the highest score and subtracts the total from
 * it. Weights {5,1,1} give a a b a c a a: the heavy node's turns are spread out, not bunched.
 */
import type { Algorithm, Candidate, PickContext } from './algorithm.js'

/**
 * Smooth weighted round-robin.
 *
 * @example
 * ```ts
 * const wrr = new WeightedRoundRobin()
 * wrr.reset([{ name: 'a', weight: 5, active: 0 }, { name: 'b', weight: 1, active: 0 }, { name: 'c', weight: 1, active: 0 }])
 * Array.from({ length: 7 }, () => wrr.pick({ clientKey: '' })?.name).join(' ') // 'a a b a c a a'
 * ```
 */
export class WeightedRoundRobin<N extends Candidate = Candidate> implements Algorithm<N> {
  readonly name = 'weighted-round-robin' as const
  #nodes: readonly N[] = []
  // Running scores, index-aligned with #nodes; a typed array keeps the hot loop free of boxing.
  #current = new Float64Array(0)

  reset (nodes: readonly N[]): void {
    const previous = new Map(this.#nodes.map((n, i) => [n, this.#current[i] ?? 0]))
    this.#nodes = nodes
    this.#current = new Float64Array(nodes.length)
    // Keep the scores of nodes that stay, so a health flap elsewhere does not restart the cycle.
    nodes.forEach((n, i) => { this.#current[i] = previous.get(n) ?? 0 })
  }

  pick (_ctx: PickContext, avoid?: ReadonlySet<N> | null): N | undefined {
    return pickSmooth(this.#nodes, this.#current, avoid, null)
  }
}

/**
 * One step of smooth WRR over `nodes`, restricted to those with `only[i]` set (when given) and
 * not in `avoid`. Shared with least-connections, which uses it to break ties.
 */
export function pickSmooth<N extends Candidate> (nodes: readonly N[], current: Float64Array, avoid: ReadonlySet<N> | null | undefined, only: Uint8Array | null): N | undefined {
  let best = -1
  let total = 0
  for (let i = 0; i < nodes.length; i++) {
    if (only !== null && only[i] === 0) continue
    const node = nodes[i] as N
    if (avoid != null && avoid.has(node)) continue
    current[i] = (current[i] as number) + node.weight
    total += node.weight
    if (best === -1 || (current[i] as number) > (current[best] as number)) best = i
  }
  if (best === -1) return undefined
  current[best] = (current[best] as number) - total
  return nodes[best]
}
