/**
 * Prometheus metrics on the balancer's own prom-client Registry (never the global one, so
 * that an app embedding the balancer keeps its metrics apart). They hear the proxy through
 * its `ProxyEvents` interface and nothing else changes them. Per-node counts live on the nodes
 * (the pool's leases keep them) and are read at scrape time; the per-request events bump plain
 * numbers, and only the latency histogram does more.
 *
 * With several workers (`cluster/`), the supervisor sums the workers' registries with
 * prom-client's `AggregatorRegistry`: counters and in-flight gauges add up; what every worker
 * holds the same (node health, weight, state: the supervisor's) is taken from the first, and
 * node changes, which every worker counts, by the largest count.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { NODE_STATES } from '../config/schema.js'
import type { ErrorCode } from '../errors.js'
import type { NodeStats } from '../pool/node.js'
import type { NodeTransition } from '../pool/pool.js'
import type { FinishedRequest, MoveCause, ProxyEvents, Route } from '../proxy/events.js'

const PREFIX = 'tether_balancer_'

/**
 * The balancer's metrics.
 *
 * @example
 * ```ts
 * const metrics = new BalancerMetrics(() => pool.nodes)
 * await metrics.registry.metrics() // Prometheus text format
 * ```
 */
export class BalancerMetrics implements ProxyEvents {
  readonly registry = new Registry()
  readonly #routes: Record<Route, number> = { sticky: 0, new: 0, moved: 0 }
  #retries = 0
  readonly #errors = new Map<ErrorCode, number>()
  /** Per node: answers by status class (index 0: none, the client went away), and body bytes. */
  readonly #answers = new Map<string, { classes: number[], bytes: number, hit: number, miss: number }>()
  readonly #moves = new Map<MoveCause, number>()
  readonly #latency: Histogram<'node'>
  readonly #perTry: Counter<'node'>
  readonly #transitions: Counter<'node' | 'change'>
  /** Series read at scrape time through their `collect`; kept so that one object owns them. */
  readonly #collected: Array<Counter<string> | Gauge<string>> = []

  readonly #queueWait: Histogram<'outcome'>

  constructor (nodes: () => readonly NodeStats[], queued: (node: NodeStats | null) => number = () => 0) {
    const registers = [this.registry]
    const perNode = (read: (n: NodeStats) => number) => function (this: Counter<'node'> | Gauge<'node'>): void {
      this.reset()
      for (const n of nodes()) (this as Gauge<'node'>).set(n.labels, read(n))
    }
    const counterOf = (read: (n: NodeStats) => number) => function (this: Counter<'node'>): void {
      this.reset()
      for (const n of nodes()) this.inc(n.labels, read(n))
    }
    this.#collected.push(new Counter({ name: `${PREFIX}requests_total`, help: 'Requests (attempts) sent to each upstream node.', labelNames: ['node'], registers, collect: counterOf((n) => n.requests) }))
    this.#collected.push(new Counter({ name: `${PREFIX}errors_total`, help: 'Failed attempts per node: connect, reset, timeout or invalid response.', labelNames: ['node'], registers, collect: counterOf((n) => n.errors) }))
    this.#collected.push(new Gauge({ name: `${PREFIX}active_connections`, help: 'Requests and WebSocket tunnels in flight to each node.', labelNames: ['node'], registers, collect: perNode((n) => n.active) }))
    this.#collected.push(new Gauge({ name: `${PREFIX}node_up`, aggregator: 'first', help: '1 when the node is healthy (active and passive checks), else 0.', labelNames: ['node'], registers, collect: perNode((n) => n.health(performance.now()) === 'up' ? 1 : 0) }))
    this.#collected.push(new Gauge({ name: `${PREFIX}node_weight`, aggregator: 'first', help: 'Current weight of each node.', labelNames: ['node'], registers, collect: perNode((n) => n.weight) }))
    this.#collected.push(new Gauge({
      name: `${PREFIX}node_state`,
      help: 'Administrative state of each node: 1 for the current state.',
      aggregator: 'first',
      labelNames: ['node', 'state'],
      registers,
      collect (this: Gauge<'node' | 'state'>) {
        this.reset()
        for (const n of nodes()) for (const state of NODE_STATES) this.set({ node: n.name, state }, n.state === state ? 1 : 0)
      }
    }))
    this.#collected.push(new Gauge({
      name: `${PREFIX}queue_length`,
      help: 'Requests waiting for a slot on a node at its maxConn: per node (sticky clients), and node="" for those with no node yet.',
      labelNames: ['node'],
      registers,
      collect (this: Gauge<'node'>) {
        this.reset()
        for (const n of nodes()) this.set(n.labels, queued(n))
        this.set({ node: '' }, queued(null))
      }
    }))
    this.#queueWait = new Histogram({
      name: `${PREFIX}queue_wait_seconds`,
      help: 'Time requests waited in the queue, by how the wait ended: granted (a slot) or timeout (503).',
      labelNames: ['outcome'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers
    })
    this.#transitions = new Counter({ name: `${PREFIX}node_changes_total`, help: 'Changes of node health, state, weight or membership.', labelNames: ['node', 'change'], registers, aggregator: 'max' })
    this.#latency = new Histogram({
      name: `${PREFIX}upstream_latency_seconds`,
      help: 'Time from sending a request to a node to receiving its response headers.',
      labelNames: ['node'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers
    })
    this.#perTry = new Counter({ name: `${PREFIX}per_try_timeouts_total`, help: 'Attempts abandoned for no response headers within timeouts.perTry (then retried on another node when possible).', labelNames: ['node'], registers })
    const routes = this.#routes
    this.#collected.push(new Counter({
      name: `${PREFIX}routes_total`,
      help: 'How requests found their node: sticky cookie, new (algorithm), or moved (failover).',
      labelNames: ['route'],
      registers,
      collect (this: Counter<'route'>) {
        this.reset()
        for (const route of ['sticky', 'new', 'moved'] as const) this.inc({ route }, routes[route])
      }
    }))
    const retries = (): number => this.#retries
    this.#collected.push(new Counter({
      name: `${PREFIX}retries_total`,
      help: 'Requests retried on another node after a safe-to-retry failure.',
      registers,
      collect (this: Counter) { this.reset(); this.inc(retries()) }
    }))
    const errors = this.#errors
    this.#collected.push(new Counter({
      name: `${PREFIX}error_responses_total`,
      help: 'Error answers the balancer itself sent, by code.',
      labelNames: ['code'],
      registers,
      collect (this: Counter<'code'>) {
        this.reset()
        for (const [code, n] of errors) this.inc({ code }, n)
      }
    }))
    const answers = this.#answers
    this.#collected.push(new Counter({
      name: `${PREFIX}responses_total`,
      help: 'Answers sent to clients, by the node of the last attempt and status class (1xx-5xx; none: the client went away first).',
      labelNames: ['node', 'class'],
      registers,
      collect (this: Counter<'node' | 'class'>) {
        this.reset()
        for (const [node, a] of answers) {
          a.classes.forEach((n, i) => { if (n > 0) this.inc({ node, class: i === 0 ? 'none' : `${i}xx` }, n) })
        }
      }
    }))
    this.#collected.push(new Counter({
      name: `${PREFIX}response_body_bytes_total`,
      help: 'Response body bytes sent to clients, by node.',
      labelNames: ['node'],
      registers,
      collect (this: Counter<'node'>) {
        this.reset()
        for (const [node, a] of answers) this.inc({ node }, a.bytes)
      }
    }))
    this.#collected.push(new Counter({
      name: `${PREFIX}near_cache_reads_total`,
      help: 'Session reads the app nodes reported in x-tether-cache, by node and result: hit (served by the node\'s near-cache) or miss (read from the store).',
      labelNames: ['node', 'result'],
      registers,
      collect (this: Counter<'node' | 'result'>) {
        this.reset()
        for (const [node, a] of answers) {
          if (a.hit > 0) this.inc({ node, result: 'hit' }, a.hit)
          if (a.miss > 0) this.inc({ node, result: 'miss' }, a.miss)
        }
      }
    }))
    const moves = this.#moves
    this.#collected.push(new Counter({
      name: `${PREFIX}session_moves_total`,
      help: 'Requests with a valid sticky cookie sent to another node, by cause (down, maint, drain, removed, backup, failed).',
      labelNames: ['cause'],
      registers,
      collect (this: Counter<'cause'>) {
        this.reset()
        for (const [cause, n] of moves) this.inc({ cause }, n)
      }
    }))
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX })
  }

  routed (route: Route): void {
    this.#routes[route]++
  }

  retried (): void {
    this.#retries++
  }

  perTryTimedOut (node: NodeStats): void {
    this.#perTry.inc(node.labels)
  }

  errorAnswered (code: ErrorCode): void {
    this.#errors.set(code, (this.#errors.get(code) ?? 0) + 1)
  }

  responseHead (node: NodeStats, ms: number): void {
    this.#latency.observe(node.labels, ms / 1000)
  }

  moved (cause: MoveCause): void {
    this.#moves.set(cause, (this.#moves.get(cause) ?? 0) + 1)
  }

  finished (r: FinishedRequest): void {
    const name = r.node ?? ''
    let a = this.#answers.get(name)
    if (a === undefined) { a = { classes: [0, 0, 0, 0, 0, 0], bytes: 0, hit: 0, miss: 0 }; this.#answers.set(name, a) }
    const cls = r.status >= 100 && r.status < 600 ? Math.floor(r.status / 100) : 0
    a.classes[cls] = (a.classes[cls] ?? 0) + 1
    a.bytes += r.bytesOut
    if (r.cache !== null) a[r.cache]++
  }

  /** A wait in the queue ended after `ms`. */
  waited (outcome: 'granted' | 'timeout', ms: number): void {
    this.#queueWait.observe({ outcome }, ms / 1000)
  }

  /** Count a node change. */
  transition (t: NodeTransition): void {
    this.#transitions.inc({ node: t.node, change: `${t.field}:${t.to}` })
  }
}
