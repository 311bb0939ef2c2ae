/**
 * `createBalancer`: wires the pool, the engine, health checks, the proxy and the admin API
 * together, and owns the balancer's lifecycle: listen, reload, graceful close.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { AdminServer } from './admin/server.js'
import { BalancerMetrics } from './admin/metrics.js'
import type { StatusPageInfo } from './admin/status-page.js'
import { resolveConfig, type ResolvedConfig, type ResolvedListen } from './config/resolve.js'
import type { BalancerConfig, NodeState } from './config/types.js'
import { createEngine } from './engines/index.js'
import type { Engine, EngineOptions } from './engines/engine.js'
import { TetherBalancerError, type ErrorCode } from './errors.js'
import { ActiveHealthChecker } from './health/active.js'
import { createLogger, type Logger } from './log.js'
import { TrustedProxies } from './net/address.js'
import { Pool, type NodeSnapshot, type NodeTransition } from './pool/pool.js'
import type { ProxyRuntime, ProxyShared } from './proxy/context.js'
import { HttpExchange, ProxyResponse } from './proxy/http.js'
import { respondErrorRaw } from './proxy/respond.js'
import { UpgradeExchange } from './proxy/upgrade.js'
import { StickyCodec } from './sticky.js'

/**
 * Options for {@link createBalancer} beyond the configuration itself.
 *
 * @example
 * ```ts
 * createBalancer(await loadConfigFile('lb.yaml'), { configFile: 'lb.yaml', logger: pino({ level: 'warn' }) })
 * ```
 */
export interface BalancerOptions {
  /** A pino logger to use. Default: JSON lines on stdout at `config.log.level`. */
  logger?: Logger
  /** The file the configuration came from, named in configuration errors. */
  configFile?: string
}

/**
 * Where the balancer listens, once `listen()` resolved.
 *
 * @example
 * ```ts
 * const { port, adminPort } = await balancer.listen()
 * ```
 */
export interface ListenInfo {
  readonly port: number
  /** The admin API's port, when it is enabled. */
  readonly adminPort?: number
}

/**
 * A node update, as the admin API takes it.
 *
 * @example
 * ```ts
 * balancer.setNode('app-1', { state: 'drain', weight: 2 })
 * ```
 */
export interface NodeUpdate {
  state?: NodeState
  weight?: number
}

/**
 * A running (or ready to run) balancer.
 *
 * @example
 * ```ts
 * const balancer = createBalancer({ listen: 0, upstreams: ['http://127.0.0.1:3001', 'http://127.0.0.1:3002'] })
 * const { port } = await balancer.listen()
 * balancer.setNode('127.0.0.1:3001', { state: 'drain' })
 * await balancer.close()
 * ```
 */
export interface Balancer {
  /** Start listening (and the admin API, and health checks). Port 0 picks a free port. */
  listen (): Promise<ListenInfo>
  /**
   * Stop accepting, let in-flight requests finish within `timeouts.shutdown`, then close every
   * connection (WebSocket tunnels included). Safe to call more than once.
   */
  close (): Promise<void>
  /**
   * Apply a new configuration without dropping connections. Throws `TETHER_ERR_CONFIG_INVALID`
   * and keeps the current configuration when the new one is invalid. `listen` and
   * `admin.listen` changes need a restart (a warning is logged).
   */
  reload (config: BalancerConfig, options?: { configFile?: string }): void
  /** Every node's state, health and counters. */
  nodes (): NodeSnapshot[]
  /** Change a node's state and/or weight at runtime. Throws `TETHER_ERR_UNKNOWN_NODE` or `TETHER_ERR_INVALID_NODE_UPDATE`. */
  setNode (name: string, update: NodeUpdate): NodeSnapshot
  /** Prometheus text for the balancer's own registry. */
  metrics (): Promise<string>
  /** The configuration in force, with defaults applied. */
  readonly config: ResolvedConfig
  /** The logger in use. */
  readonly log: Logger
}

function engineOptions (config: ResolvedConfig): EngineOptions {
  return {
    connectTimeout: config.timeouts.connect,
    responseTimeout: config.timeouts.response,
    maxIdle: config.keepAlive.maxIdle,
    keepAliveTimeout: config.keepAlive.timeout
  }
}

function sameJson (a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

function describeListen (l: ResolvedListen): string {
  return `${l.host === undefined ? '*' : l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`
}

/** What every exchange shares with the balancer, across reloads. */
class Shared implements ProxyShared {
  closing = false
  inFlight = 0
  onDrained: (() => void) | null = null
  constructor (readonly log: Logger, readonly metrics: BalancerMetrics) {}

  settled (): void {
    if (this.closing && this.inFlight === 0 && this.onDrained !== null) this.onDrained()
  }
}

class BalancerImpl implements Balancer {
  config: ResolvedConfig
  readonly log: Logger
  readonly pool: Pool
  readonly #shared: Shared
  readonly #metrics: BalancerMetrics
  readonly #ownLogger: boolean
  #runtime: ProxyRuntime
  #engine: Engine
  readonly #health: ActiveHealthChecker
  readonly #server: Server<typeof IncomingMessage, typeof ProxyResponse>
  #admin: AdminServer | null = null
  readonly #tunnels = new Set<Duplex>()
  readonly #startedAt = new Date()
  #listening: ListenInfo | null = null
  #closePromise: Promise<void> | null = null

  constructor (config: ResolvedConfig, options: BalancerOptions) {
    this.config = config
    this.#ownLogger = options.logger === undefined
    this.log = options.logger ?? createLogger(config.log.level)
    this.pool = new Pool(config, (t) => this.#onTransition(t))
    this.#metrics = new BalancerMetrics(() => this.pool.nodes)
    this.#shared = new Shared(this.log, this.#metrics)
    this.#engine = createEngine(config.engine, engineOptions(config))
    const sticky = config.sticky.enabled ? new StickyCodec(config.sticky) : null
    this.pool.apply(config, sticky)
    this.#runtime = this.#makeRuntime(config, sticky)
    this.#health = new ActiveHealthChecker(config.healthCheck, (node, result) => this.pool.reportCheck(node, result))
    if (config.sticky.enabled && config.sticky.secretGenerated) {
      this.log.warn('sticky.secret is not set: using a random one, so sticky cookies will not survive a restart')
    }

    this.#server = createServer({
      ServerResponse: ProxyResponse,
      headersTimeout: config.timeouts.clientHeaders,
      requestTimeout: config.timeouts.clientRequest,
      keepAliveTimeout: config.timeouts.clientKeepAlive,
      // Node checks header and request deadlines on this period; default 30 s is too coarse.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.timeouts.clientHeaders / 4))),
      noDelay: true
    }, (req, res) => {
      new HttpExchange(this.#runtime, this.#shared, req, res as ProxyResponse).start()
    })
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.#shared.closing) { respondErrorRaw(socket, 'TETHER_ERR_NO_UPSTREAM'); return }
      new UpgradeExchange(this.#runtime, this.#shared, req, socket, head, this.#tunnels).start()
    })
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#onClientError(err, socket))
  }

  async metrics (): Promise<string> {
    return await this.#metrics.registry.metrics()
  }

  #makeRuntime (config: ResolvedConfig, sticky: StickyCodec | null): ProxyRuntime {
    return {
      pool: this.pool,
      engine: this.#engine,
      sticky,
      cookieName: sticky === null ? '' : config.sticky.cookie,
      trusted: new TrustedProxies(config.trustedProxies),
      retries: config.retries,
      accessLog: config.log.accessLog,
      hashesClients: config.algorithm === 'ip-hash'
    }
  }

  #onTransition (t: NodeTransition): void {
    this.#metrics?.transition(t)
    const fields = { node: t.node, change: t.field, from: t.from, to: t.to, reason: t.reason }
    if (t.field === 'health' && t.to === 'down') this.log.warn(fields, `node ${t.node} is down`)
    else this.log.info(fields, `node ${t.node} ${t.field}: ${t.from} -> ${t.to}`)
  }

  #onClientError (err: NodeJS.ErrnoException, socket: Duplex): void {
    // A reset or a half-sent request from a client that left: nothing to answer, nothing to log.
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return }
    let code: ErrorCode = 'TETHER_ERR_CLIENT_BAD_REQUEST'
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') code = 'TETHER_ERR_CLIENT_HEADER_TIMEOUT'
    else if (err.code === 'HPE_HEADER_OVERFLOW') code = 'TETHER_ERR_CLIENT_HEADERS_TOO_LARGE'
    this.log.warn({ code, reason: err.code ?? err.message, peer: (socket as Socket).remoteAddress }, 'bad client request')
    this.#metrics.errorResponse(code)
    respondErrorRaw(socket, code)
  }

  async listen (): Promise<ListenInfo> {
    if (this.#shared.closing) throw new TetherBalancerError('TETHER_ERR_NOT_LISTENING')
    if (this.#listening !== null) return this.#listening
    const address = this.config.listen
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new TetherBalancerError('TETHER_ERR_LISTEN', `cannot listen on ${describeListen(address)}: ${err.code ?? err.message}`, { cause: err }))
      }
      this.#server.once('error', onError)
      this.#server.listen(address.port, address.host, () => {
        this.#server.off('error', onError)
        resolve()
      })
    })
    const bound = this.#server.address()
    const port = typeof bound === 'object' && bound !== null ? bound.port : address.port
    let adminPort: number | undefined
    if (this.config.admin !== null) {
      this.#admin = new AdminServer({
        nodes: () => this.nodes(),
        setNode: (name, update) => this.setNode(name, update),
        metrics: async () => ({ contentType: this.#metrics.registry.contentType, body: await this.#metrics.registry.metrics() }),
        settings: () => this.config.admin ?? { listen: { host: '127.0.0.1', port: 0 }, token: null, allowedHosts: [] },
        pageInfo: () => this.#pageInfo(),
        log: this.log
      })
      try {
        adminPort = await this.#admin.listen(this.config.admin.listen)
      } catch (err) {
        await new Promise<void>((resolve) => this.#server.close(() => resolve()))
        throw err
      }
      const host = this.config.admin.listen.host
      if (this.config.admin.token === null && host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
        this.log.warn({ admin: describeListen(this.config.admin.listen) }, 'the admin API listens beyond loopback without a token')
      }
    }
    this.#health.sync(this.pool.nodes, this.config.healthCheck)
    this.#listening = adminPort === undefined ? { port } : { port, adminPort }
    this.log.info({ listen: describeListen({ host: address.host, port }), admin: adminPort, engine: this.#engine.name, algorithm: this.config.algorithm, nodes: this.pool.nodes.length }, 'balancer listening')
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
    if (this.#shared.closing) throw new TetherBalancerError('TETHER_ERR_NOT_LISTENING')
    const previous = this.config
    const secret = previous.sticky.secretGenerated ? previous.sticky.secrets[0] : undefined
    const config = resolveConfig(input, options.configFile === undefined ? { generatedSecret: secret } : { file: options.configFile, generatedSecret: secret })
    if (!sameJson(config.listen, previous.listen) && this.#listening !== null) {
      this.log.warn({ from: describeListen(previous.listen), to: describeListen(config.listen) }, 'listen address changes need a restart; keeping the current one')
    }
    if (!sameJson(config.admin?.listen, previous.admin?.listen) && this.#listening !== null) {
      this.log.warn('admin.listen changes need a restart; keeping the current admin address (token and allowed hosts do apply)')
    }
    const listen = this.#listening === null ? config.listen : previous.listen
    const admin = config.admin !== null && previous.admin !== null && this.#listening !== null ? { ...config.admin, listen: previous.admin.listen } : config.admin
    this.config = { ...config, listen, admin }

    if (config.engine !== previous.engine || !sameJson(engineOptions(config), engineOptions(previous))) {
      const old = this.#engine
      this.#engine = createEngine(config.engine, engineOptions(config))
      old.retire(config.timeouts.shutdown + config.timeouts.response)
    }
    const sticky = !config.sticky.enabled
      ? null
      : sameJson(config.sticky, previous.sticky) && this.#runtime.sticky !== null ? this.#runtime.sticky : new StickyCodec(config.sticky)
    const gone = this.pool.apply(config, sticky)
    for (const node of gone) this.#engine.release(node)
    this.#runtime = this.#makeRuntime(config, sticky)
    if (this.#listening !== null) this.#health.sync(this.pool.nodes, config.healthCheck)
    this.#server.headersTimeout = config.timeouts.clientHeaders
    this.#server.requestTimeout = config.timeouts.clientRequest
    this.#server.keepAliveTimeout = config.timeouts.clientKeepAlive
    if (this.#ownLogger && this.log.level !== config.log.level) this.log.level = config.log.level
    this.log.info({ nodes: this.pool.nodes.map((n) => n.name), engine: this.#engine.name, algorithm: config.algorithm }, 'configuration reloaded')
  }

  nodes (): NodeSnapshot[] {
    return this.pool.snapshot()
  }

  setNode (name: string, update: NodeUpdate): NodeSnapshot {
    if (this.pool.get(name) === undefined) throw new TetherBalancerError('TETHER_ERR_UNKNOWN_NODE', `no upstream node is named ${JSON.stringify(name)}`)
    const { state, weight } = update
    if ((state !== undefined && state !== 'active' && state !== 'drain' && state !== 'maint') ||
      (weight !== undefined && (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 10_000))) {
      throw new TetherBalancerError('TETHER_ERR_INVALID_NODE_UPDATE')
    }
    if (state !== undefined) this.pool.setState(name, state, 'admin')
    if (weight !== undefined) this.pool.setWeight(name, weight, 'admin')
    const snapshot = this.pool.snapshot().find((n) => n.name === name)
    if (snapshot === undefined) throw new TetherBalancerError('TETHER_ERR_UNKNOWN_NODE')
    return snapshot
  }

  close (): Promise<void> {
    if (this.#closePromise === null) this.#closePromise = this.#close()
    return this.#closePromise
  }

  async #close (): Promise<void> {
    const shared = this.#shared
    shared.closing = true
    const started = this.#listening !== null
    this.log.info({ inFlight: shared.inFlight, tunnels: this.#tunnels.size }, 'balancer closing')
    this.#health.stop()
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.#server.listening) { resolve(); return }
      this.#server.close(() => resolve())
    })
    this.#server.closeIdleConnections()
    if (shared.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.log.warn({ inFlight: shared.inFlight }, 'shutdown timeout: closing connections with requests in flight')
          resolve()
        }, this.config.timeouts.shutdown)
        timer.unref()
        shared.onDrained = () => { clearTimeout(timer); resolve() }
      })
    }
    this.#server.closeAllConnections()
    for (const tunnel of this.#tunnels) tunnel.destroy()
    this.#tunnels.clear()
    await serverClosed
    await this.#engine.close()
    this.pool.close()
    if (this.#admin !== null) await this.#admin.close()
    if (started) this.log.info('balancer closed')
  }
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
