/**
 * Passive health checks, nginx's `max_fails` and `fail_timeout`: `maxFails` failed attempts
 * within `failTimeout` take a node out for `failTimeout`. Pure functions over a node's
 * counters; the node keeps the counters and the pool acts on the result.
 */

/** The counters passive checking keeps on a node. */
export interface PassiveState {
  /** Failures counted in the current window. */
  fails: number
  /** When the current window began (ms, monotonic clock). */
  failWindowStart: number
  /** Until when the node is out (ms, monotonic clock); 0 when it is in. */
  downUntil: number
}

/**
 * Count one failed attempt. Returns true when this failure takes the node out.
 *
 * @example
 * ```ts
 * const s = { fails: 0, failWindowStart: 0, downUntil: 0 }
 * recordFailure(s, 1000, 2, 10_000) // false: 1 of 2
 * recordFailure(s, 2000, 2, 10_000) // true: out until 12000
 * ```
 */
export function recordFailure (state: PassiveState, now: number, maxFails: number, failTimeout: number): boolean {
  if (maxFails === 0) return false
  if (state.downUntil > now) return false
  if (state.fails === 0 || now - state.failWindowStart > failTimeout) {
    state.failWindowStart = now
    state.fails = 0
  }
  state.fails++
  if (state.fails < maxFails) return false
  state.fails = 0
  state.downUntil = now + failTimeout
  return true
}

/** Forget past failures (an active check brought the node back). */
export function clearPassive (state: PassiveState): void {
  state.fails = 0
  state.downUntil = 0
}
