/**
 * The former names of the near-cache (near-cache.ts), kept so that existing code compiles.
 * The sticky cache trusted the balancer's `x-tether-route: sticky` header as proof that a copy
 * was current; that proof does not hold (a replayed sticky cookie, a shared session cookie, a
 * request sent straight to a node), so the header no longer plays any part.
 */
import type { NearCacheOptions } from './near-cache.js'

export { NearCache as StickyCache } from './near-cache.js'

/**
 * @deprecated Renamed {@link NearCacheOptions}; `trustedProxies` is ignored.
 *
 * @example
 * ```ts
 * import type { NearCacheOptions } from '@tether/middleware' // instead of StickyCacheOptions
 * ```
 */
export type StickyCacheOptions = NearCacheOptions

/**
 * @deprecated The near-cache no longer classifies requests by the balancer's route header.
 *
 * @example
 * ```ts
 * const hint: RouteHint = 'sticky' // no longer used by Tether
 * ```
 */
export type RouteHint = 'sticky' | 'new' | 'moved' | 'untrusted'

/**
 * @deprecated See {@link RouteHint}.
 *
 * @example
 * ```ts
 * const route: Route = 'moved' // no longer used by Tether
 * ```
 */
export type Route = RouteHint
