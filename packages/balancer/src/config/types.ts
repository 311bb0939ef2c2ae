/**
 * The configuration as a user writes it: in a YAML or JSON file, or as the object passed to
 * `createBalancer`. Modelled on nginx's `upstream` block. Durations are milliseconds or strings
 * such as `"500ms"`, `"10s"`, `"2m"`.
 */

/**
 * The load-balancing algorithms, one module each under `algorithms/`.
 *
 * @example
 * ```ts
 * const algorithm: AlgorithmName = 'least-connections'
 * ```
 */
export type AlgorithmName = 'weighted-round-robin' | 'least-connections' | 'ip-hash'

/**
 * The forwarding engines, one module each under `engines/`.
 *
 * @example
 * ```ts
 * const engine: EngineName = 'h1'
 * ```
 */
export type EngineName = 'h1' | 'undici' | 'http-proxy'

/**
 * Administrative state of a node. `drain`: keeps its sticky clients, gets no new ones.
 * `maint`: gets no traffic at all.
 *
 * @example
 * ```ts
 * balancer.setNode('app-1', { state: 'maint' satisfies NodeState })
 * ```
 */
export type NodeState = 'active' | 'drain' | 'maint'

/**
 * Milliseconds, or a string such as `"250ms"`, `"10s"`, `"1m"`, `"1h"`.
 *
 * @example
 * ```ts
 * const timeout: Duration = '1.5s'
 * ```
 */
export type Duration = number | string

/**
 * A port (`8080`, `0` for any free port) or `"host:port"` (`"127.0.0.1:8080"`, `"[::1]:8080"`).
 *
 * @example
 * ```ts
 * const listen: ListenAddress = '[::1]:8080'
 * ```
 */
export type ListenAddress = number | string

/**
 * Log levels, as pino names them.
 *
 * @example
 * ```ts
 * const log: LogConfig = { level: 'warn' satisfies LogLevel }
 * ```
 */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/**
 * One upstream node, like an nginx `server` line.
 *
 * @example
 * ```ts
 * const node: UpstreamConfig = { url: 'http://10.0.0.11:3000', name: 'app-1', weight: 3, maxFails: 3, failTimeout: '30s' }
 * ```
 */
export interface UpstreamConfig {
  /** `http://host:port`. Only plain HTTP upstreams are supported. */
  url: string
  /** Shown to the app in `x-tether-node` and in the admin API. Default: `host:port`. */
  name?: string
  /** Relative share of new clients, an integer from 1 to 10000. Default 1. */
  weight?: number
  /** Failures within `failTimeout` that take the node out for `failTimeout`. 0 disables. Default 1. */
  maxFails?: number
  /** Window for `maxFails`, and how long the node then stays out. Default `"10s"`. */
  failTimeout?: Duration
  /** Takes traffic only when no primary node is up. Default false. */
  backup?: boolean
  /** Initial administrative state. Default `"active"`. */
  state?: NodeState
}

/**
 * Sticky sessions: the balancer's own cookie, in the style of HAProxy's `cookie ... insert`.
 *
 * @example
 * ```ts
 * const sticky: StickyConfig = { secret: [process.env.NEW_SECRET ?? '', process.env.OLD_SECRET ?? ''], secure: true }
 * ```
 */
export interface StickyConfig {
  /** Default true. */
  enabled?: boolean
  /** Cookie name. Default `"tether_node"`. */
  cookie?: string
  /**
   * HMAC key(s). The first signs; every one verifies, so keys can be rotated. Default: a random
   * key per process (cookies then do not survive a restart; set one in production).
   */
  secret?: string | string[]
  /** Cookie lifetime; `null` (default) makes it a session cookie. */
  maxAge?: Duration | null
  /** Add `Secure`. Default false. */
  secure?: boolean
  /** Default `"Lax"`. */
  sameSite?: 'Strict' | 'Lax' | 'None'
  /** Optional `Domain` attribute. */
  domain?: string
  /** Default `"/"`. */
  path?: string
}

/**
 * Active HTTP health checks, like HAProxy's `check inter … rise … fall …`.
 *
 * @example
 * ```ts
 * const healthCheck: HealthCheckConfig = { path: '/health', interval: '2s', timeout: '1s', rise: 2, fall: 3 }
 * ```
 */
export interface HealthCheckConfig {
  /** Default true when the section is present. */
  enabled?: boolean
  /** Path requested with GET. Default `"/"`. A 2xx or 3xx answer is a success. */
  path?: string
  /** Default `"2s"`. */
  interval?: Duration
  /** Default `"1s"`. */
  timeout?: Duration
  /** Consecutive successes that bring a down node back. Default 2. */
  rise?: number
  /** Consecutive failures that take a node down. Default 3. */
  fall?: number
}

/**
 * Timeouts. Each bounds one wait; none is a total request deadline.
 *
 * @example
 * ```ts
 * const timeouts: TimeoutsConfig = { connect: '1s', response: '30s', shutdown: '20s' }
 * ```
 */
export interface TimeoutsConfig {
  /** Receiving the request headers (slowloris). Default `"10s"`. Answer: 408. */
  clientHeaders?: Duration
  /** Receiving the whole request. Default `"5m"`. */
  clientRequest?: Duration
  /** An idle client keep-alive connection. Default `"5s"`. */
  clientKeepAlive?: Duration
  /** Connecting to an upstream node. Default `"3s"`. Then the next node is tried. */
  connect?: Duration
  /** Waiting for the upstream's response headers, and between body reads. Default `"60s"`. Answer: 504. */
  response?: Duration
  /** How long `close()` or SIGTERM waits for in-flight requests. Default `"10s"`. */
  shutdown?: Duration
}

/**
 * Upstream keep-alive, like nginx's `keepalive` directive.
 *
 * @example
 * ```ts
 * const keepAlive: KeepAliveConfig = { maxIdle: 64, timeout: '4s' }
 * ```
 */
export interface KeepAliveConfig {
  /** Idle connections kept per node. Default 128. */
  maxIdle?: number
  /** How long an idle upstream connection is kept. Keep it below the app's own keep-alive timeout. Default `"4s"`. */
  timeout?: Duration
}

/**
 * The runtime admin API and status page.
 *
 * @example
 * ```ts
 * const admin: AdminConfig = { listen: 9090, token: process.env.TETHER_ADMIN_TOKEN }
 * ```
 */
export interface AdminConfig {
  /** Where it listens. A bare port binds to 127.0.0.1. */
  listen: ListenAddress
  /** When set, every admin request needs `Authorization: Bearer <token>` (or Basic with it as password). */
  token?: string
  /** Host names accepted in the Host header when no token is set (defence against DNS rebinding). IP literals and `localhost` are always accepted. */
  allowedHosts?: string[]
}

/**
 * Logging.
 *
 * @example
 * ```ts
 * const log: LogConfig = { level: 'info', accessLog: true }
 * ```
 */
export interface LogConfig {
  /** Default `"info"`. */
  level?: LogLevel
  /** One log line per proxied request. Default false. */
  accessLog?: boolean
}

/**
 * The whole configuration.
 *
 * @example
 * ```ts
 * const config: BalancerConfig = {
 *   listen: 8080,
 *   algorithm: 'least-connections',
 *   upstreams: [{ url: 'http://127.0.0.1:3001' }, { url: 'http://127.0.0.1:3002', weight: 3 }],
 *   sticky: { secret: process.env.TETHER_STICKY_SECRET },
 *   healthCheck: { path: '/health' },
 *   admin: { listen: 9090 }
 * }
 * ```
 */
export interface BalancerConfig {
  /** Default 8080 on every interface. */
  listen?: ListenAddress
  /** At least one. A string is a URL with default settings. */
  upstreams: Array<UpstreamConfig | string>
  /** Default `"weighted-round-robin"`. */
  algorithm?: AlgorithmName
  /** Default `"h1"`, the fastest measured; `"http-proxy"` is the baseline. */
  engine?: EngineName
  /** `false` disables sticky cookies. Default: enabled. */
  sticky?: StickyConfig | boolean
  /** Active health checks; absent or `false` disables them (passive checks stay on). */
  healthCheck?: HealthCheckConfig | boolean
  timeouts?: TimeoutsConfig
  keepAlive?: KeepAliveConfig
  /** Further nodes tried after a failure that is safe to retry. Default 2. */
  retries?: number
  /** Peers (IPs or CIDRs) whose X-Forwarded-* headers are believed. Default none. */
  trustedProxies?: string[]
  /** The admin API; absent or `false` disables it. */
  admin?: AdminConfig | false
  log?: LogConfig
}
