/**
 * The status page's memory: what happened in each of the last `seconds` seconds, per node and
 * in total (requests, 1xx–5xx answers, the balancer's own error answers, response bytes, upstream
 * latency, routes, moves by cause, retries, near-cache hits and misses the nodes reported).
 *
 * Why not read it back from prom-client: a Prometheus histogram is cumulative since start, so a
 * chart of "p99 over the last minute" needs the history a scraper keeps; the balancer has no
 * scraper of its own. A ring of one-second slots costs one array index and a few increments per
 * request, and memory bounded by `seconds × nodes` (about 300 bytes per node-second that saw
 * traffic: 15 minutes × 3 nodes ≈ 0.8 MB at most).
 *
 * Latency goes into log-spaced buckets (each 25 % wider than the last, from 0.25 ms to ~5 min),
 * so a percentile is reported as its bucket's upper bound: at most 25 % above the true value,
 * never below it.
 */
import type { ErrorCode } from '../errors.js'
import type { NodeStats } from '../pool/node.js'
import type { FinishedRequest, MoveCause, ProxyEvents, Route } from '../proxy/events.js'

const BUCKETS = 64
const FIRST_BOUND_MS = 0.25
const GROWTH = 1.25
const LOG_GROWTH = Math.log(GROWTH)
/** Upper bound of each latency bucket, in ms. */
const BOUNDS = Array.from({ length: BUCKETS }, (_, i) => FIRST_BOUND_MS * GROWTH ** i)

function bucketOf (ms: number): number {
  if (!(ms > FIRST_BOUND_MS)) return 0
  const i = Math.ceil(Math.log(ms / FIRST_BOUND_MS) / LOG_GROWTH - 1e-9)
  return i < BUCKETS ? i : BUCKETS - 1
}

/** Counts of one node (or of the whole balancer) in one second. */
class Counts {
  requests = 0
  /** Index 1–5: answers by status class; 0: requests with no answer (the client went away). */
  readonly classes = [0, 0, 0, 0, 0, 0]
  /** Error answers the balancer sent itself (502/503/504 of its own). */
  errors = 0
  bytesOut = 0
  /** Session reads the node reported in `x-tether-cache`: near-cache hits and misses. */
  cacheHits = 0
  cacheMisses = 0
  latencyCount = 0
  readonly latency = new Uint32Array(BUCKETS)

  add (other: Counts): void {
    this.cacheHits += other.cacheHits
    this.cacheMisses += other.cacheMisses
    this.requests += other.requests
    for (let i = 0; i < 6; i++) this.classes[i] = (this.classes[i] ?? 0) + (other.classes[i] ?? 0)
    this.errors += other.errors
    this.bytesOut += other.bytesOut
    this.latencyCount += other.latencyCount
    for (let i = 0; i < BUCKETS; i++) this.latency[i] = (this.latency[i] ?? 0) + (other.latency[i] ?? 0)
  }
}

/** The upper bound (ms) of the bucket that holds the `q` quantile, or null with no samples. */
function quantile (c: Counts, q: number): number | null {
  if (c.latencyCount === 0) return null
  const rank = Math.max(1, Math.ceil(q * c.latencyCount))
  let seen = 0
  for (let i = 0; i < BUCKETS; i++) {
    seen += c.latency[i] ?? 0
    if (seen >= rank) return Math.round((BOUNDS[i] ?? 0) * 100) / 100
  }
  return null
}

/**
 * The share of reported session reads the near-cache served (0–1, three decimals), or null when
 * none was reported: "no reads" is not a 0 % hit rate.
 *
 * @example
 * ```ts
 * hitRate(75, 20) // 0.789
 * ```
 */
export function hitRate (hits: number, misses: number): number | null {
  return hits + misses === 0 ? null : Math.round(hits / (hits + misses) * 1000) / 1000
}

const ROUTES: readonly Route[] = ['sticky', 'new', 'moved']

/** Why a session left its node. */
export const MOVE_CAUSES: readonly MoveCause[] = ['down', 'maint', 'drain', 'removed', 'backup', 'failed']

class Slot {
  second = -1
  readonly total = new Counts()
  readonly nodes = new Map<string, Counts>()
  readonly routes = { sticky: 0, new: 0, moved: 0 }
  readonly moves = { down: 0, maint: 0, drain: 0, removed: 0, backup: 0, failed: 0 }
  retries = 0

  reset (second: number): void {
    this.second = second
    const t = this.total
    t.requests = 0; t.errors = 0; t.bytesOut = 0; t.latencyCount = 0; t.cacheHits = 0; t.cacheMisses = 0
    t.classes.fill(0); t.latency.fill(0)
    this.nodes.clear()
    this.routes.sticky = 0; this.routes.new = 0; this.routes.moved = 0
    for (const cause of MOVE_CAUSES) this.moves[cause] = 0
    this.retries = 0
  }

  node (name: string): Counts {
    let c = this.nodes.get(name)
    if (c === undefined) { c = new Counts(); this.nodes.set(name, c) }
    return c
  }
}

/** One node's figures over a window, as the status page and `tether-balancer status` show them. */
export interface NodeSummary {
  /** Requests per second over the last 10 s. */
  readonly rate: number
  /** Upstream latency percentiles over the last 60 s (ms, bucket upper bounds), null without samples. */
  readonly p50: number | null
  readonly p95: number | null
  readonly p99: number | null
  /** Answers by class since the balancer started: `1xx` … `5xx`, and `none` (client went away). */
  readonly responses: { readonly '1xx': number, readonly '2xx': number, readonly '3xx': number, readonly '4xx': number, readonly '5xx': number, readonly none: number }
  /** Error answers of the balancer's own, sent after trying this node, since start. */
  readonly errors: number
  /** Response body bytes sent to clients from this node, since start. */
  readonly bytesOut: number
  /**
   * Share of session reads the node's near-cache served over the last 60 s (0–1), as the node
   * reported them in `x-tether-cache`; null when it reported none (no near-cache, no sessions).
   */
  readonly cacheHitRate: number | null
}

/** Columnar series, one value per second, oldest first. */
export interface StatsSeries {
  /** Unix time (s) of each point. */
  readonly t: number[]
  readonly total: SeriesOf
  readonly nodes: Record<string, SeriesOf>
  readonly routes: Record<Route, number[]>
  readonly moves: Record<MoveCause, number[]>
  readonly retries: number[]
}

/** The series of one node or of the total. */
export interface SeriesOf {
  readonly requests: number[]
  readonly errors: number[]
  readonly s5xx: number[]
  readonly s4xx: number[]
  readonly p50: Array<number | null>
  readonly p95: Array<number | null>
  readonly p99: Array<number | null>
  /** Session reads served by the near-cache, and read from the store, as the nodes reported. */
  readonly cacheHits: number[]
  readonly cacheMisses: number[]
}

/** What `GET /api/stats` answers. */
export interface StatsReport {
  /** Unix time (s) of the newest point (the current, still-filling second is never sent). */
  readonly now: number
  readonly seconds: number
  readonly summary: { readonly total: NodeSummary, readonly nodes: Record<string, NodeSummary> }
  readonly totals: { readonly routes: Record<Route, number>, readonly moves: Record<MoveCause, number>, readonly retries: number }
  readonly series: StatsSeries
}

function emptySeries (): SeriesOf {
  return { requests: [], errors: [], s5xx: [], s4xx: [], p50: [], p95: [], p99: [], cacheHits: [], cacheMisses: [] }
}

function pushPoint (s: SeriesOf, c: Counts | undefined): void {
  s.requests.push(c?.requests ?? 0)
  s.errors.push(c?.errors ?? 0)
  s.s5xx.push(c?.classes[5] ?? 0)
  s.s4xx.push(c?.classes[4] ?? 0)
  s.p50.push(c === undefined ? null : quantile(c, 0.5))
  s.p95.push(c === undefined ? null : quantile(c, 0.95))
  s.p99.push(c === undefined ? null : quantile(c, 0.99))
  s.cacheHits.push(c?.cacheHits ?? 0)
  s.cacheMisses.push(c?.cacheMisses ?? 0)
}

/**
 * A ring of per-second slots fed by the proxy's events.
 *
 * @example
 * ```ts
 * const timeline = new Timeline(900)
 * const events = combineEvents(metrics, timeline)  // what the proxy reports to
 * timeline.report(Date.now(), null)                // for GET /api/stats
 * ```
 */
export class Timeline implements ProxyEvents {
  readonly seconds: number
  readonly #slots: Slot[]
  readonly #clock: () => number
  /** Since start, per node: answers by class, errors, bytes. */
  readonly #sinceStart = new Map<string, Counts>()
  readonly #allSinceStart = new Counts()
  readonly #routes = { sticky: 0, new: 0, moved: 0 }
  readonly #moves = { down: 0, maint: 0, drain: 0, removed: 0, backup: 0, failed: 0 }
  #retries = 0

  /** @param seconds how much history to keep (the charts' width); `clock` returns ms since the epoch. */
  constructor (seconds = 900, clock: () => number = Date.now) {
    this.seconds = seconds
    this.#slots = Array.from({ length: seconds + 1 }, () => new Slot())
    this.#clock = clock
  }

  #slot (): Slot {
    const second = Math.floor(this.#clock() / 1000)
    const slot = this.#slots[second % this.#slots.length] as Slot
    if (slot.second !== second) slot.reset(second)
    return slot
  }

  #allTime (name: string): Counts {
    let c = this.#sinceStart.get(name)
    if (c === undefined) { c = new Counts(); this.#sinceStart.set(name, c) }
    return c
  }

  routed (route: Route): void {
    this.#slot().routes[route]++
    this.#routes[route]++
  }

  retried (): void {
    this.#slot().retries++
    this.#retries++
  }

  perTryTimedOut (_node: NodeStats): void {
    // The abandoned attempt is a failed attempt of its node (the pool's errors column); the
    // retry it leads to is counted by retried().
  }

  errorAnswered (_code: ErrorCode): void {
    // Counted per node (or in total) by finished(), which knows the node.
  }

  responseHead (node: NodeStats, ms: number): void {
    const slot = this.#slot()
    const b = bucketOf(ms)
    const n = slot.node(node.labels.node)
    n.latencyCount++
    n.latency[b] = (n.latency[b] ?? 0) + 1
    slot.total.latencyCount++
    slot.total.latency[b] = (slot.total.latency[b] ?? 0) + 1
  }

  moved (cause: MoveCause): void {
    this.#slot().moves[cause]++
    this.#moves[cause]++
  }

  finished (r: FinishedRequest): void {
    const slot = this.#slot()
    const cls = r.status >= 100 && r.status < 600 ? Math.floor(r.status / 100) : 0
    const targets = r.node === null ? [slot.total, this.#allSinceStart] : [slot.total, this.#allSinceStart, slot.node(r.node), this.#allTime(r.node)]
    for (const c of targets) {
      c.requests++
      c.classes[cls] = (c.classes[cls] ?? 0) + 1
      if (r.ownError) c.errors++
      c.bytesOut += r.bytesOut
      if (r.cache === 'hit') c.cacheHits++
      else if (r.cache === 'miss') c.cacheMisses++
    }
  }

  #window (nowSecond: number, span: number, name: string | null): Counts {
    const sum = new Counts()
    for (let s = nowSecond - span; s < nowSecond; s++) {
      const slot = this.#slots[((s % this.#slots.length) + this.#slots.length) % this.#slots.length] as Slot
      if (slot.second !== s) continue
      const c = name === null ? slot.total : slot.nodes.get(name)
      if (c !== undefined) sum.add(c)
    }
    return sum
  }

  #summary (nowSecond: number, name: string | null): NodeSummary {
    const rate = this.#window(nowSecond, 10, name)
    const minute = this.#window(nowSecond, 60, name)
    const all = name === null ? this.#allSinceStart : (this.#sinceStart.get(name) ?? new Counts())
    const k = all.classes
    return {
      rate: Math.round(rate.requests / 10 * 10) / 10,
      p50: quantile(minute, 0.5),
      p95: quantile(minute, 0.95),
      p99: quantile(minute, 0.99),
      responses: { '1xx': k[1] ?? 0, '2xx': k[2] ?? 0, '3xx': k[3] ?? 0, '4xx': k[4] ?? 0, '5xx': k[5] ?? 0, none: k[0] ?? 0 },
      errors: all.errors,
      bytesOut: all.bytesOut,
      cacheHitRate: hitRate(minute.cacheHits, minute.cacheMisses)
    }
  }

  /**
   * Everything the page needs: per-node summaries for `names`, and the series of complete
   * seconds after `since` (Unix seconds; null for the whole history).
   */
  report (names: readonly string[], since: number | null): StatsReport {
    const nowSecond = Math.floor(this.#clock() / 1000)
    const first = Math.max(nowSecond - this.seconds, since === null ? -Infinity : since + 1)
    const series: StatsSeries = {
      t: [],
      total: emptySeries(),
      nodes: Object.fromEntries(names.map((n) => [n, emptySeries()])),
      routes: { sticky: [], new: [], moved: [] },
      moves: { down: [], maint: [], drain: [], removed: [], backup: [], failed: [] },
      retries: []
    }
    for (let s = first; s < nowSecond; s++) {
      const raw = this.#slots[s % this.#slots.length] as Slot
      const slot = raw.second === s ? raw : undefined
      series.t.push(s)
      pushPoint(series.total, slot?.total)
      for (const name of names) pushPoint(series.nodes[name] as SeriesOf, slot?.nodes.get(name))
      for (const r of ROUTES) series.routes[r].push(slot?.routes[r] ?? 0)
      for (const m of MOVE_CAUSES) series.moves[m].push(slot?.moves[m] ?? 0)
      series.retries.push(slot?.retries ?? 0)
    }
    return {
      now: nowSecond - 1,
      seconds: this.seconds,
      summary: {
        total: this.#summary(nowSecond, null),
        nodes: Object.fromEntries(names.map((n) => [n, this.#summary(nowSecond, n)]))
      },
      totals: { routes: { ...this.#routes }, moves: { ...this.#moves }, retries: this.#retries },
      series
    }
  }
}
