/**
 * The caps that protect the nodes, divided among the workers. Each worker keeps its own count
 * of requests in flight (sharing a counter across processes on every request would cost a
 * round trip to the supervisor), so a cap of 100 on a node would let `workers` × 100 through
 * if each worker applied it whole. HAProxy shares `maxconn` across its threads; dividing it is
 * the honest equivalent across processes: each worker may send a node `floor(maxConn / workers)`
 * requests at once (at least 1), so together they never exceed `maxConn` once `maxConn` is at
 * least `workers`. The price: a worker at its share queues even while another has room.
 * `limits.connections` is divided the same way; `queue.size` is rounded up per worker (a queue
 * of 1 stays a queue).
 */
import type { ResolvedConfig } from '../config/types.js'

function part (total: number, workers: number): number {
  // 0 means "no limit" and stays so; a positive cap never becomes 0 (which would lift it).
  return total === 0 ? 0 : Math.max(1, Math.floor(total / workers))
}

/**
 * One worker's share of `config`'s caps.
 *
 * @example
 * ```ts
 * shareOf(config, 4).upstreams[0].maxConn // 25 when the node's maxConn is 100
 * ```
 */
export function shareOf (config: ResolvedConfig, workers: number): ResolvedConfig {
  if (workers <= 1) return config
  return {
    ...config,
    upstreams: config.upstreams.map((u) => ({ ...u, maxConn: part(u.maxConn, workers) })),
    limits: { ...config.limits, connections: part(config.limits.connections, workers) },
    queue: { ...config.queue, size: config.queue.size === 0 ? 0 : Math.ceil(config.queue.size / workers) }
  }
}
