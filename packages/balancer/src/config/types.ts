/**
 * The configuration's types, derived from the one declaration in `schema.ts`: what a user
 * writes (`BalancerConfig`, in a YAML or JSON file or passed to `createBalancer`) and what the
 * balancer runs on once defaults are applied (`ResolvedConfig`). Each field's meaning and
 * default is in the schema and in the configuration table of docs/balancer.md.
 */
import type * as v from 'valibot'
import type { configSchema, nodeUpdateSchema } from './schema.js'

/**
 * The whole configuration, as a user writes it. Durations are milliseconds or strings such as
 * `"500ms"`, `"10s"`, `"2m"`; unknown fields are errors.
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
export type BalancerConfig = v.InferInput<typeof configSchema>

/**
 * The configuration with every default applied and every duration in milliseconds.
 *
 * @example
 * ```ts
 * const config: ResolvedConfig = resolveConfig({ upstreams: ['http://127.0.0.1:3001'] })
 * config.timeouts.connect // 3000
 * ```
 */
export type ResolvedConfig = v.InferOutput<typeof configSchema>

/**
 * One upstream node, like an nginx `server` line (or just its URL, as a string).
 *
 * @example
 * ```ts
 * const node: UpstreamConfig = { url: 'http://10.0.0.11:3000', name: 'app-1', weight: 3, maxFails: 3, failTimeout: '30s' }
 * ```
 */
export type UpstreamConfig = Exclude<BalancerConfig['upstreams'][number], string>

/**
 * Sticky sessions: the balancer's own cookie, in the style of HAProxy's `cookie ... insert`.
 *
 * @example
 * ```ts
 * const sticky: StickyConfig = { secret: [process.env.NEW_SECRET ?? '', process.env.OLD_SECRET ?? ''], secure: true }
 * ```
 */
export type StickyConfig = Exclude<NonNullable<BalancerConfig['sticky']>, boolean>

/**
 * Active HTTP health checks, like HAProxy's `check inter … rise … fall …`.
 *
 * @example
 * ```ts
 * const healthCheck: HealthCheckConfig = { path: '/health', interval: '2s', timeout: '1s', rise: 2, fall: 3 }
 * ```
 */
export type HealthCheckConfig = Exclude<NonNullable<BalancerConfig['healthCheck']>, boolean>

/**
 * Timeouts. Each bounds one wait; none is a total request deadline.
 *
 * @example
 * ```ts
 * const timeouts: TimeoutsConfig = { connect: '1s', response: '30s', shutdown: '20s' }
 * ```
 */
export type TimeoutsConfig = NonNullable<BalancerConfig['timeouts']>

/**
 * Upstream keep-alive, like nginx's `keepalive` directive.
 *
 * @example
 * ```ts
 * const keepAlive: KeepAliveConfig = { maxIdle: 64, timeout: '4s' }
 * ```
 */
export type KeepAliveConfig = NonNullable<BalancerConfig['keepAlive']>

/**
 * The runtime admin API and status page.
 *
 * @example
 * ```ts
 * const admin: AdminConfig = { listen: 9090, token: process.env.TETHER_ADMIN_TOKEN }
 * ```
 */
export type AdminConfig = Exclude<NonNullable<BalancerConfig['admin']>, false>

/**
 * Logging.
 *
 * @example
 * ```ts
 * const log: LogConfig = { level: 'info', accessLog: true }
 * ```
 */
export type LogConfig = NonNullable<BalancerConfig['log']>

/**
 * The load-balancing algorithms, one module each under `algorithms/`.
 *
 * @example
 * ```ts
 * const algorithm: AlgorithmName = 'least-connections'
 * ```
 */
export type AlgorithmName = ResolvedConfig['algorithm']

/**
 * The forwarding engines, one module each under `engines/`.
 *
 * @example
 * ```ts
 * const engine: EngineName = 'h1'
 * ```
 */
export type EngineName = ResolvedConfig['engine']

/**
 * Administrative state of a node. `drain`: keeps its sticky clients, gets no new ones.
 * `maint`: gets no traffic at all.
 *
 * @example
 * ```ts
 * balancer.setNode('app-1', { state: 'maint' satisfies NodeState })
 * ```
 */
export type NodeState = ResolvedUpstream['state']

/**
 * Log levels, as pino names them.
 *
 * @example
 * ```ts
 * const log: LogConfig = { level: 'warn' satisfies LogLevel }
 * ```
 */
export type LogLevel = ResolvedConfig['log']['level']

/**
 * Milliseconds, or a string such as `"250ms"`, `"10s"`, `"1m"`, `"1h"`.
 *
 * @example
 * ```ts
 * const timeout: Duration = '1.5s'
 * ```
 */
export type Duration = NonNullable<TimeoutsConfig['connect']>

/**
 * A port (`8080`, `0` for any free port) or `"host:port"` (`"127.0.0.1:8080"`, `"[::1]:8080"`).
 *
 * @example
 * ```ts
 * const listen: ListenAddress = '[::1]:8080'
 * ```
 */
export type ListenAddress = NonNullable<BalancerConfig['listen']>

/**
 * A node update, as the admin API and `balancer.setNode` take it.
 *
 * @example
 * ```ts
 * balancer.setNode('app-1', { state: 'drain', weight: 2 })
 * ```
 */
export type NodeUpdate = v.InferInput<typeof nodeUpdateSchema>

/**
 * One upstream node, resolved.
 *
 * @example
 * ```ts
 * const [first]: readonly ResolvedUpstream[] = resolveConfig({ upstreams: ['http://[::1]:3001'] }).upstreams
 * first?.host // '::1'
 * ```
 */
export type ResolvedUpstream = ResolvedConfig['upstreams'][number]

/** Sticky settings, resolved: `secrets` holds at least one key (the first signs). */
export type ResolvedSticky = ResolvedConfig['sticky']
/** Health-check settings, resolved. */
export type ResolvedHealthCheck = ResolvedConfig['healthCheck']
/** Timeouts in milliseconds. */
export type ResolvedTimeouts = ResolvedConfig['timeouts']

/**
 * Resolved `limits`.
 *
 * @example
 * ```ts
 * const limits: ResolvedLimits = resolveConfig({ upstreams: ['http://127.0.0.1:3001'] }).limits // { headerLines: 100, … }
 * ```
 */
export type ResolvedLimits = ResolvedConfig['limits']
/** The admin API's settings, resolved. */
export type ResolvedAdmin = NonNullable<ResolvedConfig['admin']>
export type { ResolvedListen } from './fields.js'

/**
 * TLS on the main listener, resolved (`listen.tls`); `null` on a plain-HTTP listener.
 *
 * @example
 * ```ts
 * const tls: ResolvedTls | null = resolveConfig({ listen: { port: 443, tls: { cert: 'fullchain.pem', key: 'privkey.pem' } }, upstreams: ['http://127.0.0.1:3001'] }).listen.tls
 * tls?.minVersion // 'TLSv1.2'
 * ```
 */
export type ResolvedTls = NonNullable<ResolvedConfig['listen']['tls']>

/**
 * The main listener's TLS settings, as a user writes them.
 *
 * @example
 * ```ts
 * const tls: TlsConfig = { cert: '/etc/letsencrypt/live/shop.example/fullchain.pem', key: '/etc/letsencrypt/live/shop.example/privkey.pem', hsts: '180d' }
 * ```
 */
export type TlsConfig = NonNullable<Extract<NonNullable<BalancerConfig['listen']>, { tls?: unknown }>['tls']>

/**
 * TLS to `https://` upstreams, as a user writes it (`upstreamTls`, and each `upstreams[].tls`).
 *
 * @example
 * ```ts
 * const upstreamTls: UpstreamTlsConfig = { ca: '/etc/tether/internal-ca.pem', servername: 'app.internal' }
 * ```
 */
export type UpstreamTlsConfig = NonNullable<BalancerConfig['upstreamTls']>

export type { ResolvedUpstreamTls } from './schema.js'
