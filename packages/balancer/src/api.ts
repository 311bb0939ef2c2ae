/**
 * The balancer's public interface: what `createBalancer` takes besides the configuration, and
 * what it returns. The implementation is `balancer.ts`.
 */
import type { BalancerConfig, NodeUpdate, ResolvedConfig } from './config/types.js'
import type { Logger } from './log.js'
import type { NodeSnapshot } from './pool/snapshot.js'

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
  /**
   * TLS listeners: the secret session-ticket keys derive from. Give every process that serves
   * the same listener (node:cluster workers) the same one, and a ticket issued by one resumes
   * on another. Default: random per process.
   */
  ticketSecret?: Buffer
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
  /** The plain-HTTP redirect listener's port, when `listen.tls.redirectHttp` is set. */
  readonly redirectPort?: number
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
