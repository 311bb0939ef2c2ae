/**
 * Latency outlier detection, in the style of Envoy's success-rate and latency outlier
 * detection: a node whose recent latency jumps well above its own baseline AND above the other
 * nodes' recent latency is slow now, not merely a slower machine, and is ejected for a back-off
 * period (the same growing, capped ejection as the failure-based passive check, and within the
 * same `maxEjectedPercent`). Pure functions over a node's counters; the node keeps them and
 * the pool acts on the result.
 *
 * Latency is the time from an attempt's start to its response head, for requests without a
 * body only (an upload's length says nothing about the node). Two moving averages per node:
 * `recent` follows the last few requests (weight {@link RECENT_WEIGHT}), `baseline` the last
 * hundred or so ({@link BASELINE_WEIGHT}), so that a jump shows as the gap between them.
 */

/** Weight of a new sample in the recent average: about the last 5 requests. */
export const RECENT_WEIGHT = 0.3
/** Weight of a new sample in the baseline: about the last 100 requests. */
export const BASELINE_WEIGHT = 0.02

/** The resolved `latencyEjection` configuration. */
export interface LatencyEjectionConfig {
  /** How many times its baseline and the other nodes' latency a node must reach; 0: off. */
  readonly factor: number
  /** And at least this many ms above both, so that 1 ms against 3 ms is no outlier. */
  readonly minExtra: number
  /** Samples a node needs (and each compared node) before it is judged. */
  readonly minRequests: number
  /** The first ejection (ms); repeats last 2×, 3×, … up to the passive check's cap. */
  readonly ejectionTime: number
}

/** The latency counters of a node. */
export interface LatencyState {
  /** Samples seen (capped: only "enough or not" matters). */
  samples: number
  /** Moving average of recent latencies (ms). */
  recent: number
  /** Slow moving average (ms): what this node usually takes. */
  baseline: number
}

/**
 * Count one response's latency.
 *
 * @example
 * ```ts
 * const s: LatencyState = { samples: 0, recent: 0, baseline: 0 }
 * recordLatency(s, 12)
 * ```
 */
export function recordLatency (state: LatencyState, ms: number): void {
  if (state.samples === 0) {
    state.recent = ms
    state.baseline = ms
  } else {
    state.recent += (ms - state.recent) * RECENT_WEIGHT
    state.baseline += (ms - state.baseline) * BASELINE_WEIGHT
  }
  if (state.samples < 1_000_000) state.samples++
}

/**
 * Whether `state` is a latency outlier against its own baseline and `peers` (the recent
 * averages of the other nodes that are up and have enough samples): above `factor` × its
 * baseline and `factor` × the peers' median, by at least `minExtra` ms over each. With no
 * peer to compare with there is nowhere better to send traffic, so no one is an outlier.
 *
 * @example
 * ```ts
 * isLatencyOutlier({ samples: 50, recent: 320, baseline: 20 }, [15, 18], { factor: 3, minExtra: 100, minRequests: 20, ejectionTime: 10_000 }) // true
 * ```
 */
export function isLatencyOutlier (state: LatencyState, peers: readonly number[], config: LatencyEjectionConfig): boolean {
  if (config.factor <= 0 || state.samples < config.minRequests || peers.length === 0) return false
  const sorted = [...peers].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  const recent = state.recent
  return recent >= config.factor * state.baseline && recent >= state.baseline + config.minExtra &&
    recent >= config.factor * median && recent >= median + config.minExtra
}

/**
 * After an ejection ends the node starts from its baseline again: its old slow samples must not
 * eject it a second time before it has answered anything new.
 *
 * @example
 * ```ts
 * resetRecent(state)
 * ```
 */
export function resetRecent (state: LatencyState): void {
  state.recent = state.baseline
}
