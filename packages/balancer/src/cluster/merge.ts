/**
 * The whole balancer from its workers' parts, for the supervisor's admin API: node counters
 * and the status page's timelines, added up. Pure functions.
 *
 * Latency percentiles cannot be added: the merged figure is the largest of the workers'
 * (each is already its bucket's upper bound), so it never understates a tail; with evenly
 * spread traffic the workers' figures are close to one another anyway.
 */
import { hitRate } from '../admin/timeline.js'
import type { NodeSummary, SeriesOf, StatsReport } from '../admin/timeline.js'
import type { NodeSnapshot } from '../pool/snapshot.js'

/**
 * The supervisor's view of each node (state, weight, health, last check: it owns them) with
 * the workers' counters summed (connections, queue, requests, errors). A passive hold in any
 * worker shows, the latest one.
 *
 * @example
 * ```ts
 * mergeNodes(control.snapshot(), replies.map((r) => r.nodes))
 * ```
 */
export function mergeNodes (own: readonly NodeSnapshot[], workers: ReadonlyArray<readonly NodeSnapshot[]>): NodeSnapshot[] {
  return own.map((node) => {
    let activeConnections = 0
    let queued = 0
    let requests = 0
    let errors = 0
    let passiveDownUntil: string | null = null
    for (const list of workers) {
      const seen = list.find((n) => n.name === node.name)
      if (seen === undefined) continue
      activeConnections += seen.activeConnections
      queued += seen.queued
      requests += seen.requests
      errors += seen.errors
      if (seen.passiveDownUntil !== null && (passiveDownUntil === null || seen.passiveDownUntil > passiveDownUntil)) passiveDownUntil = seen.passiveDownUntil
    }
    const held = passiveDownUntil !== null
    return {
      ...node,
      activeConnections,
      queued,
      requests,
      errors,
      passiveDownUntil,
      health: held ? 'down' : node.health,
      status: held && node.status !== 'maint' ? 'down' : node.status
    }
  })
}

function maxOf (a: number | null, b: number | null): number | null {
  if (a === null) return b
  if (b === null) return a
  return Math.max(a, b)
}

function addSummary (a: NodeSummary, b: NodeSummary): NodeSummary {
  const r = a.responses
  const s = b.responses
  return {
    rate: Math.round((a.rate + b.rate) * 10) / 10,
    p50: maxOf(a.p50, b.p50),
    p95: maxOf(a.p95, b.p95),
    p99: maxOf(a.p99, b.p99),
    responses: { '1xx': r['1xx'] + s['1xx'], '2xx': r['2xx'] + s['2xx'], '3xx': r['3xx'] + s['3xx'], '4xx': r['4xx'] + s['4xx'], '5xx': r['5xx'] + s['5xx'], none: r.none + s.none },
    errors: a.errors + b.errors,
    bytesOut: a.bytesOut + b.bytesOut,
    // A rate cannot be added: mergeReports computes it again from the merged counts.
    cacheHitRate: null
  }
}

/** The near-cache hit rate over the last 60 points of a merged series (null without reads). */
function hitRateOf (s: SeriesOf): number | null {
  const from = Math.max(0, s.cacheHits.length - 60)
  let hits = 0
  let misses = 0
  for (let i = from; i < s.cacheHits.length; i++) {
    hits += s.cacheHits[i] ?? 0
    misses += s.cacheMisses[i] ?? 0
  }
  return hitRate(hits, misses)
}

/** Add `from` (indexed by its own seconds) into `into` at the seconds of `t`. */
function addSeries (into: SeriesOf, from: SeriesOf | undefined, at: ReadonlyArray<number | undefined>): void {
  if (from === undefined) return
  at.forEach((i, j) => {
    if (i === undefined) return
    into.requests[i] = (into.requests[i] ?? 0) + (from.requests[j] ?? 0)
    into.errors[i] = (into.errors[i] ?? 0) + (from.errors[j] ?? 0)
    into.s5xx[i] = (into.s5xx[i] ?? 0) + (from.s5xx[j] ?? 0)
    into.s4xx[i] = (into.s4xx[i] ?? 0) + (from.s4xx[j] ?? 0)
    into.p50[i] = maxOf(into.p50[i] ?? null, from.p50[j] ?? null)
    into.p95[i] = maxOf(into.p95[i] ?? null, from.p95[j] ?? null)
    into.p99[i] = maxOf(into.p99[i] ?? null, from.p99[j] ?? null)
    into.cacheHits[i] = (into.cacheHits[i] ?? 0) + (from.cacheHits[j] ?? 0)
    into.cacheMisses[i] = (into.cacheMisses[i] ?? 0) + (from.cacheMisses[j] ?? 0)
  })
}

function zeroSeries (length: number): SeriesOf {
  return {
    requests: new Array<number>(length).fill(0),
    errors: new Array<number>(length).fill(0),
    s5xx: new Array<number>(length).fill(0),
    s4xx: new Array<number>(length).fill(0),
    p50: new Array<number | null>(length).fill(null),
    p95: new Array<number | null>(length).fill(null),
    p99: new Array<number | null>(length).fill(null),
    cacheHits: new Array<number>(length).fill(0),
    cacheMisses: new Array<number>(length).fill(0)
  }
}

function sumArrays (into: number[], from: readonly number[], at: ReadonlyArray<number | undefined>): void {
  at.forEach((i, j) => { if (i !== undefined) into[i] = (into[i] ?? 0) + (from[j] ?? 0) })
}

/**
 * One report for the whole balancer from each worker's `GET /api/stats` report: per-second
 * counts added at the same second (workers may answer either side of a second's end: the
 * series covers the seconds of the newest report), totals added, percentiles the largest.
 *
 * @example
 * ```ts
 * const report = mergeReports(replies.map((r) => r.report), names)
 * ```
 */
export function mergeReports (reports: readonly StatsReport[], names: readonly string[]): StatsReport | undefined {
  const newest = reports.reduce<StatsReport | undefined>((a, r) => a === undefined || r.now > a.now ? r : a, undefined)
  if (newest === undefined) return undefined
  const t = [...newest.series.t]
  const index = new Map(t.map((s, i) => [s, i]))
  const total = zeroSeries(t.length)
  const nodes: Record<string, SeriesOf> = Object.fromEntries(names.map((n) => [n, zeroSeries(t.length)]))
  const routes = { sticky: new Array<number>(t.length).fill(0), new: new Array<number>(t.length).fill(0), moved: new Array<number>(t.length).fill(0) }
  const moves = Object.fromEntries(Object.keys(newest.series.moves).map((m) => [m, new Array<number>(t.length).fill(0)])) as unknown as StatsReport['series']['moves']
  const retries = new Array<number>(t.length).fill(0)
  const emptySummary: NodeSummary = { rate: 0, p50: null, p95: null, p99: null, responses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, none: 0 }, errors: 0, bytesOut: 0, cacheHitRate: null }
  let summaryTotal = emptySummary
  const summaryNodes: Record<string, NodeSummary> = Object.fromEntries(names.map((n) => [n, emptySummary]))
  const totals = { routes: { sticky: 0, new: 0, moved: 0 }, moves: { ...newest.totals.moves }, retries: 0 }
  for (const key of Object.keys(totals.moves) as Array<keyof typeof totals.moves>) totals.moves[key] = 0

  for (const r of reports) {
    const at = r.series.t.map((s) => index.get(s))
    addSeries(total, r.series.total, at)
    for (const name of names) addSeries(nodes[name] as SeriesOf, r.series.nodes[name], at)
    for (const route of ['sticky', 'new', 'moved'] as const) {
      sumArrays(routes[route], r.series.routes[route], at)
      totals.routes[route] += r.totals.routes[route]
    }
    for (const cause of Object.keys(moves) as Array<keyof typeof moves>) {
      sumArrays(moves[cause], r.series.moves[cause], at)
      totals.moves[cause] += r.totals.moves[cause]
    }
    sumArrays(retries, r.series.retries, at)
    totals.retries += r.totals.retries
    summaryTotal = addSummary(summaryTotal, r.summary.total)
    for (const name of names) {
      const theirs = r.summary.nodes[name]
      if (theirs !== undefined) summaryNodes[name] = addSummary(summaryNodes[name] ?? emptySummary, theirs)
    }
  }
  summaryTotal = { ...summaryTotal, cacheHitRate: hitRateOf(total) }
  for (const name of names) summaryNodes[name] = { ...(summaryNodes[name] ?? emptySummary), cacheHitRate: hitRateOf(nodes[name] as SeriesOf) }
  return {
    now: newest.now,
    seconds: newest.seconds,
    summary: { total: summaryTotal, nodes: summaryNodes },
    totals,
    series: { t, total, nodes, routes, moves, retries }
  }
}
