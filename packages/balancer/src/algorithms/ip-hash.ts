/**
 * Source-IP hash by weighted rendezvous hashing (highest random weight, Thaler & Ravishankar
 * 1996; the weighted form of Schindelhauer & Schomaker). Every node scores every client key and
 * the best score wins. Adding a node to ten moves only the clients the new node now wins, about
 * 1/11 of them; removing one moves only that node's clients. Modulo hashing moves nearly all.
 *
 * Chosen over a ketama ring or a Maglev table because its disruption is minimal by construction
 * (Maglev moves a few percent more), weights are exact, there is no table to rebuild on every
 * health flap, and a retry's next choice is simply the second-best score. The lookup costs one
 * mix per node: see docs/benchmarks.md for its measured speed and moved share.
 *
 * Bounded loads (Mirrokni, Thorup and Zadimoghaddam 2018, "Consistent hashing with bounded
 * loads"; HAProxy's `hash-balance-factor`): with a factor f > 0, no node takes more than
 * ceil(f × (in flight + 1) / nodes) requests at once. A client whose node is at that bound goes
 * to its next-best node by score, and comes home as soon as its node is below the bound again:
 * many users behind one NAT address cannot pile onto one node. The ranking is still the
 * client's own, so the spill is as consistent as the hash.
 */
import type { Algorithm, Candidate, PickContext } from './algorithm.js'

/** FNV-1a, 32-bit, over UTF-16 code units (client keys are ASCII). */
export function fnv1a32 (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** MurmurHash3's finaliser: a bijective avalanche mix of 32 bits. */
export function fmix32 (value: number): number {
  let h = value
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const TWO_32 = 4294967296

/**
 * Weighted rendezvous hashing on the client key.
 *
 * @example
 * ```ts
 * const hash = new IpHash()
 * hash.reset([{ name: 'a', weight: 1, active: 0 }, { name: 'b', weight: 1, active: 0 }])
 * hash.pick({ clientKey: '203.0.113.9' }) === hash.pick({ clientKey: '203.0.113.9' }) // true
 * ```
 */
export class IpHash<N extends Candidate = Candidate> implements Algorithm<N> {
  readonly name = 'ip-hash' as const
  /** The bound as a multiple of the average load; 0: no bound. */
  readonly #factor: number

  /** @param balanceFactor bound each node's load to this multiple of the average (HAProxy's hash-balance-factor / 100); 0 turns it off */
  constructor (balanceFactor = 0) {
    this.#factor = balanceFactor
  }

  #nodes: readonly N[] = []
  #seeds = new Uint32Array(0)
  #weights = new Float64Array(0)
  #uniform = true

  reset (nodes: readonly N[]): void {
    this.#nodes = nodes
    // Seeds come from names, not positions, so order and membership changes move nobody else.
    this.#seeds = Uint32Array.from(nodes, (n) => fmix32(fnv1a32(n.name)))
    this.#weights = Float64Array.from(nodes, (n) => n.weight)
    this.#uniform = nodes.every((n) => n.weight === nodes[0]?.weight)
  }

  pick (ctx: PickContext, avoid?: ReadonlySet<N> | null): N | undefined {
    const key = fnv1a32(ctx.clientKey)
    const nodes = this.#nodes
    const cap = this.#factor > 0 ? this.#cap(avoid) : Infinity
    let best = -1
    let bestScore = -Infinity
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as N
      if ((avoid != null && avoid.has(node)) || node.active >= cap) continue
      const x = fmix32(key ^ (this.#seeds[i] as number))
      // Equal weights: the raw hash orders nodes exactly as the weighted score would, without a log.
      const score = this.#uniform ? x : (this.#weights[i] as number) / -Math.log((x + 0.5) / TWO_32)
      if (score > bestScore) { bestScore = score; best = i }
    }
    return best === -1 ? undefined : nodes[best]
  }

  /**
   * The most requests a node may hold: ceil(factor × (in flight + this one) / nodes). Some node
   * is always below it (the loads cannot all reach a bound above their average), so the
   * bound never leaves a request without a node.
   */
  #cap (avoid: ReadonlySet<N> | null | undefined): number {
    let total = 0
    let count = 0
    for (const node of this.#nodes) {
      if (avoid != null && avoid.has(node)) continue
      total += node.active
      count++
    }
    return count === 0 ? Infinity : Math.ceil(this.#factor * (total + 1) / count)
  }
}
