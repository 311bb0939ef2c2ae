/**
 * `@tether/balancer`: a sticky-aware reverse proxy and load balancer that tells the app when a
 * session moved.
 *
 * @example
 * ```ts
 * import { createBalancer } from '@tether/balancer'
 *
 * const balancer = createBalancer({ listen: 8080, upstreams: ['http://127.0.0.1:3001', 'http://127.0.0.1:3002'] })
 * await balancer.listen()
 * ```
 */
export { createBalancer } from './balancer.js'
export type { Balancer, BalancerOptions, ListenInfo } from './api.js'
export type {
  AdminConfig, AlgorithmName, BalancerConfig, Duration, EngineName, HealthCheckConfig, KeepAliveConfig,
  ListenAddress, LogConfig, LogLevel, NodeState, NodeUpdate, StickyConfig, TimeoutsConfig, UpstreamConfig, UpstreamTlsConfig, ResolvedUpstreamTls,
  ResolvedConfig, ResolvedUpstream
} from './config/types.js'
export { resolveConfig } from './config/resolve.js'
export type { ResolveOptions } from './config/resolve.js'
export { parseDuration, parseListen } from './config/fields.js'
export { ALGORITHMS, ENGINES } from './config/schema.js'
export { loadConfigFile } from './config/load.js'
export { TetherBalancerError, errorCodes, formatIssue } from './errors.js'
export type { ConfigIssue, ErrorCode, ErrorDefinition } from './errors.js'
export { createAlgorithm, WeightedRoundRobin, LeastConnections, IpHash } from './algorithms/index.js'
export type { Algorithm, Candidate, PickContext } from './algorithms/index.js'
export { createEngine } from './engines/index.js'
export type { Engine, EngineOptions, ForwardRequest, ResponseSink, UpgradeSink, UpstreamExchange, UpstreamTarget, BodyKind } from './engines/engine.js'
export { FAILURE_CODES, UpstreamError } from './engines/failure.js'
export type { FailureKind, FailurePhase } from './engines/failure.js'
export { StickyCodec } from './sticky.js'
export type { StickyMatch } from './sticky.js'
export { hashKeyForAddress, normalizeAddress, TrustedProxies } from './net/address.js'
export type { NodeTransition } from './pool/pool.js'
export type { NodeSnapshot } from './pool/snapshot.js'
export type { NodeHealth, NodeStatus } from './pool/node.js'
export type { Route, ProxyEvents } from './proxy/events.js'
