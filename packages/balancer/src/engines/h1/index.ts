/**
 * The h1 engine: HTTP/1.1 to upstreams over plain `node:net` sockets, a LIFO stack of idle
 * keep-alive connections per node (`connection.ts`), exchanges that write a request as one
 * string (`exchange.ts`), and the strict incremental parser (`parser.ts`, `head.ts`).
 *
 * Why not undici or `http.request`: on the benchmark machine both spent more time in generic
 * client machinery (request objects, header validation, per-header callbacks across the wasm
 * boundary, stream plumbing) than in the proxying itself. Here a request costs one string and
 * one socket write, and a response one latin1 decode of the head; bodies pass as subarrays.
 * Measured in docs/benchmarks.md.
 */
import { performance } from 'node:perf_hooks'
import type { Engine, EngineOptions, ForwardRequest, ResponseSink, UpgradeSink, UpstreamExchange, UpstreamTarget } from '../engine.js'
import { engineClosed } from '../wire.js'
import { Connection, NodeConnections, type ConnectionOwner } from './connection.js'
import { Exchange } from './exchange.js'
import { upgradeOverH1 } from './upgrade.js'

/**
 * The h1 engine.
 *
 * @example
 * ```ts
 * const engine = new H1Engine({ connectTimeout: 3000, responseTimeout: 60000, maxIdle: 128, keepAliveTimeout: 4000 })
 * ```
 */
export class H1Engine implements Engine, ConnectionOwner {
  readonly name = 'h1' as const
  readonly options: EngineOptions
  closed = false
  readonly #nodes = new Map<UpstreamTarget, NodeConnections>()
  #sweeper: NodeJS.Timeout | null = null

  constructor (options: EngineOptions) {
    this.options = options
  }

  request (target: UpstreamTarget, request: ForwardRequest, sink: ResponseSink): UpstreamExchange {
    const ex = new Exchange(request, sink)
    if (this.closed) {
      queueMicrotask(() => ex.fail(engineClosed()))
      return ex
    }
    let node = this.#nodes.get(target)
    if (node === undefined) {
      node = new NodeConnections(target, this)
      this.#nodes.set(target, node)
    }
    const conn = node.takeIdle()
    if (conn !== undefined) conn.attach(ex)
    else ex.conn = new Connection(node, ex)
    return ex
  }

  upgrade (target: UpstreamTarget, request: ForwardRequest, protocol: string, sink: UpgradeSink): void {
    upgradeOverH1(this.options, target, request, protocol, sink)
  }

  release (target: UpstreamTarget): void {
    const node = this.#nodes.get(target)
    if (node === undefined) return
    node.released = true
    for (const conn of [...node.idle]) conn.destroy()
    this.#nodes.delete(target)
  }

  retire (graceMs: number): void {
    for (const target of [...this.#nodes.keys()]) this.release(target)
    setTimeout(() => { this.close().catch(() => {}) }, graceMs).unref()
  }

  sweepSoon (): void {
    if (this.#sweeper !== null || this.closed) return
    const every = Math.max(100, Math.min(1000, Math.floor(this.options.keepAliveTimeout / 4)))
    this.#sweeper = setInterval(() => {
      let idle = 0
      const now = performance.now()
      for (const node of this.#nodes.values()) idle += node.sweep(now)
      if (idle === 0 && this.#sweeper !== null) { clearInterval(this.#sweeper); this.#sweeper = null }
    }, every)
    this.#sweeper.unref()
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    this.#sweeper = null
    for (const node of this.#nodes.values()) {
      for (const conn of [...node.all]) conn.destroy()
    }
    this.#nodes.clear()
  }
}
