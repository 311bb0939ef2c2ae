/**
 * Passive health checks (outlier detection), nginx's `max_fails` and `fail_timeout` with
 * Envoy's growing ejection time: `maxFails` failed attempts (connect errors, resets,
 * timeouts, per-try timeouts) within `failTimeout` take a node out for `failTimeout`; a node
 * ejected again soon after it came back stays out longer each time (`failTimeout` × 2, × 3, …
 * up to × `MAX_EJECTION_MULTIPLIER`), so a node that keeps hanging stops costing each new
 * round of clients its timeout. Pure functions over a node's counters; the node keeps the
 * counters and the pool acts on the result (and applies the max ejection percentage).
 */

/** The longest ejection, in units of `failTimeout` (Envoy: 300 s max over a 30 s base). */
export const MAX_EJECTION_MULTIPLIER = 10

/** The counters passive checking keeps on a node. */
export interface PassiveState {
  /** Failures counted in the current window. */
  fails: number
  /** When the current window began (ms, monotonic clock). */
  failWindowStart: number
  /** Until when the node is out (ms, monotonic clock); 0 when it is in. */
  downUntil: number
  /** Consecutive ejections (each soon after the previous): the back-off multiplier. */
  ejections: number
  /** When the last ejection began (ms, monotonic clock). */
  ejectedAt: number
  /** The base length of the last ejection (ms): `failTimeout`, or the latency ejection time. */
  ejectionBase?: number
}

/**
 * Count one failed attempt. Returns true when this failure takes the node out (only when
 * `mayEject`: the pool says no when too many nodes are out already).
 *
 * @example
 * ```ts
 * const s = { fails: 0, failWindowStart: 0, downUntil: 0, ejections: 0, ejectedAt: 0 }
 * recordFailure(s, 1000, 2, 10_000) // false: 1 of 2
 * recordFailure(s, 2000, 2, 10_000) // true: out until 12000
 * ```
 */
export function recordFailure (state: PassiveState, now: number, maxFails: number, failTimeout: number, mayEject = true): boolean {
  if (maxFails === 0) return false
  if (state.downUntil > now) return false
  if (state.fails === 0 || now - state.failWindowStart > failTimeout) {
    state.failWindowStart = now
    state.fails = 0
  }
  state.fails++
  if (state.fails < maxFails || !mayEject) return false
  state.fails = 0
  eject(state, now, failTimeout)
  return true
}

/**
 * Take the node out for `base` ms, or longer on a repeat: ejected again within one more base
 * of the end of the last ejection, it stays out `base` × 2, × 3, … up to
 * × {@link MAX_EJECTION_MULTIPLIER}. Used by failures (base `failTimeout`) and by latency
 * outliers (base `latencyEjection.ejectionTime`): one back-off for both causes.
 *
 * @example
 * ```ts
 * eject(state, performance.now(), 10_000)
 * ```
 */
export function eject (state: PassiveState, now: number, base: number): void {
  const lastBase = state.ejectionBase ?? base
  const lastEnd = state.ejectedAt + lastBase * state.ejections
  state.ejections = state.ejections > 0 && now <= lastEnd + base ? Math.min(state.ejections + 1, MAX_EJECTION_MULTIPLIER) : 1
  state.ejectedAt = now
  state.ejectionBase = base
  state.downUntil = now + base * state.ejections
}

/** How long the current (or last) ejection lasts, in ms. */
export function ejectionMs (state: PassiveState, failTimeout: number): number {
  return (state.ejectionBase ?? failTimeout) * Math.max(1, state.ejections)
}

/** Forget past failures (an active check brought the node back); the back-off is kept. */
export function clearPassive (state: PassiveState): void {
  state.fails = 0
  state.downUntil = 0
}
