/**
 * `createBalancer`: wires the pool, the engine, health checks, the proxy, the frontend and the
 * admin API together, and owns the balancer's lifecycle: listen, reload, graceful close.
 */
import { performance } from 'node:perf_hooks'
import type { Balancer, BalancerOptions, ListenInfo } from './api.js'
import { AdminServer } from './admin/server.js'
import { BalancerMetrics } from './admin/metrics.js'
import type { Registry } from 'prom-client'
import type { StatusPageInfo } from './admin/status-page.js'
import { Timeline, type StatsReport } from './admin/timeline.js'
import { parseNodeUpdate, resolveConfig } from './config/resolve.js'
import type { BalancerConfig, NodeUpdate, ResolvedConfig } from './config/types.js'
import { createEngine } from './engines/index.js'
import type { Engine, EngineOptions } from './engines/engine.js'
import { TetherBalancerError } from './errors.js'
import { describeListen, type Frontend } from './frontend/frontend.js'
import { Http1Frontend } from './frontend/http1.js'
import { HttpsRedirect } from './frontend/redirect.js'
import { TlsFrontend } from './frontend/tls.js'
import { ActiveHealthChecker, type CheckResult } from './health/active.js'
import { createLogger, type Logger } from './log.js'
import { TrustedProxies } from './net/address.js'
import type { UpstreamNode } from './pool/node.js'
import { Pool, type NodeTransition } from './pool/pool.js'
import type { NodeSnapshot } from './pool/snapshot.js'
import type { ProxyRuntime } from './proxy/context.js'
import { combineEvents } from './proxy/events.js'
import { ReverseProxy } from './proxy/reverse-proxy.js'
import { StickyCodec } from './sticky.js'
import { shareOf } from './cluster/share.js'

function engineOptions (config: ResolvedConfig): EngineOptions {
  return {
    connectTimeout: config.timeouts.connect,
    responseTimeout: config.timeouts.response,
    maxIdle: config.keepAlive.maxIdle,
    keepAliveTimeout: config.keepAlive.timeout
  }
}

/**
 * How a `node:cluster` worker runs its balancer (the `tether-balancer` command with several
 * workers; see `cluster/`). The supervisor owns what must be one for the whole balancer: it
 * runs the active health checks, serves the admin API and keeps the sticky secret.
 *
 * @example
 * ```ts
 * const role: WorkerRole = { stickySecret, workers: 4, reportFailure: (node, reason) => process.send?.({ t: 'tether:failure', node, reason }) }
 * ```
 */
export interface WorkerRole {
  /** The sticky secret every worker uses when the configuration gives none. */
  readonly stickySecret: string
  /** How many workers share the caps (`cluster/share.ts`). */
  readonly workers: number
  /** Where a failed attempt goes: the supervisor judges passive health for every worker. */
  readonly reportFailure: (node: string, reason: string) => void
}

/**
 * A balancer inside a cluster worker: what the supervisor needs of it besides `Balancer`.
 *
 * @example
 * ```ts
 * const member = createWorkerBalancer(raw, { ticketSecret }, { stickySecret })
 * member.applyCheck('app-1', result) // the supervisor's verdict on app-1
 * ```
 */
export interface ClusterMember extends Balancer {
  /** Apply the supervisor's verdict on a node: a result that flips it, or confirms it. */
  applyCheck (name: string, result: CheckResult): void
  /** Apply the supervisor's passive verdict: `name` is out for `ms`. */
  applyHold (name: string, ms: number, reason: string): void
  /** This worker's timeline, for the supervisor to merge. */
  stats (since: number | null): StatsReport
  /** This worker's metrics, for prom-client's cluster aggregation. */
  readonly registry: Registry
}

/**
 * In a worker, the supervisor sends a node's health as it decided it (after its own rise and
 * fall), so the worker's pool takes one result as the verdict.
 */
function poolConfig (config: ResolvedConfig, role: WorkerRole | null): ResolvedConfig {
  return role === null ? config : { ...config, healthCheck: { ...config.healthCheck, rise: 1, fall: 1 } }
}

function sameJson (a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

class BalancerImpl implements ClusterMember {
  config: ResolvedConfig
  readonly log: Logger
  readonly #pool: Pool
  readonly #metrics: BalancerMetrics
  /** The status page's last 15 minutes, one point per second. */
  readonly #timeline = new Timeline(900)
  readonly #ownLogger: boolean
  readonly #proxy: ReverseProxy
  #engine: Engine
  readonly #health: ActiveHealthChecker<UpstreamNode>
  readonly #frontend: Frontend
  #admin: AdminServer | null = null
  #redirect: HttpsRedirect | null = null
  readonly #startedAt = new Date()
  #listening: ListenInfo | null = null
  #closePromise: Promise<void> | null = null
  /** Set in a cluster worker: no health checks nor admin API of its own. */
  readonly #role: WorkerRole | null

  constructor (config: ResolvedConfig, options: BalancerOptions, role: WorkerRole | null = null) {
    this.config = config
    this.#role = role
    this.#ownLogger = options.logger === undefined
    this.log = options.logger ?? createLogger(config.log.level)
    this.#pool = new Pool(poolConfig(config, role), (t) => this.#onTransition(t), (outcome, ms) => this.#metrics.waited(outcome, ms))
    this.#metrics = new BalancerMetrics(() => this.#pool.nodes, (node) => {
      if (node === null) return this.#pool.queued(null)
      const known = this.#pool.get(node.name)
      return known === undefined ? 0 : this.#pool.queued(known)
    })
    this.#engine = createEngine(config.engine, engineOptions(config))
    const sticky = config.sticky.enabled ? new StickyCodec(config.sticky) : null
    this.#pool.apply(poolConfig(config, role), sticky)
    if (role !== null) this.#pool.reportFailuresTo(role.reportFailure)
    this.#proxy = new ReverseProxy(this.#makeRuntime(config, sticky), this.log, combineEvents(this.#metrics, this.#timeline))
    this.#health = new ActiveHealthChecker<UpstreamNode>(config.healthCheck, (node, result) => this.#pool.reportCheck(node, result))
    const tls = config.listen.tls
    this.#frontend = tls === null ? new Http1Frontend(this.#proxy, config.timeouts, config.limits) : new TlsFrontend(this.#proxy, config.timeouts, config.limits, tls, options.ticketSecret === undefined ? { log: this.log } : { log: this.log, ticketSecret: options.ticketSecret })
    if (config.sticky.enabled && config.sticky.secretGenerated && role === null) {
      this.log.warn('sticky.secret is not set: using a random one, so sticky cookies will not survive a restart')
    }
    this.#warnUnverified(config)
  }

  /** `verify: false` is allowed only when asked for, and never silently. */
  #warnUnverified (config: ResolvedConfig): void {
    const unverified = config.upstreams.filter((u) => u.tls !== null && !u.tls.verify).map((u) => u.name)
    if (unverified.length > 0) this.log.warn({ nodes: unverified }, 'TLS certificates of these upstream nodes are NOT verified (verify: false): their traffic can be intercepted')
  }

  async metrics (): Promise<string> {
    return await this.#metrics.registry.metrics()
  }

  get registry (): Registry { return this.#metrics.registry }

  stats (since: number | null): StatsReport {
    return this.#timeline.report(this.#pool.nodes.map((n) => n.name), since)
  }

  applyHold (name: string, ms: number, reason: string): void {
    this.#pool.hold(name, ms, reason)
  }

  applyCheck (name: string, result: CheckResult): void {
    const node = this.#pool.get(name)
    if (node !== undefined) this.#pool.reportCheck(node, result)
  }

  #makeRuntime (config: ResolvedConfig, sticky: StickyCodec | null): ProxyRuntime {
    return {
      pool: this.#pool,
      engine: this.#engine,
      sticky,
      cookieName: sticky === null ? '' : config.sticky.cookie,
      trusted: new TrustedProxies(config.trustedProxies),
      retries: config.retries,
      perTryTimeout: config.timeouts.perTry,
      accessLog: config.log.accessLog,
      hashesClients: config.algorithm === 'ip-hash',
      maxHeaderLines: config.limits.headerLines
    }
  }

  #onTransition (t: NodeTransition): void {
    this.#metrics?.transition(t)
    const fields = { node: t.node, change: t.field, from: t.from, to: t.to, reason: t.reason }
    if (t.field === 'health' && t.to === 'down') this.log.warn(fields, `node ${t.node} is down`)
    else this.log.info(fields, `node ${t.node} ${t.field}: ${t.from} -> ${t.to}`)
  }

  async listen (): Promise<ListenInfo> {
    if (this.#proxy.closing) throw new TetherBalancerError('TETHER_ERR_NOT_LISTENING')
    if (this.#listening !== null) return this.#listening
    const address = this.config.listen
    const port = await this.#frontend.listen(address)
    const redirectAt = address.tls?.redirectHttp ?? null
    let redirectPort: number | undefined
    if (redirectAt !== null) {
      this.#redirect = new HttpsRedirect(() => port)
      try {
        redirectPort = await this.#redirect.listen(redirectAt)
      } catch (err) {
        await this.#frontend.stop()
        throw err
      }
    }
    let adminPort: number | undefined
    if (this.config.admin !== null && this.#role === null) {
      this.#admin = new AdminServer({
        nodes: () => this.nodes(),
        setNode: (name, update) => this.setNode(name, update),
        metrics: async () => ({ contentType: this.#metrics.registry.contentType, body: await this.#metrics.registry.metrics() }),
        settings: () => this.config.admin ?? { listen: { host: '127.0.0.1', port: 0 }, token: null, allowedHosts: [] },
        pageInfo: () => this.#pageInfo(),
        stats: (since) => this.#timeline.report(this.#pool.nodes.map((n) => n.name), since),
        log: this.log
      })
      try {
        adminPort = await this.#admin.listen(this.config.admin.listen)
      } catch (err) {
        await this.#frontend.stop()
        throw err
      }
      const host = this.config.admin.listen.host
      if (this.config.admin.token === null && host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
        this.log.warn({ admin: describeListen(this.config.admin.listen) }, 'the admin API listens beyond loopback without a token')
      }
    }
    if (this.#role === null) this.#health.sync(this.#pool.nodes, this.config.healthCheck)
    this.#listening = { port, ...(adminPort === undefined ? {} : { adminPort }), ...(redirectPort === undefined ? {} : { redirectPort }) }
    this.log.info({ listen: describeListen({ host: address.host, port }), tls: address.tls !== null, admin: adminPort, engine: this.#engine.name, algorithm: this.config.algorithm, nodes: this.#pool.nodes.length }, this.#role === null ? 'balancer listening' : 'worker listening')
    return this.#listening
  }

  #pageInfo (): StatusPageInfo {
    return {
      algorithm: this.config.algorithm,
      engine: this.#engine.name,
      sticky: this.config.sticky.enabled,
      listen: describeListen({ host: this.config.listen.host, port: this.#listening?.port ?? this.config.listen.port }),
      startedAt: this.#startedAt
    }
  }

  reload (input: BalancerConfig, options: { configFile?: string } = {}): void {
    if (this.#proxy.closing) throw new TetherBalancerError('TETHER_ERR_NOT_LISTENING')
    const previous = this.config
    const secret = this.#role?.stickySecret ?? (previous.sticky.secretGenerated ? previous.sticky.secrets[0] : undefined)
    const resolved = resolveConfig(input, { generatedSecret: secret, ...(options.configFile === undefined ? {} : { file: options.configFile }) })
    const config = this.#role === null ? resolved : shareOf(resolved, this.#role.workers)
    const where = (l: ResolvedConfig['listen']): unknown => ({ host: l.host, port: l.port, tls: l.tls !== null, redirect: l.tls?.redirectHttp ?? null })
    if (!sameJson(where(config.listen), where(previous.listen)) && this.#listening !== null) {
      this.log.warn({ from: describeListen(previous.listen), to: describeListen(config.listen) }, 'listen address, TLS on/off and redirect changes need a restart; keeping the current ones')
    }
    // Certificates are read again on every reload (renewed files keep their paths); a bad one
    // keeps the previous set, and the rest of the configuration still applies.
    let tls = previous.listen.tls
    if (tls !== null && config.listen.tls !== null && this.#frontend.reloadTls?.(config.listen.tls) === true) tls = config.listen.tls
    if (!sameJson(config.admin?.listen, previous.admin?.listen) && this.#listening !== null) {
      this.log.warn('admin.listen changes need a restart; keeping the current admin address (token and allowed hosts do apply)')
    }
    const listen = this.#listening === null && tls === config.listen.tls ? config.listen : { ...previous.listen, tls }
    const admin = config.admin !== null && previous.admin !== null && this.#listening !== null ? { ...config.admin, listen: previous.admin.listen } : config.admin
    this.config = { ...config, listen, admin }

    if (config.engine !== previous.engine || !sameJson(engineOptions(config), engineOptions(previous))) {
      const old = this.#engine
      this.#engine = createEngine(config.engine, engineOptions(config))
      old.retire(config.timeouts.shutdown + config.timeouts.response)
    }
    const current = this.#proxy.runtime.sticky
    const sticky = !config.sticky.enabled
      ? null
      : sameJson(config.sticky, previous.sticky) && current !== null ? current : new StickyCodec(config.sticky)
    const gone = this.#pool.apply(poolConfig(config, this.#role), sticky)
    for (const node of gone) this.#engine.release(node)
    this.#proxy.runtime = this.#makeRuntime(config, sticky)
    if (this.#listening !== null && this.#role === null) this.#health.sync(this.#pool.nodes, config.healthCheck)
    this.#frontend.configure(config.timeouts, config.limits)
    if (this.#ownLogger && this.log.level !== config.log.level) this.log.level = config.log.level
    this.#warnUnverified(config)
    this.log.info({ nodes: this.#pool.nodes.map((n) => n.name), engine: this.#engine.name, algorithm: config.algorithm }, 'configuration reloaded')
  }

  nodes (): NodeSnapshot[] {
    return this.#pool.snapshot()
  }

  setNode (name: string, update: NodeUpdate): NodeSnapshot {
    if (this.#pool.get(name) === undefined) throw new TetherBalancerError('TETHER_ERR_UNKNOWN_NODE', `no upstream node is named ${JSON.stringify(name)}`)
    const { state, weight } = parseNodeUpdate(update)
    if (state !== undefined) this.#pool.setState(name, state, 'admin')
    if (weight !== undefined) this.#pool.setWeight(name, weight, 'admin')
    const snapshot = this.#pool.snapshot().find((n) => n.name === name)
    if (snapshot === undefined) throw new TetherBalancerError('TETHER_ERR_UNKNOWN_NODE')
    return snapshot
  }

  close (): Promise<void> {
    if (this.#closePromise === null) this.#closePromise = this.#close()
    return this.#closePromise
  }

  async #close (): Promise<void> {
    const proxy = this.#proxy
    proxy.shutdown()
    const started = this.#listening !== null
    this.log.info({ inFlight: proxy.inFlight, tunnels: proxy.tunnels.size }, 'balancer closing')
    this.#health.stop()
    const deadline = performance.now() + this.config.timeouts.shutdown
    const stopped = this.#frontend.stop()
    await proxy.drained(this.config.timeouts.shutdown)
    proxy.closeTunnels()
    // Idle keep-alive connections end by their keep-alive timeout; a request that comes on one
    // meanwhile is served with `Connection: close`. Whatever is still open at the deadline is cut.
    await untilOr(stopped, deadline - performance.now())
    this.#frontend.closeAll()
    await stopped
    if (this.#redirect !== null) await this.#redirect.close()
    await this.#engine.close()
    this.#pool.close()
    if (this.#admin !== null) await this.#admin.close()
    if (started) this.log.info('balancer closed')
  }
}

/** Wait for `promise`, at most `ms` (unref'd: a shutdown wait never keeps the process up). */
function untilOr (promise: Promise<void>, ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    timer.unref()
    promise.then(() => { clearTimeout(timer); resolve() }, () => { clearTimeout(timer); resolve() })
  })
}

/**
 * Create a balancer from a configuration (the same shape as the YAML/JSON file). Validates it
 * at run time too (a config read from a file is only cast to the type) and throws
 * `TETHER_ERR_CONFIG_INVALID`, naming each bad field and value, when it is wrong.
 *
 * @example
 * ```ts
 * import { createBalancer } from '@tether/balancer'
 *
 * const balancer = createBalancer({
 *   listen: 8080,
 *   upstreams: [{ url: 'http://127.0.0.1:3001', name: 'app-1' }, { url: 'http://127.0.0.1:3002', name: 'app-2' }],
 *   sticky: { secret: process.env.TETHER_STICKY_SECRET },
 *   healthCheck: { path: '/health', interval: '2s' },
 *   admin: { listen: 9090 }
 * })
 * const { port, adminPort } = await balancer.listen()
 * process.on('SIGTERM', () => { balancer.close().then(() => process.exit(0)) })
 * ```
 */
export function createBalancer (config: BalancerConfig, options: BalancerOptions = {}): Balancer {
  const resolved = resolveConfig(config, options.configFile === undefined ? {} : { file: options.configFile })
  return new BalancerImpl(resolved, options)
}

/**
 * Create the balancer of one `node:cluster` worker: like {@link createBalancer}, but the
 * supervisor runs the health checks and the admin API, and gives the shared sticky secret.
 * Internal to the `tether-balancer` command.
 *
 * @example
 * ```ts
 * const member = createWorkerBalancer(raw, { ticketSecret }, { stickySecret })
 * await member.listen()
 * ```
 */
export function createWorkerBalancer (config: BalancerConfig, options: BalancerOptions, role: WorkerRole): ClusterMember {
  const resolved = resolveConfig(config, { generatedSecret: role.stickySecret, ...(options.configFile === undefined ? {} : { file: options.configFile }) })
  return new BalancerImpl(shareOf(resolved, role.workers), options, role)
}
