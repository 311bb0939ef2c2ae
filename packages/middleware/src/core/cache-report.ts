/**
 * Tells the balancer in front whether the near-cache served this request's session, so that its
 * status page can show the hit rate the app nodes see (issue 16) without scraping them.
 *
 * Why a response header: the balancer already reads every response head, so counting one more
 * header costs it a `switch` case and the app nothing but a few bytes. It is sent only when the
 * request came through tether-balancer (it carries `x-tether-route`, which the balancer sets
 * and strips from clients), and the balancer removes it from the response, so a browser never
 * sees it. Behind another proxy nothing is sent.
 */
import type { SessionState } from '../session/state.js'

/** The response header the balancer reads: `hit` or `miss`. */
export const CACHE_HEADER = 'x-tether-cache'

/**
 * The value of {@link CACHE_HEADER} for this request, or undefined to send none.
 *
 * @example
 * ```ts
 * const value = cacheReport(state, request.headers['x-tether-route'])
 * if (value !== undefined) reply.header(CACHE_HEADER, value)
 * ```
 */
export function cacheReport (state: SessionState, routeHeader: string | string[] | undefined): 'hit' | 'miss' | undefined {
  return routeHeader === undefined ? undefined : state.cacheResult
}
