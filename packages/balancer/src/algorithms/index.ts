/** The algorithm registry: a name from the config to a fresh instance. */
import type { AlgorithmName } from '../config/types.js'
import type { Algorithm, Candidate } from './algorithm.js'
import { IpHash } from './ip-hash.js'
import { LeastConnections } from './least-connections.js'
import { WeightedRoundRobin } from './weighted-round-robin.js'

export type { Algorithm, Candidate, PickContext } from './algorithm.js'
export { IpHash } from './ip-hash.js'
export { LeastConnections } from './least-connections.js'
export { WeightedRoundRobin } from './weighted-round-robin.js'

/**
 * A new instance of the named algorithm. Each tier of nodes (primaries, backups) gets its own,
 * since round-robin state is per tier.
 *
 * @example
 * ```ts
 * const lc = createAlgorithm('least-connections')
 * const natProof = createAlgorithm('ip-hash', { hashBalanceFactor: 1.5 })
 * ```
 */
export function createAlgorithm<N extends Candidate = Candidate> (name: AlgorithmName, options: { hashBalanceFactor?: number } = {}): Algorithm<N> {
  switch (name) {
    case 'weighted-round-robin': return new WeightedRoundRobin<N>()
    case 'least-connections': return new LeastConnections<N>()
    case 'ip-hash': return new IpHash<N>(options.hashBalanceFactor ?? 0)
  }
}
